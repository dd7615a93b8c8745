"""The generic step runner: one Celery task per step kind (`copydesk.step.<kind>`), all built here.

A step task receives only references (run id, step id, item index). It claims the step in
PostgreSQL, evaluates `when`, waits for approval, fans out, or runs the step kind's function with the
step's retry policy, and records the outcome. Data between steps lives in PostgreSQL and storage,
never in Celery results (they expire, and unknown ids read as PENDING).
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from dataclasses import dataclass
from typing import Any

import kombu.exceptions
import redis.exceptions
import sqlalchemy.exc
from celery import Task, chord
from celery.exceptions import Ignore, Retry, SoftTimeLimitExceeded
from sqlalchemy import select
from tenacity import RetryCallState, Retrying, retry_if_exception, stop_after_attempt

from app.core.config import get_settings
from app.core.db import session_scope
from app.core.errors import CopydeskError, NotFound, StepTimeout, describe, error_code, error_kinds
from app.core.logging import add_to_log_context, log_context
from app.models import Document, Run, Step
from app.tasks import steps  # noqa: F401  (implements the built-in step kinds)
from app.tasks.celery_app import celery_app
from app.workflows import state
from app.workflows.conditions import evaluate
from app.workflows.engine import (
    FAN_IN,
    FINISH_RUN,
    ON_ERROR,
    STEP_TASK,
    fan_in_signature,
    step_options,
    step_signature,
)
from app.workflows.registry import ALIASES, StepContext, implementation, kinds
from app.workflows.schema import RetryPolicy, StepDef, WorkflowDef

log = logging.getLogger("copydesk.runner")


# Failures of Copydesk's own infrastructure (not of the step's work): retried, never recorded as the
# step's error.
INFRASTRUCTURE_ERRORS: tuple[type[BaseException], ...] = (
    sqlalchemy.exc.OperationalError,
    sqlalchemy.exc.InterfaceError,
    redis.exceptions.ConnectionError,
    redis.exceptions.TimeoutError,
)


def _is_infrastructure_error(exc: BaseException | None) -> bool:
    if isinstance(exc, (*INFRASTRUCTURE_ERRORS, kombu.exceptions.OperationalError, ConnectionError)):
        return True
    return isinstance(exc, Retry) and _is_infrastructure_error(getattr(exc, "exc", None))


class StepFailed(CopydeskError):
    """Raised to Celery after a step's failure was recorded (stops the chain / fails the chord)."""

    code = "step_failed"


class _Requeue(Exception):
    """A retry wait too long to hold a worker slot: hand the step back to the broker."""

    def __init__(self, wait: float) -> None:
        super().__init__(wait)
        self.wait = wait


# --- heartbeats ----------------------------------------------------------------------------------


class Heartbeat:
    """One thread per worker process refreshes the heartbeat of every step/item it is running, so
    a claim held by a killed worker goes stale and can be taken over."""

    def __init__(self) -> None:
        self._rows: dict[tuple[str, uuid.UUID], int] = {}
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._pid = 0

    def add(self, kind: str, row_id: uuid.UUID) -> None:
        with self._lock:
            self._rows[(kind, row_id)] = self._rows.get((kind, row_id), 0) + 1
            if self._thread is None or self._pid != os.getpid() or not self._thread.is_alive():
                self._pid = os.getpid()
                self._thread = threading.Thread(target=self._loop, name="copydesk-heartbeat", daemon=True)
                self._thread.start()

    def remove(self, kind: str, row_id: uuid.UUID) -> None:
        with self._lock:
            count = self._rows.get((kind, row_id), 0) - 1
            if count <= 0:
                self._rows.pop((kind, row_id), None)
            else:
                self._rows[(kind, row_id)] = count

    def _loop(self) -> None:
        interval = get_settings().heartbeat_interval
        while True:
            time.sleep(interval)
            with self._lock:
                rows = list(self._rows)
            if not rows:
                continue
            try:
                with session_scope(relaxed_commit=True) as session:
                    state.heartbeat(session, rows)
            except Exception:  # the database may be restarting; the next beat will try again
                log.warning("heartbeat failed", exc_info=True)


heartbeats = Heartbeat()


# --- loading a run ---------------------------------------------------------------------------------


@dataclass
class RunInfo:
    wf: WorkflowDef
    payload: dict[str, Any]
    document_id: uuid.UUID | None


# What a run is (its definition, payload and document) is fixed when it is created: read once per
# process, not on every transition. Bounded: a worker runs many runs in its life.
_runs: dict[uuid.UUID, RunInfo] = {}


