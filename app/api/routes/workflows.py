from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Body, Request, status
from fastapi.concurrency import run_in_threadpool

from app.api.deps import CurrentUser, Session
from app.api.schemas import RunOut, WorkflowOut
from app.api.views import run_detail
from app.workflows import engine, state
from app.workflows.compiler import plan, render
from app.workflows.schema import WorkflowDef, get_workflow, workflows

router = APIRouter(prefix="/workflows", tags=["workflows"])


def _out(wf: WorkflowDef) -> WorkflowOut:
    return WorkflowOut(
        name=wf.name,
        version=wf.version,
        description=wf.description,
        steps=[s.model_dump(exclude_none=True) for s in wf.steps],
        inputs={k: v.model_dump(exclude_none=True) for k, v in wf.inputs.items()},
        canvas=render(plan(wf), wf),
    )


@router.get("", response_model=list[WorkflowOut])
async def list_workflows(user: CurrentUser) -> list[WorkflowOut]:
    return [_out(wf) for wf in workflows().values()]


@router.get("/{name}", response_model=WorkflowOut)
async def show_workflow(name: str, user: CurrentUser) -> WorkflowOut:
    return _out(get_workflow(name))


@router.post("/{name}/runs", response_model=RunOut, status_code=status.HTTP_201_CREATED)
async def start_run(
    name: str,
    request: Request,
    session: Session,
    user: CurrentUser,
    payload: dict[str, Any] = Body(default_factory=dict),
) -> RunOut:
    """Start a run of a workflow with a payload (validated against the workflow's `inputs`)."""
    wf = get_workflow(name)
    data = wf.payload_model.model_validate(payload).model_dump(mode="json", exclude_none=True)
    run = await session.run_sync(lambda s: state.create_run(s, wf, data, created_by=user.id))
    run.launches = 1
    run_id = run.id
    await session.commit()
    await run_in_threadpool(engine.send, run)
    return await run_detail(session, run_id)
