"""The API process sends work without loading the workers' code: no step implementation, no worker
set-up (app.tasks), only the broker's settings and the step kinds' declarations."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import uuid

import pytest
import redis

from app.core.db import session_scope
from app.workflows import engine
from tests.conftest import make_user
from tests.fixtures.stack import ROOT, RedisServer
from tests.samples import docx

pytestmark = [pytest.mark.postgres, pytest.mark.redis]

SCRIPT = textwrap.dedent("""
    import json, sys

    from fastapi.testclient import TestClient

    from app.api.main import create_app

    email, password, manuscript = sys.argv[1:4]
    with TestClient(create_app()) as http:
        token = http.post("/auth/token", data={"username": email, "password": password}).json()["access_token"]
        with open(manuscript, "rb") as f:
            sent = http.post(
                "/documents", files={"file": ("layers.docx", f.read())}, headers={"Authorization": f"Bearer {token}"}
            )
    print(json.dumps({
        "status": sent.status_code,
        "body": sent.json(),
        "modules": sorted(name for name in sys.modules if name.startswith("app.")),
    }))
""")


def test_a_run_is_created_and_sent_with_no_task_module_loaded(stack_env, tmp_path):
    broker = RedisServer()  # a broker of its own: no worker of the session takes the run away
    try:
        manuscript = tmp_path / "layers.docx"
        manuscript.write_bytes(docx("Layers", seed=2207))
        env = {**stack_env["env"], "REDIS_URL": broker.url}
        done = subprocess.run(
            [sys.executable, "-c", SCRIPT, *make_user("editor"), str(manuscript)],
            cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr[-3000:]
        out = json.loads(done.stdout.strip().splitlines()[-1])
        assert out["status"] == 201, out["body"]
        run_id = out["body"]["run"]["id"]
        assert [m for m in out["modules"] if m == "app.tasks" or m.startswith("app.tasks.")] == []
        assert "app.workflows.engine" in out["modules"]  # it did send: the canvas is on the broker
        queued = redis.Redis.from_url(broker.url)
        assert queued.llen("io") == 1  # the first step (store) waits on its queue
        assert run_id in queued.lindex("io", 0).decode()
        with session_scope() as session:  # no worker will ever take it: not a stuck run for the sweeper
            engine.cancel(session, uuid.UUID(run_id))
    finally:
        broker.stop()