def run_info(session, run_id: uuid.UUID) -> RunInfo:
    info = _runs.get(run_id)
    if info is None:
        row = session.execute(
            select(Run.definition, Run.payload, Run.document_id).where(Run.id == run_id)
        ).one_or_none()
        if row is None:
            raise Ignore()  # the run was deleted: nothing to do
        if len(_runs) > 512:
            _runs.clear()
        info = _runs[run_id] = RunInfo(
            wf=WorkflowDef.model_validate(row.definition), payload=row.payload or {}, document_id=row.document_id
        )
    return info


# The results an item's step kind sees: those of the steps that had succeeded when its fan-out
# started. Succeeded steps never run again (resume re-runs only failed ones), so they are read once
# per fan-out and process instead of once per item.
_item_inputs: dict[tuple[uuid.UUID, str], dict[str, dict]] = {}


def _inputs_of_items(session, run_id: uuid.UUID, step_name: str) -> dict[str, dict]:
    key = (run_id, step_name)
    results = _item_inputs.get(key)
    if results is None:
        if len(_item_inputs) > 512:
            _item_inputs.clear()
        results = _item_inputs[key] = _results(session, run_id)
    return results


def _condition_data(session, run_id: uuid.UUID, info: RunInfo) -> dict[str, Any]:
    data: dict[str, Any] = {"payload": info.payload, "run": {"id": str(run_id)}}
    if info.document_id:
        doc = session.get(Document, info.document_id)
        if doc is not None:
            data["document"] = {
                "id": str(doc.id),
                "kind": doc.kind,
                "filename": doc.filename,
                "origin": doc.origin,
                "size": doc.size,
                "options": doc.options,
            }
            data["source"] = {"id": str(doc.source_id)} if doc.source_id else None
    data.update(_results(session, run_id))
    return data


# --- retries ---------------------------------------------------------------------------------------


def _retryable(policy: RetryPolicy):
    wanted = set(policy.on)

    def check(exc: BaseException) -> bool:
        if isinstance(exc, (_Requeue, Ignore, Retry, StepFailed)):
            return False
        return bool(error_kinds(exc) & wanted)

    return check


def _call_with_retries(task: Task, ctx: StepContext, policy: RetryPolicy, func, index: int | None):
    """Run `func(ctx)` under the step's retry policy. Short waits sleep here (tenacity); a wait longer
    than INLINE_RETRY_MAX_WAIT re-queues the task with a countdown, freeing the worker slot."""
    done_before = ctx.attempt - 1
    remaining = max(1, policy.attempts - done_before)
    inline_max = get_settings().inline_retry_max_wait

    def wait(rs: RetryCallState) -> float:
        exc = rs.outcome.exception() if rs.outcome else None
        return policy.wait_before(done_before + rs.attempt_number + 1, getattr(exc, "retry_after", None))

    def before_sleep(rs: RetryCallState) -> None:
        exc = rs.outcome.exception()
        seconds = rs.next_action.sleep if rs.next_action else 0.0
        with session_scope(relaxed_commit=True) as session:
            made = state.record_retry(
                session, ctx.run_id, ctx.step, index, describe(exc), error_code(exc), seconds
            )
        ctx.attempt = made + 1
        log.warning("attempt %s failed, retrying in %.2fs: %s", made, seconds, describe(exc))

    def sleep(seconds: float) -> None:
        if seconds > inline_max:
            raise _Requeue(seconds)
        time.sleep(seconds)

    retrying = Retrying(
        stop=stop_after_attempt(remaining),
        wait=wait,
        retry=retry_if_exception(_retryable(policy)),
        before_sleep=before_sleep,
        sleep=sleep,
        reraise=True,
    )
    try:
        return retrying(func, ctx)
    except _Requeue as requeue:
        raise task.retry(countdown=requeue.wait, max_retries=None) from None


# --- the task body ---------------------------------------------------------------------------------


def _claim(claim_fn, poll: float = 0.5):
    """Open one transaction: lock the run, claim the step or item, read what the step needs.
    While another live execution holds the claim, wait for it to finish or go stale."""
    while True:
        try:
            with session_scope(relaxed_commit=True) as session:
                out = claim_fn(session)
        except NotFound:
            raise Ignore() from None  # the run was deleted: nothing to do
        if out[0].outcome != "busy":
            return out
        time.sleep(poll)


def run_step(task: Task, run_id: str, step_name: str, index: int | None = None) -> dict[str, Any]:
    run_uuid = uuid.UUID(run_id)
    with log_context(run_id=run_id, step=step_name, item=index):
        if index is None:
            return _run_whole_step(task, run_uuid, step_name)
        return _run_item(task, run_uuid, step_name, index)


def _worker_id(task: Task) -> str:
    return f"{task.request.id or uuid.uuid4()}@{socket.gethostname()}:{os.getpid()}"


