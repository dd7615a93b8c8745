"""Helpers shared by the step kinds."""

from __future__ import annotations

from sqlalchemy import select

from app.core.errors import NotFound
from app.models import Article, Document
from app.workflows.registry import StepContext


def document(session, ctx: StepContext) -> Document:
    doc = session.get(Document, ctx.document_id) if ctx.document_id else None
    if doc is None:
        raise NotFound("the run has no document")
    return doc


def article(session, document_id) -> Article:
    article = session.execute(select(Article).where(Article.document_id == document_id)).scalar_one_or_none()
    if article is None:
        raise NotFound("the document has not been parsed yet")
    return article
