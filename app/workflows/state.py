"""Run, step and item state in PostgreSQL: every transition, with its event, in one transaction.

Concurrency rules:
- Every transition locks the run row first (`SELECT … FOR UPDATE`), so a run's events get ids in
  commit order (the SSE stream relies on it) and progress counts never lose an update. Rows read
  after that lock are current: every writer of a step or item holds it.
- The transitions every run makes many times (claims, successes, a fan-in, the run's end) are one
  SQL statement each after the run lock. In a worker of many threads a transaction that held the run
  lock across several round trips had to win the interpreter lock back after each one, so the items
  of a fan-out queued behind each other (bench/README.md, engine). The rare transitions (failures,
  retries, cancel, resume) use the ORM; a transaction updates rows in one style or the other.
- A step or item is *claimed* before its work starts: the claim records the executing task and a
  heartbeat. A second delivery of the same work (acks_late redelivery, a sweeper re-queue) finds the
  claim and waits for it, or finds the work done and returns its stored result. A claim whose heartbeat
  is older than STEP_HEARTBEAT_TIMEOUT belonged to a dead worker and may be taken over. `_OUTCOME`
  is the one rule for what a delivery does; the claim statements apply it and report it.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from sqlalchemy import Integer, String, bindparam, func, insert, select, text, update
from sqlalchemy.dialects.postgresql import JSONB, UUID
from sqlalchemy.orm import Session

from app.core.config import get_settings
from app.core.errors import NotFound
from app.models import RUN_TERMINAL, STEP_DONE, STEP_TERMINAL, Run, RunEvent, Step, StepItem
from app.workflows.registry import kinds
from app.workflows.schema import WorkflowDef


def now() -> datetime:
    return datetime.now(timezone.utc)


def add_event(
    session: Session,
    run: Run | uuid.UUID,
    kind: str,
    state: str,
    *,
    step: str | None = None,
    item: int | None = None,
    message: str | None = None,
    data: dict | None = None,
) -> None:
    run_id = run.id if isinstance(run, Run) else run
    session.add(
        RunEvent(run_id=run_id, kind=kind, state=state, step=step, item=item, message=message, data=data or {})
    )


_LOCK_RUN = text("SELECT state, warnings FROM runs WHERE id = :run_id FOR UPDATE").bindparams(
    bindparam("run_id", type_=UUID)
)


def lock_run_row(session: Session, run_id: uuid.UUID):
    """Every transition starts here: the run row locked until the transaction ends; its state and
    warnings (its definition and payload are read once per process, not on every transition). A
    statement built once: building a Core select on every call cost more CPU than the round trip."""
    row = session.execute(_LOCK_RUN, {"run_id": run_id}).one_or_none()
    if row is None:
        raise NotFound(f"run {run_id} does not exist")
    return row


def lock_run(session: Session, run_id: uuid.UUID) -> Run:
    """The run locked (lock_run_row) and loaded, for the transitions written with the ORM (once per
    session: sessions here are short)."""
    locked = session.info.setdefault("locked_runs", {})
    if run_id not in locked:
        lock_run_row(session, run_id)
        locked[run_id] = session.get(Run, run_id, populate_existing=True)
    return locked[run_id]


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


runs, steps, items = Run.__table__, Step.__table__, StepItem.__table__


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


# N of M: a step counts 1, a fan-out step counts its items once they are known (known and non-empty:
# the items are the units). The step named :step, if any, is counted as done: in the statements below
# it is succeeding in the same statement, whose parts do not see each other's changes.
_PROGRESS = """SELECT
    coalesce(sum(CASE WHEN items_total > 0 THEN items_total ELSE 1 END), 0) AS total,
    coalesce(sum(CASE WHEN name = :step AND items_total > 0 THEN items_total
                      WHEN name = :step THEN 1
                      WHEN items_total > 0 THEN items_done
                      WHEN state IN ('succeeded', 'skipped') THEN 1 ELSE 0 END), 0) AS done
    FROM steps WHERE run_id = :run_id"""


def refresh_progress(session: Session, run: Run) -> None:
    """Recount the run's progress (for the ORM transitions; the others count in their statement)."""
    total, done = session.execute(
        text(_PROGRESS).bindparams(bindparam("run_id", type_=UUID), bindparam("step", type_=String)),
        {"run_id": run.id, "step": None},
    ).one()
    run.progress_total, run.progress_done = int(total), int(done)


