"""Helpers shared by the tests."""

from __future__ import annotations

import os
import shutil
import socket
import time

import pytest

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


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


def wait_until(predicate, timeout: float = 30.0, interval: float = 0.1, message: str = "condition"):
    """Poll until predicate() returns a truthy value; return it. Fails the test on timeout."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(interval)
    pytest.fail(f"timed out after {timeout}s waiting for {message} (last value: {last!r})")


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
