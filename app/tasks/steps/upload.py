from __future__ import annotations

from sqlalchemy import select

from app.core.db import session_scope
from app.integrations.storage import IMMUTABLE_CACHE
from app.models import Asset, Document, Site
from app.services import storage
from app.workflows.registry import StepContext, implements


def media_key_for(image_key: str, site_prefix: str = "") -> str:
    """`media/[<site prefix>/]<sha256>.<ext>`: content-addressed, so the same image is stored once."""
    prefix = site_prefix.strip("/")
    return f"media/{prefix}/{image_key}" if prefix else f"media/{image_key}"


@implements("upload_image")
def upload_image(ctx: StepContext) -> dict:
    """Copy one extracted image to public media storage (checked first: a re-run uploads nothing)."""
    key = str(ctx.item)
    with session_scope() as session:
        asset = session.execute(
            select(Asset).where(Asset.document_id == ctx.document_id, Asset.key == key)
        ).scalar_one()
        artifact_key, content_type = asset.artifact_key, asset.content_type
        doc = session.get(Document, ctx.document_id)
        site = session.get(Site, doc.site_id) if doc and doc.site_id else None
        prefix = site.media_prefix if site else ""
    media_key = media_key_for(key, prefix)
    store = storage()
    uploaded = False
    if store.head(media_key) is None:
        # Content-addressed: a racing worker can only write the very same bytes under this key.
        store.put(media_key, store.get(artifact_key), content_type=content_type, cache_control=IMMUTABLE_CACHE)
        uploaded = True
    url = store.url(media_key)
    with session_scope() as session:
        asset = session.execute(
            select(Asset).where(Asset.document_id == ctx.document_id, Asset.key == key)
        ).scalar_one()
        asset.storage_key, asset.url = media_key, url
    return {"key": key, "url": url, "uploaded": uploaded, "summary": "uploaded" if uploaded else "already stored"}