# --- claims --------------------------------------------------------------------------------------


@dataclass
class Claim:
    outcome: str  # run | done | busy | cancelled | failed | awaiting_approval
    attempts: int = 0  # attempts already made
    result: dict | None = None
    row_id: uuid.UUID | None = None  # the claimed step or item


# What a delivery of a step or item (`t`, locked) does, from its row and its run's state: the one
# definition of what is claimable (outcome 'run'). A claim already held by another execution whose
# heartbeat is fresh is 'busy', except a fan-out step's own (creating its items and sending their
# chord is idempotent). A step that must be approved first and is not yet is 'approval'.
_OUTCOME = """CASE
        WHEN :run_state = 'cancelled' OR t.state = 'cancelled' THEN 'cancelled'
        WHEN t.state IN ('succeeded', 'skipped') THEN 'done'
        WHEN t.state IN ('failed', 'awaiting_approval') THEN t.state
        WHEN t.state = 'running' AND t.heartbeat_at > :stale_before AND t.claimed_by IS DISTINCT FROM :worker
             AND NOT ({fan_out_parent}) THEN 'busy'
        WHEN {waits_for_approval} THEN 'approval'
        ELSE 'run' END"""


# The hot transitions, each one statement after the run lock. Their sub-statements may run in any
# order: that is safe because every other writer of this run's steps and items holds the run lock
# first, and the heartbeat skips locked rows. Sub-statements all see the rows as they were before
# the statement, hence the explicit adjustments (e.g. the step being counted as done). A claim takes
# the row when its outcome is 'run'.
_TAKE = """SET state = 'running', claimed_by = :worker, heartbeat_at = :now, next_attempt_at = NULL,
        started_at = coalesce(t.started_at, :now), updated_at = :now
    FROM target WHERE t.id = target.id AND target.outcome = 'run'"""

_CLAIM_ITEM = text(f"""
WITH target AS (
    SELECT t.id, t.attempts, t.result, t.key, t.value,
        {_OUTCOME.format(fan_out_parent="false", waits_for_approval="false")} AS outcome
    FROM step_items AS t JOIN steps AS s ON s.id = t.step_id
    WHERE s.run_id = :run_id AND s.name = :step AND t.index = :index
    FOR UPDATE OF t
), claimed AS (
    UPDATE step_items AS t {_TAKE}
    RETURNING t.id
), event AS (
    INSERT INTO run_events (run_id, at, kind, state, step, item, data)
    SELECT :run_id, :now, 'item', 'running', :step, :index, jsonb_build_object('key', key)
    FROM target WHERE EXISTS (SELECT FROM claimed)
)
SELECT id, outcome, attempts, result, value FROM target
""").bindparams(bindparam("run_id", type_=UUID))

_CLAIM_STEP = text(f"""
WITH target AS (
    SELECT t.id, t.attempts, t.result, {_OUTCOME.format(
        fan_out_parent="t.items_total IS NOT NULL",
        waits_for_approval=":needs_approval AND t.approved_at IS NULL",
    )} AS outcome
    FROM steps AS t WHERE t.run_id = :run_id AND t.name = :step
    FOR UPDATE
), claimed AS (
    UPDATE steps AS t {_TAKE}
    RETURNING t.id
), run AS (
    UPDATE runs SET state = 'running', started_at = coalesce(started_at, :now), updated_at = :now
    WHERE id = :run_id AND state IN ('queued', 'awaiting_approval') AND EXISTS (SELECT FROM claimed)
    RETURNING id
), event AS (
    INSERT INTO run_events (run_id, at, kind, state, step, data)
    SELECT :run_id, :now, kind, 'running', step, data FROM (
        SELECT 1 AS n, 'run' AS kind, NULL AS step, '{{}}'::jsonb AS data FROM run
        UNION ALL
        SELECT 2, 'step', :step, jsonb_build_object('attempt', attempts + 1) FROM target, claimed
    ) AS new ORDER BY n
)
SELECT id, outcome, attempts, result FROM target
""").bindparams(bindparam("run_id", type_=UUID))