def _results(session, run_id: uuid.UUID) -> dict[str, dict]:
    rows = session.execute(
        select(Step.name, Step.result).where(Step.run_id == run_id, Step.state == "succeeded")
    ).all()
    return {name: result or {} for name, result in rows}


def _run_whole_step(task: Task, run_id: uuid.UUID, step_name: str) -> dict[str, Any]:
    worker = _worker_id(task)

    def claim(session):
        info = run_info(session, run_id)
        step_def = info.wf.by_id[step_name]
        outcome = state.claim_step(session, run_id, step_name, worker, needs_approval=step_def.approval)
        data = _condition_data(session, run_id, info) if outcome.outcome == "run" else {}
        return outcome, info, data

    claim, info, data = _claim(claim)
    add_to_log_context(document_id=info.document_id)
    step_def = info.wf.by_id[step_name]
    if claim.outcome == "done":
        return {"step": step_name, "state": "already done"}
    if claim.outcome in ("cancelled", "awaiting_approval"):
        raise Ignore()  # the chain stops here; approve/resume launches it again
    if claim.outcome == "failed":
        raise StepFailed(f"step '{step_name}' has already failed")

    heartbeats.add("step", claim.row_id)
    try:
        with log_context(document_id=info.document_id):
            if step_def.when and not evaluate(step_def.when, data):
                with session_scope(relaxed_commit=True) as session:
                    state.step_skipped(session, run_id, step_name, f"condition is false: {step_def.when}")
                return {"step": step_name, "state": "skipped"}
            if step_def.for_each:
                return _fan_out(task, run_id, info, step_def, data)
            results = {k: v for k, v in data.items() if k not in ("payload", "run", "document", "source")}
            ctx = _context(run_id, info, step_def, claim, results)
            result = _execute(task, ctx, info.wf.retry_of(step_def), None)
            with session_scope(relaxed_commit=True) as session:
                summary = result.pop("summary", None) if isinstance(result, dict) else None
                state.step_succeeded(session, run_id, step_name, result, ctx.warnings, summary)
            return {"step": step_name, "state": "succeeded"}
    finally:
        heartbeats.remove("step", claim.row_id)


def _context(
    run_id: uuid.UUID, info: RunInfo, step_def: StepDef, claim: state.Claim, results: dict[str, dict], **item
) -> StepContext:
    """What the step kind's function is given (`item`: the index and value of a fan-out item)."""
    return StepContext(
        run_id=run_id,
        step=step_def.id,
        kind=step_def.kind,
        payload=dict(info.payload),
        options=step_def.options,
        document_id=info.document_id,
        attempt=claim.attempts + 1,
        results=results,
        **item,
    )


def _execute(task: Task, ctx: StepContext, policy: RetryPolicy, index: int | None):
    try:
        return _call_with_retries(task, ctx, policy, implementation(ctx.kind), index)
    except (Retry, Ignore, *INFRASTRUCTURE_ERRORS):
        raise  # an unreachable database or broker is not the step's failure: the task is retried
    except SoftTimeLimitExceeded:
        exc: BaseException = StepTimeout(f"took longer than its timeout of {task.request.timelimit[1] or '?'}s")
    except Exception as err:  # recorded below with its message; a bug also gets its traceback logged
        exc = err
        if not isinstance(err, CopydeskError):
            log.exception("unexpected error in step %s", ctx.step)
    message, code = describe(exc), error_code(exc)
    with session_scope(relaxed_commit=True) as session:
        run = state.lock_run(session, ctx.run_id)
        if run.state == "cancelled":
            raise Ignore()
        if index is None:
            state.step_failed(session, ctx.run_id, ctx.step, message, code)
            failure = f"step '{ctx.step}' failed: {message}"
        else:
            failure = f"step '{ctx.step}' failed: " + state.item_failed(
                session, ctx.run_id, ctx.step, index, message, code
            )
    log.error(failure)
    raise StepFailed(failure, code=code) from None


def _fan_out(task: Task, run_id: uuid.UUID, info: RunInfo, step_def: StepDef, data: dict) -> Any:
    origin, _, field = step_def.for_each.partition(".")
    values = (data.get(origin) or {}).get(field) or []
    if not isinstance(values, list):
        with session_scope(relaxed_commit=True) as session:
            state.step_failed(
                session, run_id, step_def.id, f"for_each '{step_def.for_each}' is not a list", "configuration"
            )
        raise StepFailed(f"for_each '{step_def.for_each}' is not a list")
    with session_scope(relaxed_commit=True) as session:
        indexes = state.ensure_items(session, run_id, step_def.id, values)
    if not indexes:  # an empty fan-out: nothing to wait for (and no empty chord to trip over)
        with session_scope(relaxed_commit=True) as session:
            state.step_succeeded(session, run_id, step_def.id, {"items": 0}, [], "0 item(s)")
        return {"step": step_def.id, "state": "succeeded", "items": 0}
    options = step_options(info.wf, step_def)
    header = [step_signature(step_def.kind, str(run_id), step_def.id, i, **options) for i in indexes]
    raise task.replace(chord(header, fan_in_signature(str(run_id), step_def.id)))


