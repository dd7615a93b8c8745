from __future__ import annotations

import asyncio
import json
import uuid
from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Header, Query, Request
from fastapi.concurrency import run_in_threadpool
from sqlalchemy import func, select
from sse_starlette.sse import EventSourceResponse

from app.api.deps import CurrentUser, Session
from app.api.schemas import ApproveRequest, RunOut, RunPage
from app.api.views import load_run, run_detail, run_summary, with_names
from app.core.db import async_sessions
from app.models import RUN_TERMINAL, Run, RunEvent
from app.workflows import engine

router = APIRouter(prefix="/runs", tags=["runs"])
RunState = Literal["queued", "running", "awaiting_approval", "succeeded", "failed", "cancelled"]


@router.get("", response_model=RunPage)
async def list_runs(
    session: Session,
    user: CurrentUser,
    state: Annotated[list[RunState] | None, Query()] = None,
    workflow: str | None = None,
    source_id: uuid.UUID | None = None,
    document_id: uuid.UUID | None = None,
    created_after: datetime | None = None,
    created_before: datetime | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> RunPage:
    """Runs, newest first, filtered by state, workflow, source, document and creation date."""
    query = select(Run)
    if state:
        query = query.where(Run.state.in_(state))
    if workflow:
        query = query.where(Run.workflow == workflow)
    if source_id:
        query = query.where(Run.source_id == source_id)
    if document_id:
        query = query.where(Run.document_id == document_id)
    if created_after:
        query = query.where(Run.created_at >= created_after)
    if created_before:
        query = query.where(Run.created_at < created_before)
    total = (await session.execute(select(func.count()).select_from(query.subquery()))).scalar_one()
    page = with_names(query).order_by(Run.created_at.desc()).limit(limit).offset(offset)
    rows = (await session.execute(page)).all()
    return RunPage(items=[run_summary(*row) for row in rows], total=total, limit=limit, offset=offset)


@router.get("/{run_id}", response_model=RunOut, name="get_run")
async def get_run(run_id: uuid.UUID, session: Session, user: CurrentUser) -> RunOut:
    """The run with its steps, their attempts and errors, and each fan-out item."""
    return await run_detail(session, run_id)


@router.get(
    "/{run_id}/events",
    response_class=EventSourceResponse,
    responses={200: {"content": {"text/event-stream": {}}, "description": "Server-Sent Events"}},
)
async def run_events(
    run_id: uuid.UUID,
    request: Request,
    session: Session,
    user: CurrentUser,
    last_event_id: Annotated[int | None, Header()] = None,
    after: Annotated[int | None, Query(description="replay events after this id")] = None,
):
    """One event per change of the run, its steps and items, in order; the stream ends with the run."""
    await load_run(session, run_id)  # 404 for an unknown run
    await session.close()  # the stream reads with short sessions of its own; hold no connection
    start = last_event_id if last_event_id is not None else (after or 0)

    async def stream():
        last = start
        while True:
            async with async_sessions()() as s:
                # The state first: a run's last event commits with its end, so once the state read
                # here is final the events read next include the last one. (Read the other way round,
                # a run ending between the two reads would end the stream without its last event.)
                run_state = (await s.execute(select(Run.state).where(Run.id == run_id))).scalar_one()
                events = (
                    await s.execute(
                        select(RunEvent)
                        .where(RunEvent.run_id == run_id, RunEvent.id > last)
                        .order_by(RunEvent.id)
                        .limit(500)
                    )
                ).scalars().all()
            for event in events:
                last = event.id
                yield {
                    "id": str(event.id),
                    "event": event.kind,
                    "data": json.dumps(
                        {
                            "id": event.id,
                            "at": event.at.isoformat(),
                            "kind": event.kind,
                            "step": event.step,
                            "item": event.item,
                            "state": event.state,
                            "message": event.message,
                            "data": event.data,
                        }
                    ),
                }
            if not events and run_state in RUN_TERMINAL:
                yield {"event": "end", "data": json.dumps({"state": run_state})}
                return
            if await request.is_disconnected():
                return
            if not events:
                await asyncio.sleep(0.2)

    return EventSourceResponse(stream(), ping=15)


async def _after(session, run_id: uuid.UUID, send: bool) -> RunOut:
    await session.commit()
    if send:
        run = await session.get(Run, run_id)
        await run_in_threadpool(engine.send, run)
    return await run_detail(session, run_id)


@router.post("/{run_id}/cancel", response_model=RunOut)
async def cancel_run(run_id: uuid.UUID, session: Session, user: CurrentUser) -> RunOut:
    """Stop the run: queued steps and items are not started, the rest is marked cancelled."""
    await session.run_sync(lambda s: engine.cancel(s, run_id, f"cancelled by {user.email}"))
    return await _after(session, run_id, send=False)


@router.post("/{run_id}/resume", response_model=RunOut)
async def resume_run(run_id: uuid.UUID, session: Session, user: CurrentUser) -> RunOut:
    """Re-run the failed (or cancelled) steps and items and continue; succeeded ones are not run again."""
    await session.run_sync(lambda s: engine.resume(s, run_id))
    return await _after(session, run_id, send=True)


@router.post("/{run_id}/approve", response_model=RunOut)
async def approve_run(run_id: uuid.UUID, session: Session, user: CurrentUser) -> RunOut:
    """Let a run waiting for approval go on."""
    await session.run_sync(lambda s: engine.approve(s, run_id, user.id))
    return await _after(session, run_id, send=True)


@router.post("/{run_id}/reject", response_model=RunOut)
async def reject_run(
    run_id: uuid.UUID, session: Session, user: CurrentUser, body: ApproveRequest | None = None
) -> RunOut:
    """Refuse a run waiting for approval: it ends cancelled, with who rejected it and why."""
    reason = body.reason if body else None
    await session.run_sync(lambda s: engine.reject(s, run_id, user.email, reason))
    return await _after(session, run_id, send=False)