_ITEM_SUCCEEDED = text("""
WITH item AS (
    SELECT i.id, i.step_id, i.key FROM step_items AS i JOIN steps AS s ON s.id = i.step_id
    WHERE s.run_id = :run_id AND s.name = :step AND i.index = :index AND i.state <> 'succeeded'
), done_item AS (
    UPDATE step_items AS t
    SET attempts = t.attempts + 1, state = 'succeeded', result = :result, error = NULL, error_code = NULL,
        finished_at = :now, claimed_by = NULL, updated_at = :now
    FROM item WHERE t.id = item.id
), done_step AS (
    UPDATE steps AS t SET items_done = t.items_done + 1, updated_at = :now FROM item WHERE t.id = item.step_id
), run AS (
    UPDATE runs AS t SET progress_done = t.progress_done + 1, warnings = :warnings, updated_at = :now
    FROM item WHERE t.id = :run_id
    RETURNING t.progress_done, t.progress_total
)
INSERT INTO run_events (run_id, at, kind, state, step, item, data)
SELECT :run_id, :now, 'item', 'succeeded', :step, :index,
       jsonb_build_object('key', item.key, 'progress', jsonb_build_array(run.progress_done, run.progress_total))
FROM item, run
""").bindparams(bindparam("run_id", type_=UUID), bindparam("result", type_=JSONB), bindparam("warnings", type_=JSONB))

_COUNTS = "counts AS (\n" + _PROGRESS + """
), run AS (
    UPDATE runs AS t SET progress_done = counts.done, progress_total = counts.total, updated_at = :now {run_values}
    FROM counts WHERE t.id = :run_id
    RETURNING t.progress_done, t.progress_total
)"""


def _step_done_sql(state: str, step_values: str = "", run_values: str = ""):
    """A step ends well (`state`: succeeded or skipped): the step, the run's progress, the event."""
    return text(f"""
WITH done_step AS (
    UPDATE steps AS t
    SET state = '{state}', summary = :summary, finished_at = :now, claimed_by = NULL, updated_at = :now{step_values}
    WHERE t.run_id = :run_id AND t.name = :step
), {_COUNTS.format(run_values=run_values)}
INSERT INTO run_events (run_id, at, kind, state, step, message, data)
SELECT :run_id, :now, 'step', '{state}', :step, :summary,
       jsonb_build_object('progress', jsonb_build_array(run.progress_done, run.progress_total))
FROM run
""")


_STEP_SUCCEEDED = _step_done_sql(
    "succeeded",
    ", attempts = t.attempts + 1, result = :result, error = NULL, error_code = NULL",
    ", warnings = :warnings",
).bindparams(bindparam("run_id", type_=UUID), bindparam("result", type_=JSONB), bindparam("warnings", type_=JSONB))
# A fan-out step succeeds through its fan-in, once all its items have.
_FAN_OUT_SUCCEEDED = _step_done_sql(
    "succeeded", ", attempts = greatest(t.attempts, 1), items_done = :items"
).bindparams(bindparam("run_id", type_=UUID))
# A step whose `when` is false: the summary says why.
_STEP_SKIPPED = _step_done_sql("skipped").bindparams(bindparam("run_id", type_=UUID))

_RUN_SUCCEEDED = text(f"""
WITH {_COUNTS.format(run_values=", state = 'succeeded', finished_at = :now")}
INSERT INTO run_events (run_id, at, kind, state, data)
SELECT :run_id, :now, 'run', 'succeeded',
       jsonb_build_object('progress', jsonb_build_array(run.progress_done, run.progress_total))
FROM run
""").bindparams(bindparam("run_id", type_=UUID), bindparam("step", type_=String))

# A fan-out step's items are known: progress recounted with them (no step counted as done).
_ITEMS_KNOWN = text(f"""
WITH {_COUNTS.format(run_values="")}
INSERT INTO run_events (run_id, at, kind, state, step, message, data)
SELECT :run_id, :now, 'step', 'running', :name, :items || ' item(s)',
       jsonb_build_object('items', :items, 'progress', jsonb_build_array(run.progress_done, run.progress_total))
FROM run
""").bindparams(bindparam("run_id", type_=UUID), bindparam("step", type_=String), bindparam("items", type_=Integer))


def _claim(row) -> Claim:
    if row.outcome == "run":
        return Claim("run", row.attempts, row_id=row.id)
    if row.outcome == "done":
        return Claim("done", row.attempts, row.result)
    if row.outcome in ("busy", "failed"):
        return Claim(row.outcome, row.attempts)
    return Claim(row.outcome)


