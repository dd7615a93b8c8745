"""The step kinds of the publish_document workflow: thin adapters that load what the step needs, call
one service (app/documents, app/integrations) and record the result. No business logic here."""

from __future__ import annotations

from dataclasses import asdict

from sqlalchemy import select

from app.core.db import session_scope
from app.core.errors import InvalidDocument, NotFound
from app.documents import convert as convert_docx
from app.documents import detect_kind, placeholder_keys, resolve_images
from app.integrations.llm import EditRequest, OfflineEditor
from app.integrations.storage import IMMUTABLE_CACHE
from app.models import Article, Asset, Document
from app.services import preview_url, storage
from app.workflows.registry import StepContext, step_kind


def _document(session, ctx: StepContext) -> Document:
    doc = session.get(Document, ctx.document_id) if ctx.document_id else None
    if doc is None:
        raise NotFound("the run has no document")
    return doc


def _article(session, document_id) -> Article:
    article = session.execute(select(Article).where(Article.document_id == document_id)).scalar_one_or_none()
    if article is None:
        raise NotFound("the document has not been parsed yet")
    return article


@step_kind("store", outputs={"kind": str, "size": int, "sha256": str})
def store(ctx: StepContext) -> dict:
    """Check the kept original: present in storage, unchanged, and really a Word document."""
    with session_scope() as session:
        doc = _document(session, ctx)
        key, expected, filename = doc.original_key, doc.sha256, doc.filename
    import hashlib

    data = storage().get(key)
    if hashlib.sha256(data).hexdigest() != expected:
        raise InvalidDocument(f"the stored original of {filename} does not match its checksum")
    kind = detect_kind(data, filename)
    return {"kind": kind, "size": len(data), "sha256": expected, "summary": f"{kind}, {len(data)} bytes"}


@step_kind("convert", outputs={"docx_key": str})
def convert(ctx: StepContext) -> dict:
    """Legacy .doc -> .docx through LibreOffice."""
    from app.core.config import get_settings
    from app.documents.legacy import doc_to_docx

    settings = get_settings()
    with session_scope() as session:
        doc = _document(session, ctx)
        key, filename, doc_id = doc.original_key, doc.filename, doc.id
    data = storage().get(key)
    docx = doc_to_docx(data, filename=filename, soffice=settings.soffice_path, timeout=settings.convert_timeout)
    out_key = f"artifacts/{doc_id}/converted.docx"
    storage().put(out_key, docx, content_type="application/vnd.openxmlformats-officedocument.wordprocessingml.document")
    return {"docx_key": out_key, "summary": f"converted {filename} to .docx ({len(docx)} bytes)"}


@step_kind("parse", outputs={"images": list, "title": str, "words": int})
def parse(ctx: StepContext) -> dict:
    """.docx -> clean HTML, block markup, images (kept as private artifacts), report, metadata."""
    with session_scope() as session:
        doc = _document(session, ctx)
        doc_id, filename = doc.id, doc.filename
        source_key = (ctx.results.get("convert") or {}).get("docx_key") or doc.original_key
    result = convert_docx(storage().get(source_key), filename)
    for image in result.images:
        storage().put(f"artifacts/{doc_id}/images/{image.key}", image.data, content_type=image.content_type)
    for warning in result.report.warnings:
        ctx.warn(f"conversion: {warning}")
    with session_scope() as session:
        article = session.execute(select(Article).where(Article.document_id == doc_id)).scalar_one_or_none()
        if article is None:
            article = Article(document_id=doc_id)
            session.add(article)
        article.run_id = ctx.run_id
        article.title = result.title
        article.original_html = article.html = result.html
        article.original_blocks = article.blocks = result.blocks
        article.text = result.text
        article.report = asdict(result.report)
        article.doc_metadata = asdict(result.metadata)
        existing = {a.sha256: a for a in session.execute(select(Asset).where(Asset.document_id == doc_id)).scalars()}
        for position, image in enumerate(result.images):
            asset = existing.get(image.sha256) or Asset(document_id=doc_id, sha256=image.sha256)
            asset.position, asset.key = position, image.key
            asset.artifact_key = f"artifacts/{doc_id}/images/{image.key}"
            asset.content_type, asset.size = image.content_type, image.size
            asset.width, asset.height = image.width, image.height
            asset.alt, asset.caption = image.alt, image.caption
            session.add(asset)
    words = len(result.text.split())
    return {
        "images": [image.key for image in result.images],
        "title": result.title,
        "words": words,
        "summary": f"{words} words, {len(result.images)} image(s)",
    }


@step_kind("transform", outputs={"engine": str, "title": str})
def transform(ctx: StepContext) -> dict:
    """Edit the article for the web and write its title, excerpt, slug and tags."""
    with session_scope() as session:
        doc = _document(session, ctx)
        article = _article(session, doc.id)
        request = EditRequest(
            html=article.original_html,
            text=article.text,
            title=article.title,
            keywords=list(article.doc_metadata.get("keywords") or []),
            instructions=str(ctx.options.get("instructions", "")),
        )
    result = OfflineEditor().edit(request)
    for warning in result.warnings:
        ctx.warn(warning)
    with session_scope() as session:
        article = _article(session, ctx.document_id)
        article.html = result.html
        article.title = result.title
        article.excerpt = result.excerpt
        article.slug = result.slug
        article.tags = result.tags
        article.categories = [result.category] if result.category else []
        article.edit_engine = result.engine
        article.edit_warnings = result.warnings
    return {"engine": result.engine, "title": result.title, "summary": f"{result.engine}: {result.title}"}


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
    store_ = storage()
    uploaded = False
    if store_.head(media_key) is None:  # a re-run checks before it uploads again
        store_.put(media_key, store_.get(artifact_key), content_type=content_type, cache_control=IMMUTABLE_CACHE)
        uploaded = True
    url = store_.url(media_key)
    with session_scope() as session:
        asset = session.execute(
            select(Asset).where(Asset.document_id == ctx.document_id, Asset.key == key)
        ).scalar_one()
        asset.storage_key, asset.url = media_key, url
    return {"key": key, "url": url, "uploaded": uploaded}


@step_kind("publish", outputs={"url": str}, queue="io")
def publish(ctx: StepContext) -> dict:
    """Publish the article: to the local preview (default) or WordPress (when a site is configured)."""
    from app.workflows.state import now

    with session_scope() as session:
        article = _article(session, ctx.document_id)
        urls = {
            a.key: a.url
            for a in session.execute(select(Asset).where(Asset.document_id == ctx.document_id)).scalars()
            if a.url
        }
        missing = [k for k in placeholder_keys(article.html) if k not in urls]
        if missing:
            raise NotFound(f"{len(missing)} image(s) have no stored URL yet: {', '.join(missing[:3])}")
        article.html = resolve_images(article.html, urls)
        article.blocks = resolve_images(article.blocks, urls)
        article.publisher = "preview"
        article.wp_url = preview_url(article.id)
        article.status = "publish"
        article.published_at = now()
        url = article.wp_url
    return {"url": url, "publisher": "preview", "summary": f"preview at {url}"}
