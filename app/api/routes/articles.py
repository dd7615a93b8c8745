from __future__ import annotations

import difflib
import html
import re
import uuid

from fastapi import APIRouter, Query
from pydantic import BaseModel
from sqlalchemy import select

from app.api.deps import CurrentUser, Session
from app.api.schemas import ArticleOut
from app.api.views import article_out
from app.core.errors import NotFound
from app.models import Article

router = APIRouter(prefix="/articles", tags=["articles"])


class ArticleDiff(BaseModel):
    article_id: uuid.UUID
    engine: str | None
    changed: bool
    unified: str  # a unified diff of the text blocks, original -> edited


@router.get("", response_model=list[ArticleOut])
async def list_articles(
    session: Session, user: CurrentUser, limit: int = Query(50, ge=1, le=500), offset: int = Query(0, ge=0)
) -> list[ArticleOut]:
    rows = await session.execute(select(Article).order_by(Article.created_at.desc()).limit(limit).offset(offset))
    return [article_out(a) for a in rows.scalars()]


async def _article(session, article_id: uuid.UUID) -> Article:
    article = await session.get(Article, article_id)
    if article is None:
        raise NotFound(f"no article {article_id}")
    return article


@router.get("/{article_id}", response_model=ArticleOut)
async def get_article(article_id: uuid.UUID, session: Session, user: CurrentUser) -> ArticleOut:
    return article_out(await _article(session, article_id))


_BLOCK = re.compile(r"</(?:p|h[1-6]|li|tr|figcaption|blockquote)>|<br\s*/?>", re.I)
_TAG = re.compile(r"<[^>]+>")


def text_blocks(markup: str) -> list[str]:
    return [html.unescape(_TAG.sub("", b)).strip() for b in _BLOCK.split(markup) if _TAG.sub("", b).strip()]


@router.get("/{article_id}/diff", response_model=ArticleDiff)
async def article_diff(article_id: uuid.UUID, session: Session, user: CurrentUser) -> ArticleDiff:
    """What the editing step changed: the original text beside the edited one."""
    article = await _article(session, article_id)
    before, after = text_blocks(article.original_html), text_blocks(article.html)
    unified = "\n".join(difflib.unified_diff(before, after, "original", "edited", lineterm=""))
    return ArticleDiff(article_id=article.id, engine=article.edit_engine, changed=before != after, unified=unified)
