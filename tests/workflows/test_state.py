"""The engine's state transitions against PostgreSQL, without a worker: the one-statement claims and
successes count once, and the heartbeat never waits for a row a transition holds."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import select, text

pytestmark = pytest.mark.postgres


@pytest.fixture()
def new_run(stack_env):
    """Makes publish_document runs that no worker takes, and deletes them afterwards: left queued,
    they would be stuck runs for the sweeper of a later test."""
    from sqlalchemy import delete

    from app.core.db import session_scope
    from app.models import Run
    from app.workflows import state
    from app.workflows.schema import get_workflow

    made = []

    def make() -> uuid.UUID:
        with session_scope() as session:
            made.append(state.create_run(session, get_workflow("publish_document"), {}).id)
        return made[-1]

    yield make
    with session_scope() as session:
        session.execute(delete(Run).where(Run.id.in_(made)))


@pytest.fixture()
def fan_out(new_run):
    """A publish_document run whose upload_image step has two items."""
    from app.core.db import session_scope
    from app.workflows import state

    run_id = new_run()
    with session_scope() as session:
        state.ensure_items(session, run_id, "upload_image", [{"key": "a.png"}, {"key": "b.png"}])
    return run_id


def transition(fn, *args, **kwargs):
    from app.core.db import session_scope

    with session_scope(relaxed_commit=True) as session:
        return fn(session, *args, **kwargs)


def test_an_item_is_claimed_once_and_counted_once(fan_out):
    from app.core.db import session_scope
    from app.models import Run, RunEvent, Step, StepItem
    from app.workflows import state

    claim, value = transition(state.claim_item, fan_out, "upload_image", 0, "worker-1")
    assert (claim.outcome, claim.attempts, value) == ("run", 0, {"key": "a.png"})
    assert transition(state.claim_item, fan_out, "upload_image", 0, "worker-2")[0].outcome == "busy"
    assert transition(state.claim_item, fan_out, "upload_image", 0, "worker-1")[0].outcome == "run"  # its own claim

    with session_scope() as session:
        before = session.get(Run, fan_out).progress_done
    for _ in range(2):  # a redelivered task records its success again: nothing changes the second time
        transition(state.item_succeeded, fan_out, "upload_image", 0, {"url": "u"}, ["w1", "w1"])

    with session_scope() as session:
        run = session.get(Run, fan_out)
        step = session.execute(select(Step).where(Step.run_id == fan_out, Step.name == "upload_image")).scalar_one()
        item = session.execute(select(StepItem).where(StepItem.step_id == step.id, StepItem.index == 0)).scalar_one()
        events = session.execute(
            select(RunEvent.kind, RunEvent.state, RunEvent.item, RunEvent.data)
            .where(RunEvent.run_id == fan_out, RunEvent.kind == "item")
            .order_by(RunEvent.id)
        ).all()
        assert (run.progress_done, run.progress_total) == (before + 1, 5 + 2)  # 5 steps, and upload_image's 2 items
        assert run.warnings == ["w1"]
        assert (step.items_done, item.state, item.attempts, item.result, item.claimed_by) == (
            1, "succeeded", 1, {"url": "u"}, None
        )
        assert [(e.state, e.item) for e in events] == [("running", 0), ("running", 0), ("succeeded", 0)]
        assert events[-1].data == {"key": "a.png", "progress": [before + 1, 7]}

    done = transition(state.claim_item, fan_out, "upload_image", 0, "worker-3")[0]
    assert (done.outcome, done.attempts, done.result) == ("done", 1, {"url": "u"})


def test_the_fan_in_and_the_run_end_count_every_unit(fan_out):
    from app.core.db import session_scope
    from app.models import Run, Step
    from app.workflows import state

    assert transition(state.finish_fan_out, fan_out, "upload_image") is False  # items still pending
    for index in (0, 1):
        transition(state.claim_item, fan_out, "upload_image", index, "w")
        transition(state.item_succeeded, fan_out, "upload_image", index, {}, [])
    assert transition(state.finish_fan_out, fan_out, "upload_image") is True
    assert transition(state.finish_run, fan_out) == "queued"  # no other step has run yet
    for name in ("store", "to_docx", "parse", "transform", "publish"):
        assert transition(state.claim_step, fan_out, name, "w").outcome == "run"
        transition(state.step_succeeded, fan_out, name, {"ok": name}, [], None)
    assert transition(state.finish_run, fan_out) == "succeeded"

    with session_scope() as session:
        run = session.get(Run, fan_out)
        assert (run.state, run.progress_done, run.progress_total) == ("succeeded", 7, 7)  # 5 steps + 2 items
        states = session.execute(select(Step.name, Step.state, Step.summary).where(Step.run_id == fan_out)).all()
        assert {s.name: s.state for s in states} == dict.fromkeys(
            ("store", "to_docx", "parse", "transform", "upload_image", "publish"), "succeeded"
        )
        assert {s.name: s.summary for s in states}["upload_image"] == "2 item(s)"


def test_the_heartbeat_skips_a_row_a_transition_holds_instead_of_waiting(fan_out):
    from app.core.db import session_scope
    from app.models import Step, StepItem
    from app.workflows import state

    for index in (0, 1):
        transition(state.claim_item, fan_out, "upload_image", index, "w")
    with session_scope() as session:
        step_id = session.execute(
            select(Step.id).where(Step.run_id == fan_out, Step.name == "upload_image")
        ).scalar_one()
        ids = dict(session.execute(select(StepItem.index, StepItem.id).where(StepItem.step_id == step_id)).all())
        before = dict(session.execute(select(StepItem.index, StepItem.heartbeat_at).where(StepItem.step_id == step_id)).all())

    with session_scope() as holder:  # a transition in progress: run and item 0 locked
        state.lock_run_row(holder, fan_out)
        holder.execute(select(StepItem.id).where(StepItem.id == ids[0]).with_for_update())
        with session_scope() as beat:
            beat.execute(text("SET LOCAL lock_timeout = '2s'"))  # waiting would fail the test, not hang it
            state.heartbeat(beat, [("item", ids[0]), ("item", ids[1])])

    with session_scope() as session:
        after = dict(session.execute(select(StepItem.index, StepItem.heartbeat_at).where(StepItem.step_id == step_id)).all())
    assert after[0] == before[0]  # skipped: the transition holding it ends or renews the claim
    assert after[1] > before[1]


def test_a_deleted_run_is_not_found(stack_env):
    from app.core.errors import NotFound
    from app.workflows import state

    with pytest.raises(NotFound):
        transition(state.claim_item, uuid.uuid4(), "upload_image", 0, "w")


def test_a_fan_out_makes_its_items_once(fan_out):
    from app.core.db import session_scope
    from app.models import Run, RunEvent, Step, StepItem
    from app.workflows import state

    # A redelivered fan-out task finds the items of the first delivery, whatever its list is now.
    assert transition(state.ensure_items, fan_out, "upload_image", [{"key": "other.png"}]) == [0, 1]
    with session_scope() as session:
        step = session.execute(select(Step).where(Step.run_id == fan_out, Step.name == "upload_image")).scalar_one()
        keys = session.execute(select(StepItem.key).where(StepItem.step_id == step.id).order_by(StepItem.index))
        assert (step.items_total, list(keys.scalars())) == (2, ["a.png", "b.png"])
        event = session.execute(
            select(RunEvent).where(RunEvent.run_id == fan_out, RunEvent.step == "upload_image")
        ).scalar_one()
        assert (event.state, event.message, event.data) == ("running", "2 item(s)", {"items": 2, "progress": [0, 7]})
        assert (session.get(Run, fan_out).progress_done, session.get(Run, fan_out).progress_total) == (0, 7)


def test_an_empty_fan_out_counts_as_one_step(new_run):
    from app.core.db import session_scope
    from app.models import Run
    from app.workflows import state

    run_id = new_run()
    assert transition(state.ensure_items, run_id, "upload_image", []) == []
    assert transition(state.ensure_items, run_id, "upload_image", ["late"]) == []  # still none
    with session_scope() as session:
        assert session.get(Run, run_id).progress_total == 6


def test_a_skipped_step_counts_as_done(fan_out):
    from app.core.db import session_scope
    from app.models import Run, RunEvent
    from app.workflows import state

    transition(state.step_skipped, fan_out, "to_docx", "condition is false: document.kind == 'doc'")
    with session_scope() as session:
        run = session.get(Run, fan_out)
        assert (run.progress_done, run.progress_total) == (1, 7)  # counted with the step's change, not before it
        event = session.execute(
            select(RunEvent).where(RunEvent.run_id == fan_out, RunEvent.step == "to_docx")
        ).scalar_one()
        assert (event.state, event.message) == ("skipped", "condition is false: document.kind == 'doc'")
