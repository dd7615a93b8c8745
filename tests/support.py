"""Helpers shared by the tests."""

from __future__ import annotations

import os
import shutil
import socket
import threading
import time
from pathlib import Path

import pytest

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
# The shared corpus of real manuscripts: ../shared/corpus beside the checkout (CI's clone has it there),
# or TEST_CORPUS_DIR.
CORPUS = Path(os.environ.get("TEST_CORPUS_DIR") or Path(__file__).resolve().parents[2] / "shared" / "corpus")


def require(condition: bool, component: str, how: str) -> None:
    """Skip when a real component is missing on a developer's machine; fail under CI (CI=true),
    so a missing install step in .ci/run cannot hide behind a skip."""
    if condition:
        return
    message = f"{component} is not available here: {how}"
    if IN_CI:
        pytest.fail(message + " (CI=true: .ci/run must install it)", pytrace=False)
    pytest.skip(message)


def require_program(program: str, component: str, package: str) -> str:
    path = shutil.which(program)
    require(path is not None, component, f"install the Debian package {package}")
    return path  # type: ignore[return-value]


def require_corpus(folder: str) -> Path:
    """A folder of the shared corpus; skips on a laptop without it, fails under CI=true."""
    path = CORPUS / folder
    require(path.is_dir(), "The shared corpus", f"{path} is not there (../shared beside the checkout, or TEST_CORPUS_DIR)")
    return path


def starts(*markers: str):
    """Declare on a fixture the markers of what it starts (tests/conftest.py gives every test that
    uses the fixture, directly or through others, those markers). Put it under @pytest.fixture."""

    def declare(fixture):
        fixture.starts = markers
        return fixture

    return declare


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port: int, host: str = "127.0.0.1", timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listens on {host}:{port} after {timeout}s")


def wait_until(predicate, timeout: float = 30.0, interval: float = 0.1, message="condition"):
    """Poll until predicate() returns a truthy value; return it. Fails the test on timeout, saying what
    did not happen (`message`, or message() for a description made at that moment)."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(interval)
    what = message() if callable(message) else message
    pytest.fail(f"timed out after {timeout}s waiting for {what} (last value: {last!r})")


RUN_ENDED = ("succeeded", "failed", "cancelled")


def wait_run(client, run_id: str, *, states=RUN_ENDED, timeout: float = 120, interval: float = 0.2) -> dict:
    """Read GET /runs/{id} until the run is in one of `states` (by default: ended); the run."""

    def reached():
        run = client.get(f"/runs/{run_id}").json()
        return run if run["state"] in states else None

    return wait_until(reached, timeout=timeout, interval=interval, message=f"run {run_id} to reach {states}")


def start_run(workflow: str, payload: dict) -> str:
    """Create a run and send its canvas, as intake does (without a document); its id."""
    from app.core.db import session_scope
    from app.workflows import engine, state
    from app.workflows.schema import get_workflow

    with session_scope() as session:
        run = state.create_run(session, get_workflow(workflow), payload)
        run.launches = 1
    engine.send(run)
    return str(run.id)


def wait_requeued(run_id: str, *, timeout: float = 60) -> None:
    """Run the sweeper (as beat does) until it re-queues this run: once its dead worker's claim is
    stale. The sweeper looks at every run: the stuck ones other tests left behind, re-queued with it,
    are cancelled at once, so they do not run on this test's workers (and, say, take a fault it set)."""
    import uuid

    from app.core.db import session_scope
    from app.tasks.ops import sweep
    from app.workflows import state

    def requeued() -> bool:
        sent = sweep(stuck_after=1)["requeued"]
        with session_scope() as session:
            for other in sent:
                if other != run_id:
                    state.cancel_run(session, uuid.UUID(other), "left stuck by an earlier test")
        return run_id in sent

    wait_until(requeued, timeout=timeout, interval=0.5, message=f"the sweeper to re-queue run {run_id}")


def returns_within(seconds: float, what: str, fn, *args, **kwargs):
    """fn(*args, **kwargs)'s result (or its exception); fails the test if it has not returned after
    `seconds`. A guard against a hang, sized for a loaded machine: how fast it is belongs in bench/.
    (A daemon thread: a call that never returns does not keep the test session from ending.)"""
    outcome: dict = {}

    def call():
        try:
            outcome["value"] = fn(*args, **kwargs)
        except BaseException as exc:  # handed to the test as it is
            outcome["error"] = exc

    thread = threading.Thread(target=call, name="returns-within", daemon=True)
    thread.start()
    thread.join(seconds)
    if thread.is_alive():
        pytest.fail(f"{what} had not returned after {seconds:g}s: it hangs", pytrace=False)
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


def broker_queued(redis_url: str) -> dict[str, int]:
    """The messages waiting in each queue (every priority level) of the Celery broker at redis_url."""
    import redis
    from kombu.transport.redis import PRIORITY_STEPS, Channel

    from app.tasks.celery_app import celery_app

    queued = {}
    with redis.Redis.from_url(redis_url) as client:
        for queue in celery_app.conf.task_queues:
            for priority in PRIORITY_STEPS:
                key = queue.name + (f"{Channel.sep}{priority}" if priority else "")
                if waiting := client.llen(key):
                    queued[key] = waiting
    return queued


def broker_unacknowledged(redis_url: str) -> set[str]:
    """The delivery tags of the messages delivered and not acknowledged yet (acks_late: tasks running,
    prefetched, or held for a countdown by a worker; or left by a worker that died, until the
    visibility timeout gives them back)."""
    import redis
    from kombu.transport.redis import Channel

    with redis.Redis.from_url(redis_url) as client:
        return {tag.decode() for tag in client.hkeys(Channel.unacked_key)}


def wait_broker_drained(redis_url: str, *, timeout: float = 60, message: str = "the workers to finish every task"):
    """Wait until no task is left to run: no queue holds a message, no live worker has a task (running,
    reserved or scheduled), and no message changed hands meanwhile (the unacknowledged ones are the
    same before and after asking the workers: only those of dead workers are left)."""
    from app.tasks.celery_app import celery_app

    seen: dict = {}
    with celery_app.connection_for_read(redis_url) as connection:
        live = len(celery_app.control.ping(timeout=3, connection=connection) or [])  # every live worker answers

        def drained():
            seen.clear()
            seen.update(broker_queued(redis_url))
            before = broker_unacknowledged(redis_url)
            if live:  # each question returns as soon as every live worker has answered
                inspect = celery_app.control.inspect(timeout=10, limit=live, connection=connection)
                for kind, ask in (("running", inspect.active), ("reserved", inspect.reserved),
                                  ("scheduled", inspect.scheduled)):
                    replies = ask() or {}
                    if len(replies) < live:
                        seen[f"answers to {kind}"] = f"{len(replies)} of {live} workers"
                    for worker, tasks in replies.items():
                        if tasks:
                            seen[f"{kind} in {worker}"] = len(tasks)
            seen.update(broker_queued(redis_url))
            if broker_unacknowledged(redis_url) != before:
                seen["unacknowledged"] = "changing"
            return not seen

        wait_until(drained, timeout=timeout, interval=0.2, message=lambda: f"{message}; still pending: {seen}")
