"""Starting and steering runs: launch (compile + send the canvas), resume, cancel, approve, reject.

Launching is idempotent by design: every step task first checks PostgreSQL, so a canvas sent again
(resume, approval, the sweeper) skips the steps that already succeeded and re-runs only the rest.

Work is sent by task name (the workers register the tasks under these names, app/tasks/runner.py):
sending needs the broker's settings and the step kinds' declarations, no task code.
"""

from __future__ import annotations

import uuid
from typing import Any

from celery import chain, group
from sqlalchemy.orm import Session

from app.core.broker import celery_app
from app.core.errors import PermanentError
from app.models import RUN_TERMINAL, Run
from app.workflows import state
from app.workflows.compiler import Chain, Group, Node, plan
from app.workflows.registry import get_kind
from app.workflows.schema import StepDef, WorkflowDef

STEP_TASK = "copydesk.step.{}"  # one task per step kind
FAN_IN = "copydesk.fan_in"  # the body of a fan-out's chord
FINISH_RUN = "copydesk.finish_run"
ON_ERROR = "copydesk.on_error"  # the errback of a whole run
# The last event of a run that was recorded but whose canvas could not be sent (the broker was
# unreachable): the sweeper (app/tasks/ops.py) sends it at its next pass, without waiting for
# RUN_STUCK_AFTER.
NOT_SENT = "not sent: the broker was unavailable; the sweeper sends it"


class InvalidTransition(PermanentError):
    code = "invalid_state"


def step_options(wf: WorkflowDef, step_def: StepDef) -> dict[str, Any]:
    """The step's queue and time limits."""
    options: dict[str, Any] = {"queue": wf.queue_of(step_def, get_kind(step_def.kind).default_queue)}
    timeout = wf.timeout_of(step_def)
    if timeout:
        options["soft_time_limit"] = timeout
        options["time_limit"] = timeout + 15  # the hard limit kills a child stuck in C code
    return options


def step_signature(kind: str, run_id: str, step_id: str, index: int | None = None, **options):
    args = (run_id, step_id) if index is None else (run_id, step_id, index)
    return celery_app.signature(STEP_TASK.format(kind), args=args, immutable=True, **options)


def fan_in_signature(run_id: str, step_id: str):
    return celery_app.signature(FAN_IN, args=(run_id, step_id), immutable=True, queue="io")


def build_canvas(wf: WorkflowDef, run_id: str):
    def canvas(node):
        if isinstance(node, Node):
            step_def = wf.by_id[node.step]
            return step_signature(step_def.kind, run_id, node.step, **step_options(wf, step_def))
        if isinstance(node, Group):
            return group([canvas(p) for p in node.parts])
        assert isinstance(node, Chain)
        return chain(*[canvas(p) for p in node.parts])

    finish = celery_app.signature(FINISH_RUN, args=(run_id,), immutable=True, queue="io")
    return chain(canvas(plan(wf).root), finish)


def send(run: Run) -> None:
    """Send the run's canvas to the broker (call after the transaction that created/reset it)."""
    wf = WorkflowDef.model_validate(run.definition)
    canvas = build_canvas(wf, str(run.id))
    canvas.apply_async(link_error=celery_app.signature(ON_ERROR, args=(str(run.id),)))


def resume(session: Session, run_id: uuid.UUID) -> Run:
    run = state.lock_run(session, run_id)
    if run.state not in ("failed", "cancelled"):
        raise InvalidTransition(f"only a failed or cancelled run can be resumed (this one is {run.state})")
    run = state.reset_for_resume(session, run_id)
    run.launches += 1
    return run


def cancel(session: Session, run_id: uuid.UUID, reason: str = "cancelled by a user") -> Run:
    run = state.lock_run(session, run_id)
    if run.state in RUN_TERMINAL:
        raise InvalidTransition(f"the run has already ended ({run.state})")
    return state.cancel_run(session, run_id, reason)


def approve(session: Session, run_id: uuid.UUID, user_id: uuid.UUID | None) -> Run:
    run = state.lock_run(session, run_id)
    if run.state != "awaiting_approval":
        raise InvalidTransition(f"the run is not waiting for approval (it is {run.state})")
    state.approve_step(session, run_id, user_id)
    run.launches += 1
    return run


def reject(session: Session, run_id: uuid.UUID, who: str, reason: str | None = None) -> Run:
    run = state.lock_run(session, run_id)
    if run.state != "awaiting_approval":
        raise InvalidTransition(f"the run is not waiting for approval (it is {run.state})")
    text = f"rejected by {who}" + (f": {reason}" if reason else "")
    return state.cancel_run(session, run_id, text)
