from __future__ import annotations

from sqlalchemy import select

from app.core.db import session_scope
from app.core.errors import NotFound
from app.documents import placeholder_keys, resolve_images
from app.models import Asset
from app.services import preview_url
from app.tasks.steps.common import article
from app.workflows.registry import StepContext, step_kind
from app.workflows.state import now


@step_kind("publish", outputs={"url": str}, queue="io")
def publish(ctx: StepContext) -> dict:
    """Publish the article: to the local preview (default) or WordPress (when a site is configured)."""
    with session_scope() as session:
        art = article(session, ctx.document_id)
        urls = {
            a.key: a.url
            for a in session.execute(select(Asset).where(Asset.document_id == ctx.document_id)).scalars()
            if a.url
        }
        missing = [k for k in placeholder_keys(art.html) if k not in urls]
        if missing:
            raise NotFound(f"{len(missing)} image(s) have no stored URL yet: {', '.join(missing[:3])}")
        art.html = resolve_images(art.html, urls)
        art.blocks = resolve_images(art.blocks, urls)
        art.publisher = "preview"
        art.wp_url = preview_url(art.id)
        art.status = "publish"
        art.published_at = now()
        url = art.wp_url
    return {"url": url, "publisher": "preview", "summary": f"preview at {url}"}