def _claim_params(run_id: uuid.UUID, run_state: str, worker: str) -> dict[str, Any]:
    at = now()
    stale_before = at - timedelta(seconds=get_settings().heartbeat_timeout)
    return {"run_id": run_id, "run_state": run_state, "worker": worker, "now": at, "stale_before": stale_before}


def claim_step(
    session: Session, run_id: uuid.UUID, name: str, worker: str, *, needs_approval: bool = False
) -> Claim:
    run = lock_run_row(session, run_id)
    row = session.execute(
        _CLAIM_STEP, {**_claim_params(run_id, run.state, worker), "step": name, "needs_approval": needs_approval}
    ).one()
    if row.outcome != "approval":
        return _claim(row)
    session.execute(update(steps).where(steps.c.id == row.id).values(state="awaiting_approval", claimed_by=None))
    session.execute(update(runs).where(runs.c.id == run_id).values(state="awaiting_approval"))
    add_event(session, run_id, "step", "awaiting_approval", step=name)
    add_event(session, run_id, "run", "awaiting_approval", message=f"step '{name}' waits for approval")
    return Claim("awaiting_approval")


def claim_item(session: Session, run_id: uuid.UUID, name: str, index: int, worker: str) -> tuple[Claim, Any]:
    run = lock_run_row(session, run_id)
    row = session.execute(
        _CLAIM_ITEM, {**_claim_params(run_id, run.state, worker), "step": name, "index": index}
    ).one()
    claim = _claim(row)
    return claim, (row.value or {}).get("value") if claim.outcome == "run" else None


def heartbeat(session: Session, rows: list[tuple[str, uuid.UUID]]) -> None:
    """Refresh the heartbeat of the steps/items this process is working on. Rows locked by a
    transition are skipped (it is ending or renewing the claim anyway): the heartbeat never waits, so
    it cannot deadlock with a transition that holds the run lock."""
    stamp = now()
    for table, kind in ((steps, "step"), (items, "item")):
        ids = [i for k, i in rows if k == kind]
        if ids:
            free = select(table.c.id).where(table.c.id.in_(ids), table.c.state == "running")
            session.execute(
                update(table)
                .where(table.c.id.in_(free.with_for_update(skip_locked=True).scalar_subquery()))
                .values(heartbeat_at=stamp)
            )


# --- outcomes ------------------------------------------------------------------------------------


def _log_attempt(row, error: str, code: str, wait: float | None) -> None:
    entry = {"attempt": row.attempts, "at": now().isoformat(), "error": error, "code": code}
    if wait is not None:
        entry["next_wait"] = round(wait, 3)
    row.attempt_log = [*row.attempt_log, entry]


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


def _succeeded(session: Session, statement, run_id: uuid.UUID, warnings: list[str], **values) -> None:
    """A step or an item succeeded: the one statement, its warnings added to the run's."""
    run = lock_run_row(session, run_id)
    warnings = [*run.warnings, *(w for w in dict.fromkeys(warnings) if w not in run.warnings)]
    session.execute(statement, {**values, "run_id": run_id, "now": now(), "warnings": warnings})


def step_succeeded(
    session: Session, run_id: uuid.UUID, name: str, result: dict | None, warnings: list[str], summary: str | None
) -> None:
    _succeeded(session, _STEP_SUCCEEDED, run_id, warnings, step=name, result=result, summary=summary)


def step_skipped(session: Session, run_id: uuid.UUID, name: str, reason: str) -> None:
    lock_run_row(session, run_id)
    session.execute(_STEP_SKIPPED, {"run_id": run_id, "step": name, "summary": reason, "now": now()})


def _failed(
    session: Session, run: Run, row: Step | StepItem, error: str, code: str, *, step: str,
    item: int | None = None, count_attempt: bool = False,
) -> None:
    """A step or an item (`item`: its index) failed; `count_attempt`: by its own attempt."""
    if count_attempt:
        row.attempts += 1
        _log_attempt(row, error, code, None)
    row.state = "failed"
    row.error, row.error_code = error, code
    row.finished_at = now()
    row.claimed_by = None
    kind = "step" if item is None else "item"
    add_event(session, run, kind, "failed", step=step, item=item, message=error, data={"code": code})


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
    _failed(session, run, step, error, code, step=name, count_attempt=count_attempt)
    _fail_run(session, run, name, f"step '{name}' failed: {error}")


