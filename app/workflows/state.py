"""Run, step and item state in PostgreSQL: every transition, with its event, in one transaction.

Concurrency rules:
- Every transition locks the run row first (`SELECT … FOR UPDATE`), so a run's events get ids in
  commit order (the SSE stream relies on it) and progress counts never lose an update.
- A step or item is *claimed* before its work starts: the claim records the executing task and a
  heartbeat. A second delivery of the same work (acks_late redelivery, a sweeper re-queue) finds the
  claim and waits for it, or finds the work done and returns its stored result. A claim whose heartbeat
  is older than STEP_HEARTBEAT_TIMEOUT belonged to a dead worker and may be taken over.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from sqlalchemy import case, func, select, update
from sqlalchemy.orm import Session

from app.core.config import get_settings
from app.models import RUN_TERMINAL, STEP_DONE, STEP_TERMINAL, Run, RunEvent, Step, StepItem
from app.workflows.schema import WorkflowDef


def now() -> datetime:
    return datetime.now(timezone.utc)


def add_event(
    session: Session,
    run: Run,
    kind: str,
    state: str,
    *,
    step: str | None = None,
    item: int | None = None,
    message: str | None = None,
    data: dict | None = None,
) -> None:
    session.add(
        RunEvent(
            run_id=run.id, kind=kind, state=state, step=step, item=item, message=message, data=data or {}
        )
    )


def lock_run(session: Session, run_id: uuid.UUID) -> Run:
    """The run row, locked until the transaction ends (once per session: sessions here are short)."""
    locked = session.info.setdefault("locked_runs", {})
    if run_id in locked:
        return locked[run_id]
    run = session.execute(select(Run).where(Run.id == run_id).with_for_update()).scalar_one_or_none()
    locked[run_id] = run
    if run is None:
        from app.core.errors import NotFound

        raise NotFound(f"run {run_id} does not exist")
    return run


def get_step(session: Session, run_id: uuid.UUID, name: str, *, lock: bool = False) -> Step:
    query = select(Step).where(Step.run_id == run_id, Step.name == name)
    if lock:
        query = query.with_for_update()
    return session.execute(query).scalar_one()


def get_item(session: Session, step: Step, index: int, *, lock: bool = False) -> StepItem:
    query = select(StepItem).where(StepItem.step_id == step.id, StepItem.index == index)
    if lock:
        query = query.with_for_update()
    return session.execute(query).scalar_one()


# --- creating runs ---------------------------------------------------------------------------


def create_run(
    session: Session,
    wf: WorkflowDef,
    payload: dict[str, Any],
    *,
    document_id: uuid.UUID | None = None,
    source_id: uuid.UUID | None = None,
    mail_message_id: uuid.UUID | None = None,
    created_by: uuid.UUID | None = None,
) -> Run:
    from app.workflows.registry import kinds

    known = kinds()
    run = Run(
        id=uuid.uuid4(),
        workflow=wf.name,
        workflow_version=wf.version,
        definition=wf.model_dump(mode="json"),
        payload=payload,
        document_id=document_id,
        source_id=source_id,
        mail_message_id=mail_message_id,
        created_by=created_by,
        state="queued",
        progress_total=len(wf.steps),
    )
    session.add(run)
    for position, step in enumerate(wf.steps):
        kind = known.get(step.kind)
        session.add(
            Step(
                run_id=run.id,
                name=step.id,
                task=step.kind,
                position=position,
                queue=wf.queue_of(step, kind.default_queue if kind else None),
            )
        )
    session.flush()
    add_event(session, run, "run", "queued", data={"workflow": wf.name, "version": wf.version})
    return run


# --- progress ------------------------------------------------------------------------------------


def refresh_progress(session: Session, run: Run) -> None:
    """N of M: a step counts 1, a fan-out step counts its items once they are known (known and
    non-empty: the items are the units). One aggregate query: this runs on every transition, and
    loading the run's steps as objects for it was the engine's largest CPU cost per fan-out item
    (8% of the io worker's CPU in bench/throughput.py)."""
    fan_out = Step.items_total > 0
    total, done = session.execute(
        select(
            func.coalesce(func.sum(case((fan_out, Step.items_total), else_=1)), 0),
            func.coalesce(func.sum(case((fan_out, Step.items_done), (Step.state.in_(STEP_DONE), 1), else_=0)), 0),
        ).where(Step.run_id == run.id)
    ).one()
    run.progress_total, run.progress_done = int(total), int(done)


# --- claims --------------------------------------------------------------------------------------


@dataclass
class Claim:
    outcome: str  # run | done | busy | cancelled | failed | awaiting_approval
    attempts: int = 0  # attempts already made
    result: dict | None = None
    row_id: uuid.UUID | None = None  # the claimed step or item


def _claim_row(row, run: Run, worker: str, *, stale_before: datetime) -> Claim:
    if run.state == "cancelled" or row.state == "cancelled":
        return Claim("cancelled")
    if row.state in STEP_DONE:
        return Claim("done", row.attempts, row.result)
    if row.state == "failed":
        return Claim("failed", row.attempts)
    # A fan-out step's own work (creating items, launching their chord) is idempotent: never "busy".
    fan_out_parent = isinstance(row, Step) and row.items_total is not None
    live = row.heartbeat_at is not None and row.heartbeat_at > stale_before
    if row.state == "running" and live and row.claimed_by != worker and not fan_out_parent:
        return Claim("busy", row.attempts)
    row.state = "running"
    row.claimed_by = worker
    row.heartbeat_at = now()
    row.started_at = row.started_at or now()
    row.next_attempt_at = None
    return Claim("run", row.attempts)


def claim_step(
    session: Session, run_id: uuid.UUID, name: str, worker: str, *, needs_approval: bool = False
) -> Claim:
    run = lock_run(session, run_id)
    step = get_step(session, run_id, name, lock=True)
    if step.state == "awaiting_approval":
        return Claim("awaiting_approval")
    stale = now() - timedelta(seconds=get_settings().heartbeat_timeout)
    claim = _claim_row(step, run, worker, stale_before=stale)
    if claim.outcome == "run" and needs_approval and step.approved_at is None:
        step.state = "awaiting_approval"
        step.claimed_by = None
        run.state = "awaiting_approval"
        add_event(session, run, "step", "awaiting_approval", step=name)
        add_event(session, run, "run", "awaiting_approval", message=f"step '{name}' waits for approval")
        return Claim("awaiting_approval")
    if claim.outcome == "run":
        claim.row_id = step.id
        if run.state in ("queued", "awaiting_approval"):
            run.state = "running"
            run.started_at = run.started_at or now()
            add_event(session, run, "run", "running")
        add_event(session, run, "step", "running", step=name, data={"attempt": step.attempts + 1})
    return claim


def claim_item(session: Session, run_id: uuid.UUID, name: str, index: int, worker: str) -> tuple[Claim, Any]:
    run = lock_run(session, run_id)
    step = get_step(session, run_id, name)
    item = get_item(session, step, index, lock=True)
    stale = now() - timedelta(seconds=get_settings().heartbeat_timeout)
    claim = _claim_row(item, run, worker, stale_before=stale)
    if claim.outcome == "run":
        claim.row_id = item.id
        add_event(session, run, "item", "running", step=name, item=index, data={"key": item.key})
    return claim, (item.value or {}).get("value")


def heartbeat(session: Session, rows: list[tuple[str, uuid.UUID]]) -> None:
    """Refresh the heartbeat of the steps/items this process is working on."""
    stamp = now()
    step_ids = [i for kind, i in rows if kind == "step"]
    item_ids = [i for kind, i in rows if kind == "item"]
    if step_ids:
        session.execute(
            update(Step).where(Step.id.in_(step_ids), Step.state == "running").values(heartbeat_at=stamp)
        )
    if item_ids:
        session.execute(
            update(StepItem)
            .where(StepItem.id.in_(item_ids), StepItem.state == "running")
            .values(heartbeat_at=stamp)
        )


# --- outcomes ------------------------------------------------------------------------------------


def _log_attempt(row, error: str, code: str, wait: float | None) -> None:
    entry = {"attempt": row.attempts, "at": now().isoformat(), "error": error, "code": code}
    if wait is not None:
        entry["next_wait"] = round(wait, 3)
    row.attempt_log = [*row.attempt_log, entry]


def _add_warnings(run: Run, warnings: list[str]) -> None:
    new = [w for w in warnings if w not in run.warnings]
    if new:
        run.warnings = [*run.warnings, *new]


def record_retry(
    session: Session, run_id: uuid.UUID, name: str, index: int | None, error: str, code: str, wait: float
) -> int:
    """An attempt failed and another will follow after `wait` seconds. Returns attempts made."""
    run = lock_run(session, run_id)
    row = _row(session, run_id, name, index, lock=True)
    row.attempts += 1
    row.state = "retrying"
    row.error, row.error_code = error, code
    row.next_attempt_at = now() + timedelta(seconds=wait)
    _log_attempt(row, error, code, wait)
    add_event(
        session,
        run,
        "item" if index is not None else "step",
        "retrying",
        step=name,
        item=index,
        message=error,
        data={"attempt": row.attempts, "next_wait": round(wait, 3), "code": code},
    )
    return row.attempts


def _row(session: Session, run_id: uuid.UUID, name: str, index: int | None, *, lock: bool = False):
    step = get_step(session, run_id, name, lock=lock and index is None)
    return step if index is None else get_item(session, step, index, lock=lock)


def step_succeeded(
    session: Session, run_id: uuid.UUID, name: str, result: dict | None, warnings: list[str], summary: str | None
) -> None:
    run = lock_run(session, run_id)
    step = get_step(session, run_id, name, lock=True)
    step.attempts += 1
    step.state = "succeeded"
    step.result = result
    step.summary = summary
    step.error = step.error_code = None
    step.finished_at = now()
    step.claimed_by = None
    _add_warnings(run, warnings)
    refresh_progress(session, run)
    add_event(
        session,
        run,
        "step",
        "succeeded",
        step=name,
        message=summary,
        data={"progress": [run.progress_done, run.progress_total]},
    )


def step_skipped(session: Session, run_id: uuid.UUID, name: str, reason: str) -> None:
    run = lock_run(session, run_id)
    step = get_step(session, run_id, name, lock=True)
    step.state = "skipped"
    step.summary = reason
    step.finished_at = now()
    refresh_progress(session, run)
    add_event(session, run, "step", "skipped", step=name, message=reason)


def _fail_run(session: Session, run: Run, step_name: str, message: str) -> None:
    if run.state in RUN_TERMINAL:
        return
    run.state = "failed"
    run.error = message
    run.error_step = step_name
    run.finished_at = now()
    add_event(session, run, "run", "failed", step=step_name, message=message)


def step_failed(
    session: Session, run_id: uuid.UUID, name: str, error: str, code: str, *, count_attempt: bool = True
) -> None:
    run = lock_run(session, run_id)
    step = get_step(session, run_id, name, lock=True)
    if count_attempt:
        step.attempts += 1
        _log_attempt(step, error, code, None)
    step.state = "failed"
    step.error, step.error_code = error, code
    step.finished_at = now()
    step.claimed_by = None
    add_event(session, run, "step", "failed", step=name, message=error, data={"code": code})
    _fail_run(session, run, name, f"step '{name}' failed: {error}")


def step_cancelled(session: Session, run_id: uuid.UUID, name: str, index: int | None = None) -> None:
    run = lock_run(session, run_id)
    row = _row(session, run_id, name, index, lock=True)
    if row.state in STEP_TERMINAL:
        return
    row.state = "cancelled"
    row.claimed_by = None
    row.finished_at = now()
    add_event(session, run, "item" if index is not None else "step", "cancelled", step=name, item=index)


# --- fan-out -------------------------------------------------------------------------------------


def ensure_items(session: Session, run_id: uuid.UUID, name: str, values: list[Any]) -> list[int]:
    """Create the step's items once (a redelivery keeps the first list). Returns the indexes to run."""
    run = lock_run(session, run_id)
    step = get_step(session, run_id, name, lock=True)
    existing = session.execute(select(StepItem).where(StepItem.step_id == step.id)).scalars().all()
    if not existing:
        for index, value in enumerate(values):
            session.add(StepItem(step_id=step.id, index=index, key=_item_key(value), value={"value": value}))
        step.items_total = len(values)
        session.flush()
        refresh_progress(session, run)
        add_event(
            session,
            run,
            "step",
            "running",
            step=name,
            message=f"{len(values)} item(s)",
            data={"items": len(values), "progress": [run.progress_done, run.progress_total]},
        )
        return list(range(len(values)))
    return [i.index for i in sorted(existing, key=lambda i: i.index)]


def _item_key(value: Any) -> str:
    if isinstance(value, dict):
        for field in ("key", "id", "name"):
            if field in value:
                return str(value[field])
    return str(value)[:500]


def item_succeeded(
    session: Session, run_id: uuid.UUID, name: str, index: int, result: dict | None, warnings: list[str]
) -> None:
    run = lock_run(session, run_id)
    step = get_step(session, run_id, name, lock=True)
    item = get_item(session, step, index, lock=True)
    if item.state == "succeeded":
        return
    item.attempts += 1
    item.state = "succeeded"
    item.result = result
    item.error = item.error_code = None
    item.finished_at = now()
    item.claimed_by = None
    # Counted up, not recounted: under the run's lock an item becomes succeeded exactly once (resume
    # and fan-out creation recount from the rows).
    step.items_done += 1
    run.progress_done += 1
    _add_warnings(run, warnings)
    add_event(
        session,
        run,
        "item",
        "succeeded",
        step=name,
        item=index,
        data={"key": item.key, "progress": [run.progress_done, run.progress_total]},
    )


def item_failed(session: Session, run_id: uuid.UUID, name: str, index: int, error: str, code: str) -> str:
    run = lock_run(session, run_id)
    step = get_step(session, run_id, name, lock=True)
    item = get_item(session, step, index, lock=True)
    item.attempts += 1
    _log_attempt(item, error, code, None)
    item.state = "failed"
    item.error, item.error_code = error, code
    item.finished_at = now()
    item.claimed_by = None
    step.items_failed = _count_items(session, step, "failed")
    message = f"item {index} ({item.key}): {error}"
    add_event(session, run, "item", "failed", step=name, item=index, message=error, data={"code": code})
    step.state = "failed"
    step.error, step.error_code = message, code
    step.finished_at = now()
    add_event(session, run, "step", "failed", step=name, message=message, data={"code": code})
    _fail_run(session, run, name, f"step '{name}' failed: {message}")
    return message


def _count_items(session: Session, step: Step, state: str) -> int:
    return session.execute(
        select(func.count()).select_from(StepItem).where(StepItem.step_id == step.id, StepItem.state == state)
    ).scalar_one()


def finish_fan_out(session: Session, run_id: uuid.UUID, name: str) -> bool:
    """Mark a fan-out step succeeded when all its items are; False if some are not."""
    run = lock_run(session, run_id)
    step = get_step(session, run_id, name, lock=True)
    if step.state == "succeeded":
        return True
    states = session.execute(select(StepItem.state).where(StepItem.step_id == step.id)).scalars().all()
    if any(s != "succeeded" for s in states):
        return False
    step.state = "succeeded"
    step.attempts = max(step.attempts, 1)
    step.summary = f"{len(states)} item(s)"
    step.items_done = len(states)
    step.finished_at = now()
    step.claimed_by = None
    refresh_progress(session, run)
    add_event(
        session,
        run,
        "step",
        "succeeded",
        step=name,
        message=step.summary,
        data={"progress": [run.progress_done, run.progress_total]},
    )
    return True


# --- the run as a whole --------------------------------------------------------------------------


def finish_run(session: Session, run_id: uuid.UUID) -> str:
    run = lock_run(session, run_id)
    if run.state in RUN_TERMINAL:
        return run.state
    states = session.execute(select(Step.state).where(Step.run_id == run_id)).scalars().all()
    if all(s in STEP_DONE for s in states):
        run.state = "succeeded"
        run.finished_at = now()
        refresh_progress(session, run)
        add_event(session, run, "run", "succeeded", data={"progress": [run.progress_done, run.progress_total]})
    return run.state


def fail_run(session: Session, run_id: uuid.UUID, step_name: str | None, message: str) -> None:
    """Fail a run from outside a step (an errback, the sweeper). Running steps are marked failed."""
    run = lock_run(session, run_id)
    if run.state in RUN_TERMINAL:
        return
    if step_name:
        step = get_step(session, run_id, step_name, lock=True)
        if step.state not in STEP_TERMINAL:
            step.state = "failed"
            step.error, step.error_code = message, "worker"
            step.finished_at = now()
            add_event(session, run, "step", "failed", step=step_name, message=message)
    _fail_run(session, run, step_name or "", message)


def cancel_run(session: Session, run_id: uuid.UUID, reason: str = "cancelled") -> Run:
    run = lock_run(session, run_id)
    if run.state in RUN_TERMINAL:
        return run
    for step in session.execute(select(Step).where(Step.run_id == run_id).with_for_update()).scalars():
        if step.state not in STEP_TERMINAL:
            step.state = "cancelled"
            step.finished_at = now()
            add_event(session, run, "step", "cancelled", step=step.name)
        session.execute(
            update(StepItem)
            .where(StepItem.step_id == step.id, StepItem.state.in_(("pending", "running", "retrying")))
            .values(state="cancelled", finished_at=now())
        )
    run.state = "cancelled"
    run.error = reason
    run.finished_at = now()
    add_event(session, run, "run", "cancelled", message=reason)
    return run


def reset_for_resume(session: Session, run_id: uuid.UUID) -> Run:
    """Put failed and cancelled steps and items back to pending; succeeded ones stay done."""
    run = lock_run(session, run_id)
    for step in session.execute(select(Step).where(Step.run_id == run_id).with_for_update()).scalars():
        items = session.execute(select(StepItem).where(StepItem.step_id == step.id)).scalars().all()
        for item in items:
            if item.state in ("failed", "cancelled"):
                item.state = "pending"
                item.error = item.error_code = None
                item.finished_at = None
                item.attempts = 0
        if step.state in ("failed", "cancelled", "retrying"):
            step.state = "pending"
            step.error = step.error_code = None
            step.finished_at = None
            step.attempts = 0
            step.items_failed = 0
    run.state = "queued"
    run.error = run.error_step = None
    run.finished_at = None
    refresh_progress(session, run)
    add_event(session, run, "run", "queued", message="resumed")
    return run


def approve_step(session: Session, run_id: uuid.UUID, user_id: uuid.UUID | None) -> str:
    run = lock_run(session, run_id)
    step = session.execute(
        select(Step).where(Step.run_id == run_id, Step.state == "awaiting_approval").with_for_update()
    ).scalar_one()
    step.approved_by = user_id
    step.approved_at = now()
    step.state = "pending"
    run.state = "queued"
    add_event(session, run, "step", "approved", step=step.name)
    add_event(session, run, "run", "queued", message=f"step '{step.name}' approved")
    return step.name
