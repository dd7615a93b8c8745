from __future__ import annotations

import uuid

from fastapi import APIRouter, Query
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel
from sqlalchemy import select

from app.api.deps import CurrentUser, Session, get_or_404
from app.api.schemas import ArticleOut
from app.api.views import article_out
from app.documents import resolve_images
from app.integrations.llm import diff_html
from app.models import Article, Asset

router = APIRouter(prefix="/articles", tags=["articles"])


class DiffOpOut(BaseModel):
    op: str  # equal | replace | insert | delete
    original: list[str]  # blocks before, one line each: "p: text …", "figure: [image …] caption"
    edited: list[str]  # blocks after
    words: list[tuple[str, str]]  # replace ops: ("equal" | "delete" | "insert", words)


class ArticleDiff(BaseModel):
    article_id: uuid.UUID
    engine: str | None  # "offline", "openai:<model>", or None before the editing step
    warnings: list[str]  # what the editing step reported (e.g. the original body was kept)
    usage: dict  # tokens, requests, estimated cost of the edit
    changed: bool
    changed_blocks: int  # original blocks replaced or deleted, plus blocks inserted
    similarity: float  # 0..1
    ops: list[DiffOpOut]
    unified: str  # a unified diff of the blocks, original -> edited


@router.get("", response_model=list[ArticleOut])
async def list_articles(
    session: Session, user: CurrentUser, limit: int = Query(50, ge=1, le=500), offset: int = Query(0, ge=0)
) -> list[ArticleOut]:
    rows = await session.execute(select(Article).order_by(Article.created_at.desc()).limit(limit).offset(offset))
    return [article_out(a) for a in rows.scalars()]


@router.get("/{article_id}", response_model=ArticleOut)
async def get_article(article_id: uuid.UUID, session: Session, user: CurrentUser) -> ArticleOut:
    return article_out(await get_or_404(session, Article, article_id, "article"))


@router.get("/{article_id}/diff", response_model=ArticleDiff)
async def article_diff(article_id: uuid.UUID, session: Session, user: CurrentUser) -> ArticleDiff:
    """What the editing step changed, block by block (with a word diff of changed paragraphs), so an
    editor can see it before approving. Images on both sides point where they are published (once
    uploaded), so only real changes show."""
    article = await get_or_404(session, Article, article_id, "article")
    assets = select(Asset.key, Asset.url).where(Asset.document_id == article.document_id)
    urls = {key: url for key, url in (await session.execute(assets)).all() if url}
    original, edited = resolve_images(article.original_html, urls), resolve_images(article.html, urls)
    diff = (await run_in_threadpool(diff_html, original, edited)).to_dict()
    return ArticleDiff(
        article_id=article.id,
        engine=article.edit_engine,
        warnings=list(article.edit_warnings or []),
        usage=dict(article.usage or {}),
        changed=diff["changed_blocks"] > 0,
        **diff,
    )
