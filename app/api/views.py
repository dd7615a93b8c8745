"""Turning rows into API models (shared by the routes)."""

from __future__ import annotations

import uuid

from sqlalchemy import Select, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from app.api.schemas import ArticleOut, NotificationOut, Progress, RunOut, RunSummary, StepOut
from app.core.errors import NotFound
from app.integrations.notify.webhooks import shown_recipient
from app.models import Article, Document, Notification, Run, Step
from app.services import preview_url


def progress(run: Run) -> Progress:
    return Progress(
        done=run.progress_done,
        total=run.progress_total,
        text=f"{run.progress_done} of {run.progress_total}",
    )


NAMED = ("progress", "filename", "title")  # RunSummary fields that are not columns of Run


def run_summary(run: Run, filename: str | None = None, title: str | None = None) -> RunSummary:
    data = {k: getattr(run, k) for k in RunSummary.model_fields if k not in NAMED}
    return RunSummary(**data, progress=progress(run), filename=filename, title=title or None)


def with_names(query: Select) -> Select:
    """A select of runs, with each run's file name and article title (the arguments of run_summary)."""
    return (
        query.add_columns(Document.filename, Article.title)
        .outerjoin(Document, Document.id == Run.document_id)
        .outerjoin(Article, Article.document_id == Run.document_id)
    )


async def load_run(session: AsyncSession, run_id: uuid.UUID) -> Run:
    run = (
        await session.execute(
            select(Run)
            .where(Run.id == run_id)
            .options(selectinload(Run.steps).selectinload(Step.items))
            .execution_options(populate_existing=True)
        )
    ).scalar_one_or_none()
    if run is None:
        raise NotFound(f"no run {run_id}")
    return run


async def run_detail(session: AsyncSession, run_id: uuid.UUID) -> RunOut:
    run = await load_run(session, run_id)
    article_id = filename = title = None
    if run.document_id:
        row = (
            await session.execute(
                select(Article.id, Document.filename, Article.title)
                .select_from(Document)
                .outerjoin(Article, Article.document_id == Document.id)
                .where(Document.id == run.document_id)
            )
        ).first()
        if row is not None:
            article_id, filename, title = row
    data = {
        k: getattr(run, k) for k in RunOut.model_fields if k not in (*NAMED, "steps", "article_id", "notifications")
    }
    steps = [StepOut.model_validate(s) for s in run.steps]
    return RunOut(
        **data, progress=progress(run), steps=steps, article_id=article_id, filename=filename, title=title or None,
        notifications=await notifications_of(session, Notification.run_id == run_id),
    )  # fmt: skip


async def notifications_of(
    session: AsyncSession, where, *, newest: int | None = None, full_urls: bool = False
) -> list[NotificationOut]:
    """Replies and webhook deliveries, oldest first (or the `newest` few, newest first). A webhook's
    URL is shown without its path unless `full_urls` (for admins: chat services keep a token there)."""
    query = select(Notification).where(where)
    if newest is None:
        query = query.order_by(Notification.created_at)
    else:
        query = query.order_by(Notification.created_at.desc()).limit(newest)
    out = []
    for row in (await session.execute(query)).scalars():
        recipient = row.recipient if full_urls else shown_recipient(row.channel, row.recipient)
        out.append(NotificationOut.model_validate(row).model_copy(
            update={"subject": row.payload.get("subject"), "recipient": recipient}
        ))  # fmt: skip
    return out


def article_out(article: Article) -> ArticleOut:
    data = {k: getattr(article, k) for k in ArticleOut.model_fields if k != "preview_url"}
    return ArticleOut(**data, preview_url=preview_url(article.id))