def _run_item(task: Task, run_id: uuid.UUID, step_name: str, index: int) -> dict[str, Any]:
    worker = _worker_id(task)

    def claim(session):
        info = run_info(session, run_id)
        outcome, value = state.claim_item(session, run_id, step_name, index, worker)
        results = _inputs_of_items(session, run_id, step_name) if outcome.outcome == "run" else {}
        return outcome, info, value, results

    claim, info, value, results = _claim(claim)
    add_to_log_context(document_id=info.document_id)
    step_def = info.wf.by_id[step_name]
    if claim.outcome == "done":
        return {"step": step_name, "item": index, "state": "already done"}
    if claim.outcome == "cancelled":
        raise Ignore()
    if claim.outcome == "failed":
        raise StepFailed(f"step '{step_name}' item {index} has already failed")
    heartbeats.add("item", claim.row_id)
    try:
        with log_context(document_id=info.document_id):
            ctx = _context(run_id, info, step_def, claim, dict(results), index=index, item=value)
            result = _execute(task, ctx, info.wf.retry_of(step_def), index)
            with session_scope(relaxed_commit=True) as session:
                state.item_succeeded(session, run_id, step_name, index, result, ctx.warnings)
            return {"step": step_name, "item": index, "state": "succeeded"}
    finally:
        heartbeats.remove("item", claim.row_id)


# --- tasks -----------------------------------------------------------------------------------------


def _make_step_task(kind_name: str):
    def step_task(self: Task, run_id: str, step_name: str, index: int | None = None):
        try:
            return run_step(self, run_id, step_name, index)
        except INFRASTRUCTURE_ERRORS as exc:
            # PostgreSQL or Redis is restarting: nothing was recorded, so try the whole task again
            # (its claim is ours, finished work is skipped); the sweeper covers what gets lost.
            wait = min(30, 2 ** min(self.request.retries, 5))
            log.warning("database or broker unavailable, retrying in %ss: %s", wait, type(exc).__name__)
            raise self.retry(countdown=wait, max_retries=40, exc=exc) from None

    step_task.__name__ = f"step_{kind_name}"
    return celery_app.task(bind=True, name=STEP_TASK.format(kind_name))(step_task)


for _kind in kinds():
    implementation(_kind)  # a declared kind without code stops the worker at start, not a run later
STEP_TASKS = {name: _make_step_task(name) for name in [*kinds(), *ALIASES]}


@celery_app.task(name=FAN_IN, bind=True)
def fan_in(self: Task, run_id: str, step_name: str) -> dict[str, Any]:
    """The body of a fan-out chord: the step succeeds once every item has."""
    with log_context(run_id=run_id, step=step_name), session_scope() as session:
        if not state.finish_fan_out(session, uuid.UUID(run_id), step_name):
            raise StepFailed(f"step '{step_name}' has items that did not succeed")
    return {"step": step_name, "state": "succeeded"}


@celery_app.task(name=FINISH_RUN)
def finish_run(run_id: str) -> str:
    with log_context(run_id=run_id):
        with session_scope() as session:
            outcome = state.finish_run(session, uuid.UUID(run_id))
        log.info("run finished: %s", outcome)
    return outcome


@celery_app.task(name=ON_ERROR)
def on_error(request, exc, traceback, run_id: str) -> None:
    """Errback of a whole run: records failures that happened outside a step body (a killed child,
    a hard time limit, a lost worker). Idempotent: Celery may call it once per failed task and once
    more for the chord body."""
    if isinstance(exc, StepFailed):
        return  # already recorded by the step
    if _is_infrastructure_error(exc):
        # Redis or PostgreSQL went away under the task (a restart): not the run's failure. What the
        # task was doing is re-queued by the sweeper once the run shows no progress.
        log.warning("run %s: a task failed on unavailable infrastructure (%s): left to the sweeper",
                    run_id, describe(exc))
        return
    args = list(getattr(request, "args", None) or [])
    step_name = args[1] if len(args) >= 2 and isinstance(args[1], str) and request.task.startswith(
        "copydesk.step."
    ) else None
    message = describe(exc) if exc is not None else "the task failed"
    if "TimeLimitExceeded" in type(exc).__name__:
        message = f"killed after exceeding its hard time limit ({message})"
    with log_context(run_id=run_id, step=step_name), session_scope() as session:
        state.fail_run(session, uuid.UUID(run_id), step_name, message)
    log.error("run failed outside a step body: %s", message)
