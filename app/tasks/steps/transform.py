from __future__ import annotations

from app.core.db import session_scope
from app.integrations.llm import EditRequest, OfflineEditor
from app.tasks.steps.common import article, document
from app.workflows.registry import StepContext, step_kind


@step_kind("transform", outputs={"engine": str, "title": str})
def transform(ctx: StepContext) -> dict:
    """Edit the article for the web and write its title, excerpt, slug and tags."""
    with session_scope() as session:
        doc = document(session, ctx)
        art = article(session, doc.id)
        request = EditRequest(
            html=art.original_html,
            text=art.text,
            title=art.title,
            keywords=list(art.doc_metadata.get("keywords") or []),
            instructions=str(ctx.options.get("instructions", "")),
        )
    result = OfflineEditor().edit(request)
    for warning in result.warnings:
        ctx.warn(warning)
    with session_scope() as session:
        art = article(session, ctx.document_id)
        art.html = result.html
        art.title = result.title
        art.excerpt = result.excerpt
        art.slug = result.slug
        art.tags = result.tags
        art.categories = [result.category] if result.category else []
        art.edit_engine = result.engine
        art.edit_warnings = result.warnings
    return {"engine": result.engine, "title": result.title, "summary": f"{result.engine}: {result.title}"}
