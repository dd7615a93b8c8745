"""Redis and PostgreSQL restarted while runs are in flight: no run is lost or stuck (the sweeper
re-queues what the restart swallowed; steps already done are not done again)."""

from __future__ import annotations

import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from sqlalchemy import select

from tests.fixtures.stack import ROOT, embedded_state_dir, isolated_stack
from tests.support import start_run, wait_until

pytestmark = [pytest.mark.worker, pytest.mark.postgres, pytest.mark.redis, pytest.mark.slow]
FAST_SWEEPER = {"RUN_STUCK_AFTER": "4", "SWEEP_INTERVAL": "1", "STEP_HEARTBEAT_TIMEOUT": "3", "RUN_MAX_SWEEPS": "10"}


def run_states(run_ids: list[str]) -> dict[str, str]:
    from app.core.db import session_scope
    from app.models import Run

    try:
        with session_scope() as session:
            rows = session.execute(select(Run.id, Run.state).where(Run.id.in_([uuid.UUID(r) for r in run_ids])))
            return {str(i): s for i, s in rows}
    except Exception:  # the database may be restarting right now
        return {}


def items_done(run_ids: list[str]) -> int:
    from sqlalchemy import func

    from app.core.db import session_scope
    from app.models import Step, StepItem

    with session_scope() as session:
        return session.execute(
            select(func.count()).select_from(StepItem).join(Step)
            .where(Step.run_id.in_([uuid.UUID(r) for r in run_ids]), StepItem.state == "succeeded")
        ).scalar_one()


def beat(env: dict, tmp: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "app.tasks", "beat", "-s", str(tmp / "beat-schedule"), "--loglevel=INFO"],
        cwd=ROOT, env=env, stdin=subprocess.DEVNULL, stdout=open(tmp / "beat.log", "ab"), stderr=subprocess.STDOUT,
    )


def assert_all_succeeded(run_ids: list[str], timeout: float = 180) -> None:
    def finished():
        states = run_states(run_ids)
        return states if len(states) == len(run_ids) and all(
            s in ("succeeded", "failed", "cancelled") for s in states.values()) else None

    states = wait_until(finished, timeout=timeout, interval=0.5, message="every run to end")
    assert set(states.values()) == {"succeeded"}, failures(run_ids)


def failures(run_ids: list[str]) -> dict[str, str]:
    from app.core.db import session_scope
    from app.models import Run

    with session_scope() as session:
        rows = session.execute(select(Run.id, Run.error).where(Run.id.in_([uuid.UUID(r) for r in run_ids])))
        return {str(i): e for i, e in rows if e}


def test_redis_restarted_under_load(stack_env, tmp_path):
    from app.cli.dev import migrate
    from tests.fixtures.stack import Database

    # A database of its own: its fast sweeper sees only these runs, not those other tests left behind.
    database = Database()
    try:
        with isolated_stack(stack_env, tmp_path, {**FAST_SWEEPER, "DATABASE_URL": database.url}) as stack:
            migrate()
            scheduler = beat(stack["env"], tmp_path)
            try:
                runs = [start_run("t_fanout", {"count": 8, "item_seconds": 0.3}) for _ in range(6)]
                wait_until(lambda: items_done(runs) >= 6, timeout=60, message="the fan-outs to be under way")
                stack["redis"].restart()  # an empty Redis: queued messages and chord counters are gone
                assert_all_succeeded(runs)
            finally:
                scheduler.terminate()
                scheduler.wait(10)
    finally:
        from app.core import db

        db.reset_engines()
        database.drop()


def test_postgres_restarted_under_load(stack_env, tmp_path):
    from app.cli.dev import migrate
    from app.core.embedded import EmbeddedPostgres

    pg = EmbeddedPostgres(embedded_state_dir("copydesk-pg-restart-"), database="copydesk")
    url = pg.start()
    try:
        with isolated_stack(stack_env, tmp_path, {**FAST_SWEEPER, "DATABASE_URL": url}) as stack:
            migrate()
            scheduler = beat(stack["env"], tmp_path)
            try:
                runs = [start_run("t_fanout", {"count": 8, "item_seconds": 0.3}) for _ in range(6)]
                wait_until(lambda: items_done(runs) >= 6, timeout=60, message="the fan-outs to be under way")
                pg.restart()  # every connection is cut in the middle of the work (returns once it accepts again)
                assert_all_succeeded(runs)
                workers_alive = [w.process.poll() is None for w in stack["workers"]]
                assert all(workers_alive)
            finally:
                scheduler.terminate()
                scheduler.wait(10)
    finally:
        from app.core import db

        db.reset_engines()
        pg.stop()
    # the postmaster the restart started is stopped too, not left running after the tests
    assert not (pg.data_dir / "postmaster.pid").exists()
