from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict

from sqlalchemy import select

from app.core.config import get_settings
from app.core.db import session_scope
from app.documents import LibreOffice, word_to_article
from app.documents.html_input import convert_html
from app.documents.words import word_count
from app.models import Article, Asset
from app.services import storage
from app.tasks.steps.common import document
from app.workflows.registry import StepContext, implements


@implements("parse")
def parse(ctx: StepContext) -> dict:
    """.docx (or a mail body's HTML) -> clean HTML, block markup, images (kept as private artifacts),
    report, metadata."""
    with session_scope() as session:
        doc = document(session, ctx)
        doc_id, filename, kind = doc.id, doc.filename, doc.kind
        # A run stored before the step was renamed has its result under "convert".
        converted = ctx.results.get("to_docx") or ctx.results.get("convert") or {}
        source_key = converted.get("docx_key") or doc.original_key
    if kind == "html":  # a mail body: its subject is the title
        result = convert_html(storage().get(source_key), title=str(ctx.payload.get("title") or ""))
    else:
        settings = get_settings()
        # LibreOffice (when installed) turns EMF/WMF pictures into PNG; without it they are reported.
        libreoffice = LibreOffice.find(settings.soffice_path, settings.convert_timeout)
        result = word_to_article(storage().get(source_key), filename, libreoffice=libreoffice)
    store = storage()
    with ThreadPoolExecutor(max_workers=8) as pool:  # object storage answers in parallel
        list(pool.map(
            lambda image: store.put(
                f"artifacts/{doc_id}/images/{image.key}", image.data, content_type=image.content_type
            ),
            result.images,
        ))
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
        # Footnotes travel to WordPress as post meta beside the wp:footnotes block.
        article.doc_metadata = {**asdict(result.metadata), "wp_meta": result.wordpress_meta()}
        # Chosen by size and shape (app/documents/featured.py); a directive still wins at publish time.
        article.featured_image = result.featured_image.key if result.featured_image is not None else None
        existing = {a.sha256: a for a in session.execute(select(Asset).where(Asset.document_id == doc_id)).scalars()}
        for position, image in enumerate(result.images):
            asset = existing.get(image.sha256) or Asset(document_id=doc_id, sha256=image.sha256)
            asset.position, asset.key = position, image.key
            asset.artifact_key = f"artifacts/{doc_id}/images/{image.key}"
            asset.content_type, asset.size = image.content_type, image.size
            asset.width, asset.height = image.width, image.height
            asset.alt, asset.caption = image.alt, image.caption
            session.add(asset)
    words = word_count(result.text)
    return {
        "images": [image.key for image in result.images],
        "title": result.title,
        "words": words,
        "summary": f"{words} words, {len(result.images)} image(s)",
    }
