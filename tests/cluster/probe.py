"""The cluster tests' client, run inside the probe host's network namespace.

The test process has no route to the cluster's addresses (the root namespace would send such packets
off the machine), so everything it does against the cluster — HTTP to the API, SQL, Redis, starting
runs — goes through this process: `ip netns exec <probe> python -m tests.cluster.probe`, one JSON
request per line on stdin, one JSON answer per line on stdout, each request in a thread of its own
(so a test can hold an upload open while it cuts a link). harness.Probe is the other end.
"""

from __future__ import annotations

import base64
import json
import os
import sys
import threading
import traceback
import uuid

from tests.support import start_run

_local = threading.local()
_write = threading.Lock()
_answers = sys.stdout  # main() keeps the real stdout for the answers and points fd 1 at stderr


def _db():
    import psycopg

    conn = getattr(_local, "db", None)
    if conn is None or conn.closed or conn.broken:
        from app.core.connections import libpq_options

        conn = _local.db = psycopg.connect(os.environ["DATABASE_URL"], autocommit=True, **libpq_options())
    return conn


def sql(query: str, params: dict | list | None = None) -> list[list]:
    with _db().cursor() as cursor:
        cursor.execute(query, params)
        return [list(row) for row in cursor.fetchall()] if cursor.description else []


def redis(*command):
    from app.core.connections import redis_client

    client = getattr(_local, "redis", None) or redis_client(os.environ["REDIS_URL"])
    _local.redis = client
    value = client.execute_command(*command)
    return _decode(value)


def _decode(value):
    if isinstance(value, bytes):
        return value.decode(errors="replace")
    if isinstance(value, (list, tuple)):
        return [_decode(v) for v in value]
    if isinstance(value, dict):
        return {_decode(k): _decode(v) for k, v in value.items()}
    return value


def http(method: str, path: str, *, token: str | None = None, data: dict | None = None,
         json_body: dict | None = None, file: tuple[str, str] | None = None, timeout: float = 60) -> dict:
    """One request to the API; `file` is (filename, base64 content) sent as the multipart `file`."""
    import httpx

    headers = {"Authorization": f"Bearer {token}"} if token else {}
    files = {"file": (file[0], base64.b64decode(file[1]))} if file else None
    try:
        response = httpx.request(method, os.environ["PUBLIC_URL"] + path, headers=headers, data=data,
                                 json=json_body, files=files, timeout=timeout)
    except httpx.HTTPError as exc:
        return {"status": None, "error": f"{type(exc).__name__}: {exc}"}
    try:
        body = response.json()
    except ValueError:
        body = response.text
    return {"status": response.status_code, "body": body}


def migrate() -> None:
    from app.cli.dev import migrate as upgrade

    upgrade()


def make_user(role: str) -> list[str]:
    from app.core.db import session_scope
    from app.core.security import hash_password
    from app.models import User

    email, password = f"{role}-{uuid.uuid4().hex[:8]}@example.com", "correct horse battery"
    with session_scope() as session:
        session.add(User(email=email, role=role, hashed_password=hash_password(password)))
    return [email, password]


def send_task(name: str, args: list, queue: str) -> str:
    """One task message, as a redelivery would bring it (no canvas around it)."""
    from app.core.broker import celery_app

    return celery_app.send_task(name, args=args, queue=queue).id


def executions(run_id: str) -> dict[str, int]:
    """How often each step or item body of a run started (tests/workflows/kinds.py counts them)."""
    prefix = f"test:{run_id}:count:"
    keys = redis("KEYS", prefix + "*")
    return {key[len(prefix):]: int(redis("GET", key)) for key in keys}


FUNCTIONS = {f.__name__: f for f in (sql, redis, http, migrate, make_user, start_run, send_task, executions)}


def _answer(request: dict) -> None:
    try:
        answer = {"id": request["id"], "ok": FUNCTIONS[request["fn"]](*request.get("args", []),
                                                                     **request.get("kwargs", {}))}
    except BaseException as exc:  # the caller gets the error; the probe keeps serving
        answer = {"id": request["id"], "error": f"{type(exc).__name__}: {exc}", "trace": traceback.format_exc()}
    line = json.dumps(answer, default=str)
    with _write:
        _answers.write(line + "\n")
        _answers.flush()


def main() -> None:
    global _answers
    _answers = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)  # whatever a library prints cannot corrupt the answers
    from app.core.logging import configure_logging

    configure_logging()
    _answers.write(json.dumps({"id": 0, "ok": "ready"}) + "\n")
    _answers.flush()
    for line in sys.stdin:
        threading.Thread(target=_answer, args=(json.loads(line),), daemon=True).start()


if __name__ == "__main__":
    main()
