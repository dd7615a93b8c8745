from __future__ import annotations

from sqlalchemy import select

from app.core.db import session_scope
from app.integrations.storage import IMMUTABLE_CACHE
from app.models import Asset
from app.services import storage
from app.workflows.registry import StepContext, step_kind


@step_kind("upload_image", outputs={"url": str}, queue="io")
def upload_image(ctx: StepContext) -> dict:
    """Copy one extracted image to public media storage (content-addressed: stored once)."""
    key = str(ctx.item)
    with session_scope() as session:
        asset = session.execute(
            select(Asset).where(Asset.document_id == ctx.document_id, Asset.key == key)
        ).scalar_one()
        artifact_key, content_type = asset.artifact_key, asset.content_type
    media_key = f"media/{key}"
    store = storage()
    uploaded = False
    if store.head(media_key) is None:  # a re-run checks before it uploads again
        store.put(media_key, store.get(artifact_key), content_type=content_type, cache_control=IMMUTABLE_CACHE)
        uploaded = True
    url = store.url(media_key)
    with session_scope() as session:
        asset = session.execute(
            select(Asset).where(Asset.document_id == ctx.document_id, Asset.key == key)
        ).scalar_one()
        asset.storage_key, asset.url = media_key, url
    return {"key": key, "url": url, "uploaded": uploaded}
