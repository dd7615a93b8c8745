"""Turning rows into API models (shared by the routes)."""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from app.api.schemas import ArticleOut, Progress, RunOut, RunSummary, StepOut
from app.core.errors import NotFound
from app.models import Article, Run, Step
from app.services import preview_url


def progress(run: Run) -> Progress:
    return Progress(
        done=run.progress_done,
        total=run.progress_total,
        text=f"{run.progress_done} of {run.progress_total}",
    )


def run_summary(run: Run) -> RunSummary:
    data = {k: getattr(run, k) for k in RunSummary.model_fields if k != "progress"}
    return RunSummary(**data, progress=progress(run))


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
    article_id = None
    if run.document_id:
        article_id = (
            await session.execute(select(Article.id).where(Article.document_id == run.document_id))
        ).scalar_one_or_none()
    data = {k: getattr(run, k) for k in RunOut.model_fields if k not in ("progress", "steps", "article_id")}
    steps = [StepOut.model_validate(s) for s in run.steps]
    return RunOut(**data, progress=progress(run), steps=steps, article_id=article_id)


def article_out(article: Article) -> ArticleOut:
    data = {k: getattr(article, k) for k in ArticleOut.model_fields if k != "preview_url"}
    return ArticleOut(**data, preview_url=preview_url(article.id))
