"""Starting and steering runs: launch (compile + send the canvas), resume, cancel, approve, reject.

Launching is idempotent by design: every step task first checks PostgreSQL, so a canvas sent again
(resume, approval, the sweeper) skips the steps that already succeeded and re-runs only the rest.
"""

from __future__ import annotations

import uuid

from celery import chain, group
from sqlalchemy.orm import Session

from app.core.errors import PermanentError
from app.models import RUN_TERMINAL, Run
from app.workflows import state
from app.workflows.compiler import Chain, Group, Node, plan
from app.workflows.schema import WorkflowDef


class InvalidTransition(PermanentError):
    code = "invalid_state"


def build_canvas(wf: WorkflowDef, run_id: str):
    from app.tasks.runner import finish_run, signature_for

    def convert(node):
        if isinstance(node, Node):
            return signature_for(wf, run_id, node.step)
        if isinstance(node, Group):
            return group([convert(p) for p in node.parts])
        assert isinstance(node, Chain)
        return chain(*[convert(p) for p in node.parts])

    root = convert(plan(wf).root)
    return chain(root, finish_run.si(run_id).set(queue="io"))


def send(run: Run) -> None:
    """Send the run's canvas to the broker (call after the transaction that created/reset it)."""
    from app.tasks.runner import on_error

    wf = WorkflowDef.model_validate(run.definition)
    canvas = build_canvas(wf, str(run.id))
    canvas.apply_async(link_error=on_error.s(str(run.id)))


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
