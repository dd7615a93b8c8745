"""What the benchmarks share: a private stack (own PostgreSQL database, own Redis, real Celery workers),
result files and markdown tables. Benchmarks measure against a baseline taken in the same run."""

from __future__ import annotations

import contextlib
import json
import os
import platform
import secrets
import statistics
import tempfile
import time
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"


def machine() -> str:
    cpu = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{platform.system()} {platform.release()}, {os.cpu_count()} cores ({cpu}), Python {platform.python_version()}"


def save(name: str, data: dict) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    data = {"benchmark": name, "date": date.today().isoformat(), "machine": machine(), **data}
    path.write_text(json.dumps(data, indent=2, default=str))
    return path


def table(headers: list[str], rows: list[list]) -> str:
    out = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    out += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(out)


def summary(values: list[float]) -> dict:
    values = sorted(values)
    return {
        "n": len(values),
        "median": statistics.median(values),
        "p90": values[min(len(values) - 1, int(len(values) * 0.9))],
        "min": values[0],
        "max": values[-1],
    }


@contextlib.contextmanager
def stack(extra_env: dict[str, str] | None = None, *, cpu: int = 2, io: int = 24, io_processes: int = 1):
    """A private Copydesk stack for a benchmark; yields the environment and the worker processes.
    io_processes > 1: that many io workers of `io` threads each (one Python interpreter, one GIL, each)."""
    from cryptography.fernet import Fernet

    from app.cli.dev import migrate
    from tests.fixtures.stack import Database, RedisServer, configure_process, start_workers

    os.environ["COPYDESK_ENV_FILE"] = ""
    database, redis_server = Database(), RedisServer()
    state_dir = Path(tempfile.mkdtemp(prefix="copydesk-bench-"))
    env = {
        **os.environ,
        "COPYDESK_ENV": "test",
        "COPYDESK_STATE_DIR": str(state_dir),
        "DATABASE_URL": database.url,
        "REDIS_URL": redis_server.url,
        "JWT_SECRET_KEY": secrets.token_urlsafe(40),
        "ENCRYPTION_KEY": Fernet.generate_key().decode(),
        "STEP_MODULES": "bench.kinds",
        "WORKFLOWS_DIR": str(ROOT / "bench" / "definitions"),
        "PYTHONPATH": str(ROOT),
        **(extra_env or {}),
    }
    configure_process(env)
    migrate()
    workers = start_workers(env, state_dir, cpu=cpu, io=io)
    if io_processes > 1:
        from tests.fixtures.stack import WorkerProcess

        more = [WorkerProcess("io", "io", "threads", io, env, state_dir) for _ in range(io_processes - 1)]
        for n, w in enumerate(more, start=2):
            w.log_path = state_dir / f"io{n}.log"
            w.start()
        workers += more
    try:
        yield {"env": env, "workers": workers, "redis": redis_server, "database": database, "state_dir": state_dir}
    finally:
        for w in workers:
            w.stop()
        from app.core import db

        db.reset_engines()
        redis_server.stop()
        database.drop()


def wait_run(run_id: str, timeout: float = 300):
    import uuid

    from app.core.db import session_scope
    from app.models import Run

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with session_scope() as session:
            run = session.get(Run, uuid.UUID(run_id))
            if run.state in ("succeeded", "failed", "cancelled"):
                session.expunge(run)
                return run
        time.sleep(0.02)
    raise TimeoutError(f"run {run_id} did not finish in {timeout}s")
