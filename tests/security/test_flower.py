"""Flower (the ops dashboard) as Copydesk runs it — `celery -A app.tasks flower` with FLOWER_BASIC_AUTH
(docker-compose.yml and `copydesk dev` build it from FLOWER_USER and FLOWER_PASSWORD) — against the test
broker: its pages and its API (which can shut workers down and revoke tasks) refuse a caller without
the password or with a wrong one, and open with the right one.

By Flower's design /metrics (Prometheus) and /healthcheck answer without authentication; they expose
counts and "OK", not task arguments. That is why docker-compose.yml publishes Flower's port on the
host's loopback only (127.0.0.1:5555) and `copydesk dev` binds it to 127.0.0.1.
"""

from __future__ import annotations

import re
import secrets
import subprocess
import sys

import httpx
import pytest

from tests.fixtures.stack import ROOT
from tests.support import free_port, wait_for_port

pytestmark = [pytest.mark.redis, pytest.mark.slow]


@pytest.fixture
def flower(stack_env, tmp_path):
    port = free_port()
    password = secrets.token_urlsafe(18)
    env = {**stack_env["env"], "FLOWER_BASIC_AUTH": f"ops:{password}"}
    log = open(tmp_path / "flower.log", "ab")
    process = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "app.tasks", "flower", "--address=127.0.0.1", f"--port={port}",
         "--purge_offline_workers=60"],
        cwd=ROOT, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        wait_for_port(port, timeout=60)
        yield f"http://127.0.0.1:{port}", ("ops", password)
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()


def test_flower_needs_its_password(flower):
    url, (user, password) = flower
    with httpx.Client(base_url=url, timeout=30) as c:
        for path in ("/api/workers", "/api/tasks", "/", "/workers", "/tasks", "/broker"):
            assert c.get(path).status_code == 401, path
            assert c.get(path, auth=(user, "not-the-password")).status_code == 401, path
            assert c.get(path, auth=("someone-else", password)).status_code == 401, path
        # Flower's write API (shut a worker down, revoke a task) is behind the same door.
        assert c.post("/api/worker/shutdown/any@host").status_code == 401
        assert c.post("/api/task/revoke/some-task-id", params={"terminate": "true"}).status_code == 401
        assert c.get("/api/workers", auth=(user, password)).status_code == 200
        assert c.get("/", auth=(user, password)).status_code == 200

        # By Flower's design, open without a password: aggregate metrics and a liveness answer.
        assert c.get("/healthcheck").status_code == 200
        metrics = c.get("/metrics")
        assert metrics.status_code == 200 and "flower_" in metrics.text
        assert password not in metrics.text


def test_compose_keeps_flower_on_the_loopback_and_refuses_to_start_without_a_password():
    compose = (ROOT / "docker-compose.yml").read_text()
    flower = compose[compose.index("\n  flower:") :]
    flower = flower[: flower.index("\n\n")] if "\n\n" in flower else flower
    assert 'ports: ["127.0.0.1:5555:5555"]' in flower
    assert re.search(r'test -n \\?"\$\$FLOWER_PASSWORD\\?" \|\| \{[^}]*exit 1', flower), flower
    assert "FLOWER_BASIC_AUTH=" in flower