# --- fan-out -------------------------------------------------------------------------------------


def ensure_items(session: Session, run_id: uuid.UUID, name: str, values: list[Any]) -> list[int]:
    """Create the step's items once (a redelivery keeps the first list). Returns the indexes to run."""
    lock_run_row(session, run_id)
    step = session.execute(
        select(steps.c.id, steps.c.items_total).where(steps.c.run_id == run_id, steps.c.name == name)
    ).one()
    if step.items_total is not None:  # created by an earlier delivery of this task
        return list(range(step.items_total))
    if values:
        session.execute(
            insert(items),
            [{"step_id": step.id, "index": index, "key": _item_key(value), "value": {"value": value}}
             for index, value in enumerate(values)],
        )
    session.execute(update(steps).where(steps.c.id == step.id).values(items_total=len(values)))
    session.execute(
        _ITEMS_KNOWN, {"run_id": run_id, "step": None, "items": len(values), "name": name, "now": now()}
    )
    return list(range(len(values)))


def _item_key(value: Any) -> str:
    if isinstance(value, dict):
        for field in ("key", "id", "name"):
            if field in value:
                return str(value[field])
    return str(value)[:500]


def item_succeeded(
    session: Session, run_id: uuid.UUID, name: str, index: int, result: dict | None, warnings: list[str]
) -> None:
    # Progress is counted up, not recounted: under the run's lock an item becomes succeeded exactly
    # once (resume and fan-out creation recount from the rows). A second success changes nothing.
    _succeeded(session, _ITEM_SUCCEEDED, run_id, warnings, step=name, index=index, result=result)


def item_failed(session: Session, run_id: uuid.UUID, name: str, index: int, error: str, code: str) -> str:
    run = lock_run(session, run_id)
    step = get_step(session, run_id, name, lock=True)
    item = get_item(session, step, index, lock=True)
    _failed(session, run, item, error, code, step=name, item=index, count_attempt=True)
    step.items_failed = _count_items(session, step, "failed")
    message = f"item {index} ({item.key}): {error}"
    _failed(session, run, step, message, code, step=name)
    _fail_run(session, run, name, f"step '{name}' failed: {message}")
    return message


def _count_items(session: Session, step: Step, state: str) -> int:
    return session.execute(
        select(func.count()).select_from(StepItem).where(StepItem.step_id == step.id, StepItem.state == state)
    ).scalar_one()


def finish_fan_out(session: Session, run_id: uuid.UUID, name: str) -> bool:
    """Mark a fan-out step succeeded when all its items are; False if some are not."""
    lock_run_row(session, run_id)
    step = session.execute(
        select(steps.c.id, steps.c.state).where(steps.c.run_id == run_id, steps.c.name == name)
    ).one()
    if step.state == "succeeded":
        return True
    total, succeeded = session.execute(
        select(func.count(), func.count().filter(items.c.state == "succeeded")).where(items.c.step_id == step.id)
    ).one()
    if succeeded != total:
        return False
    session.execute(
        _FAN_OUT_SUCCEEDED,
        {"run_id": run_id, "step": name, "items": total, "summary": f"{total} item(s)", "now": now()},
    )
    return True


# --- the run as a whole --------------------------------------------------------------------------


def finish_run(session: Session, run_id: uuid.UUID) -> str:
    run = lock_run_row(session, run_id)
    if run.state in RUN_TERMINAL:
        return run.state
    unfinished = session.execute(
        select(func.count()).where(steps.c.run_id == run_id, steps.c.state.not_in(STEP_DONE))
    ).scalar_one()
    if unfinished:
        return run.state
    session.execute(_RUN_SUCCEEDED, {"run_id": run_id, "step": None, "now": now()})
    return "succeeded"


def fail_run(session: Session, run_id: uuid.UUID, step_name: str | None, message: str) -> None:
    """Fail a run from outside a step (an errback, the sweeper). Running steps are marked failed."""
    run = lock_run(session, run_id)
    if run.state in RUN_TERMINAL:
        return
    if step_name:
        step = get_step(session, run_id, step_name, lock=True)
        if step.state not in STEP_TERMINAL:
            _failed(session, run, step, message, "worker", step=step_name)
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
