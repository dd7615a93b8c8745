from __future__ import annotations

from app.core.config import get_settings
from app.core.db import session_scope
from app.services import storage
from app.tasks.steps.common import document
from app.workflows.registry import StepContext, step_kind

DOCX_TYPE = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"


@step_kind("convert", outputs={"docx_key": str})
def convert(ctx: StepContext) -> dict:
    """Legacy .doc -> .docx through LibreOffice."""
    from app.documents.legacy import doc_to_docx

    settings = get_settings()
    with session_scope() as session:
        doc = document(session, ctx)
        key, filename, doc_id = doc.original_key, doc.filename, doc.id
    data = storage().get(key)
    docx = doc_to_docx(data, filename=filename, soffice=settings.soffice_path, timeout=settings.convert_timeout)
    out_key = f"artifacts/{doc_id}/converted.docx"
    storage().put(out_key, docx, content_type=DOCX_TYPE)
    return {"docx_key": out_key, "summary": f"converted {filename} to .docx ({len(docx)} bytes)"}
