"""The `to_docx` step: a legacy .doc made into .docx by LibreOffice, for the parse step."""

from __future__ import annotations

from app.core.config import get_settings
from app.core.db import session_scope
from app.documents import doc_to_docx
from app.services import storage
from app.tasks.steps.common import document
from app.workflows.registry import StepContext, implements

DOCX_TYPE = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"


@implements("to_docx")
def to_docx(ctx: StepContext) -> dict:
    """Legacy .doc -> .docx through LibreOffice."""
    settings = get_settings()
    with session_scope() as session:
        doc = document(session, ctx)
        key, filename, doc_id = doc.original_key, doc.filename, doc.id
    out_key = converted_key(doc_id)
    existing = storage().head(out_key)
    if existing is not None:  # converted already, e.g. in a batch with the other .doc files of a mail poll
        return {"docx_key": out_key, "summary": f"{filename} was already converted ({existing.size} bytes)"}
    data = storage().get(key)
    docx = doc_to_docx(data, filename=filename, soffice=settings.soffice_path, timeout=settings.convert_timeout)
    storage().put(out_key, docx, content_type=DOCX_TYPE)
    return {"docx_key": out_key, "summary": f"converted {filename} to .docx ({len(docx)} bytes)"}


def converted_key(document_id) -> str:
    """Where the .docx made from a legacy .doc is kept (a batch conversion may put it there first)."""
    return f"artifacts/{document_id}/converted.docx"
