"""Housekeeping tasks run by beat: the sweeper (stuck runs) and the retention of cached edits (the
mailbox dispatcher is in app.tasks.mailbox)."""

from __future__ import annotations

import logging
from datetime import timedelta

from sqlalchemy import delete, func, select

from app.core.config import get_settings
from app.core.db import session_scope
from app.models import LlmCache, Run, RunEvent, Step, StepItem
from app.tasks.celery_app import celery_app
from app.workflows import engine, state

log = logging.getLogger("copydesk.sweeper")


def find_stuck_runs(session, *, stuck_after: float, heartbeat_timeout: float) -> list[tuple[Run, str]]:
    """Runs that are queued or running, have shown no event for `stuck_after` seconds (or were never
    sent: engine.NOT_SENT), and have no step or item that is alive (a fresh heartbeat) or waiting for a
    scheduled retry. Measured on the database's clock: a sweeper on a host whose clock runs ahead
    must not find live runs stuck."""
    now = session.execute(select(func.now())).scalar_one()
    quiet_since = now - timedelta(seconds=stuck_after)
    stale = now - timedelta(seconds=heartbeat_timeout)
    last_event = (
        select(RunEvent.run_id, func.max(RunEvent.at).label("last"), func.max(RunEvent.id).label("last_id"))
        .group_by(RunEvent.run_id)
        .subquery()
    )
    unsent = select(RunEvent.id).where(
        RunEvent.id == last_event.c.last_id, RunEvent.message == engine.NOT_SENT
    )
    candidates = session.execute(
        select(Run, unsent.exists().label("unsent"))
        .join(last_event, last_event.c.run_id == Run.id)
        .where(Run.state.in_(("queued", "running")), (last_event.c.last < quiet_since) | unsent.exists())
    ).all()
    stuck = []
    for run, never_sent in candidates:
        live_steps = session.execute(
            select(func.count())
            .select_from(Step)
            .where(
                Step.run_id == run.id,
                ((Step.state == "running") & (Step.heartbeat_at > stale) & Step.items_total.is_(None))
                | ((Step.state == "retrying") & (Step.next_attempt_at > now - timedelta(seconds=stuck_after))),
            )
        ).scalar_one()
        live_items = session.execute(
            select(func.count())
            .select_from(StepItem)
            .join(Step, Step.id == StepItem.step_id)
            .where(
                Step.run_id == run.id,
                ((StepItem.state == "running") & (StepItem.heartbeat_at > stale))
                | ((StepItem.state == "retrying") & (StepItem.next_attempt_at > now - timedelta(seconds=stuck_after))),
            )
        ).scalar_one()
        if never_sent:
            stuck.append((run, "recorded while the broker was unavailable"))
        elif live_steps == 0 and live_items == 0:
            stuck.append((run, f"no progress for {stuck_after:.0f}s and no live step"))
    return stuck


def sweep(*, stuck_after: float | None = None, heartbeat_timeout: float | None = None) -> dict[str, list[str]]:
    """Re-queue stuck runs (their finished steps are skipped on the way), or fail them with the reason
    once they have been re-queued RUN_MAX_SWEEPS times."""
    settings = get_settings()
    stuck_after = settings.stuck_after if stuck_after is None else stuck_after
    heartbeat_timeout = settings.heartbeat_timeout if heartbeat_timeout is None else heartbeat_timeout
    requeued, failed = [], []
    with session_scope() as session:
        stuck = find_stuck_runs(session, stuck_after=stuck_after, heartbeat_timeout=heartbeat_timeout)
        to_send = []
        for run, reason in stuck:
            run = state.lock_run(session, run.id)
            if run.sweeps >= settings.max_sweeps:
                state.fail_run(session, run.id, None, f"stuck: {reason}, after {run.sweeps} re-queue(s)")
                failed.append(str(run.id))
                continue
            run.sweeps += 1
            run.launches += 1
            state.add_event(session, run, "run", run.state, message=f"re-queued by the sweeper: {reason}")
            to_send.append(run)
            requeued.append(str(run.id))
    for run in to_send:
        engine.send(run)
    if requeued or failed:
        log.warning("sweeper re-queued %d run(s), failed %d", len(requeued), len(failed))
    return {"requeued": requeued, "failed": failed}


@celery_app.task(name="copydesk.sweep")
def sweep_task() -> dict[str, list[str]]:
    return sweep()


def prune_llm_cache(days: float | None = None) -> int:
    """Delete cached edits older than LLM_CACHE_DAYS (0: keep them all). Returns how many went."""
    days = get_settings().llm_cache_days if days is None else days
    if days <= 0:
        return 0
    with session_scope() as session:
        deleted = session.execute(
            delete(LlmCache).where(LlmCache.created_at < state.now() - timedelta(days=days))
        ).rowcount
    if deleted:
        log.info("deleted %d cached edit(s) older than %g day(s)", deleted, days)
    return deleted


@celery_app.task(name="copydesk.prune_llm_cache")
def prune_llm_cache_task() -> int:
    return prune_llm_cache()
