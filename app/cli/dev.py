"""`copydesk dev` / `copydesk demo`: one command that starts the whole stack on this machine.

The stack lives in a state folder (`app.core.config.state_dir`: COPYDESK_STATE_DIR, else state/), and one
stack at a time may use it: <state>/copydesk.pid holds the supervisor's pid under a lock the kernel
drops when the supervisor dies; a second `copydesk dev` on the same folder stops at once and says which
process holds it. Services that are configured (DATABASE_URL, REDIS_URL, OSS_*, OPENAI_API_KEY, WP_*)
are used; the rest fall back to the embedded defaults (app/core/embedded.py), whose URLs go to
<state>/runtime.env for the other commands (the CLI, `celery -A app.tasks …`) to find. Then: migrate,
start API, workers (cpu: prefork, io: threads), beat and (unless --no-flower) Flower, wait until they
answer, print one JSON line saying so (and write it to --ready-file), and (demo) send a sample
manuscript through.

Stopping: SIGINT (Ctrl-C, also when started as a background job, whose SIGINT a non-interactive shell
ignores), SIGTERM or SIGHUP stops everything this command started, in order. If the supervisor itself
is killed (SIGKILL), every child gets a signal from the kernel (`die_with_parent`) and stops too.
Process logs go to <state>/logs/.
"""

from __future__ import annotations

import fcntl
import json
import os
import secrets
import signal
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import typer

from app.core.config import ROOT, get_settings, reset_settings_cache, runtime_env_path, state_dir
from app.core.embedded import EmbeddedError, die_with_parent, free_port


def migrate() -> None:
    """Upgrade the database schema to the latest version (alembic upgrade head)."""
    from alembic import command
    from alembic.config import Config

    config = Config(str(ROOT / "alembic.ini"))
    config.set_main_option("script_location", str(ROOT / "alembic"))
    config.attributes["configure_logging"] = False
    command.upgrade(config, "head")


def _secret_file(path: Path, make=lambda: secrets.token_urlsafe(18)) -> str:
    if path.exists():
        return path.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    value = make()
    path.write_text(value)
    path.chmod(0o600)
    return value


def _write_private(path: Path, text: str, mode: int = 0o600) -> None:
    """Replace `path` at once (a reader never sees half a file)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "w") as fh:
        fh.write(text)
    tmp.replace(path)


def say(message: str) -> None:
    """Progress for people, on stderr: stdout carries only the ready line."""
    typer.echo(message, err=True)


class StateInUse(Exception):
    pass


class StateLock:
    """One stack per state folder: <state>/copydesk.pid holds the supervisor's pid, under an exclusive
    flock held as long as it runs (released by the kernel when it dies, even by SIGKILL)."""

    def __init__(self, state: Path) -> None:
        self.state = state
        self.path = state / "copydesk.pid"
        self.fd: int | None = None

    def acquire(self) -> None:
        self.state.mkdir(parents=True, exist_ok=True)
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                raise StateInUse(self._holder()) from None
            if self.path.exists() and os.fstat(fd).st_ino == self.path.stat().st_ino:
                break
            os.close(fd)  # locked a file its holder had just removed on its way out: take the new one
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self.fd = fd

    def _holder(self) -> str:
        try:
            pid = self.path.read_text().strip() or "unknown"
            started = datetime.fromtimestamp(self.path.stat().st_mtime).isoformat(sep=" ", timespec="seconds")
        except OSError:
            pid, started = "unknown", "unknown"
        return (f"the state folder {self.state} is in use by another stack (copydesk dev, pid {pid}, started "
                f"{started}): stop that one, or give this one a state folder of its own (COPYDESK_STATE_DIR)")

    def release(self) -> None:
        if self.fd is not None:
            self.path.unlink(missing_ok=True)
            os.close(self.fd)
            self.fd = None


class Stack:
    """The processes of a development stack, started in order and stopped together."""

    def __init__(self, state: Path) -> None:
        self.state = state
        self.logs = state / "logs"
        self.children: dict[str, subprocess.Popen] = {}
        self.pg = None
        self.redis = None
        self.runtime: dict[str, str] = {}
        self.settings = get_settings()
        # The children find this stack by its state folder (absolute: they run from the checkout).
        self.env = {**os.environ, "COPYDESK_STATE_DIR": str(state)}

    # -- services -------------------------------------------------------------------------------
    def start_services(self, api_port: int) -> str:
        """PostgreSQL and Redis (embedded unless configured), runtime.env, migrations; the API's URL."""
        from app.core.embedded import EmbeddedPostgres, EmbeddedRedis

        self.logs.mkdir(parents=True, exist_ok=True)
        if not self.settings.database_url:
            say(f"· PostgreSQL: starting the embedded server ({self.state / 'postgres'})")
            self.pg = EmbeddedPostgres(self.state)
            self.runtime["DATABASE_URL"] = self.pg.start()
        else:
            say("· PostgreSQL: DATABASE_URL")
        if not self.settings.redis_url:
            say(f"· Redis: starting the embedded server ({self.state / 'redis'})")
            self.redis = EmbeddedRedis(self.state)
            self.runtime["REDIS_URL"] = self.redis.start()
        else:
            say("· Redis: REDIS_URL")
        public = urlsplit(str(self.settings.public_url))
        if public.port != api_port and public.hostname in ("127.0.0.1", "localhost", "::1"):
            self.runtime["PUBLIC_URL"] = urlunsplit(public._replace(netloc=f"{public.hostname}:{api_port}")).rstrip("/")
        # Commands run with this state folder (`copydesk users …`, `copydesk runs`, `celery -A app.tasks
        # inspect active`) find this stack's services through this file while it runs.
        _write_private(runtime_env_path(), "".join(f"{k}={v}\n" for k, v in self.runtime.items()))
        self.env.update(self.runtime)
        os.environ.update(self.runtime)
        reset_settings_cache()
        self.settings = get_settings()
        s = self.settings
        say(f"· storage: {'OSS bucket ' + str(s.oss_bucket) if s.uses_oss else s.storage_root}")
        say(f"· editing: {'OpenAI ' + s.openai_model if s.uses_openai else 'offline editor'}")
        say(f"· publishing: {'WordPress ' + str(s.wp_url) if s.wp_url else 'local preview'}")
        migrate()
        say("· database schema up to date")
        return str(s.public_url).rstrip("/")

    # -- processes ------------------------------------------------------------------------------
    def spawn(self, name: str, args: list[str], extra_env: dict[str, str] | None = None) -> None:
        with open(self.logs / f"{name}.log", "ab") as log:
            self.children[name] = subprocess.Popen(
                args,
                cwd=ROOT,
                env={**self.env, **(extra_env or {})},
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # Ctrl-C reaches only this supervisor, which stops them in order
                preexec_fn=die_with_parent(signal.SIGTERM),  # and a killed supervisor takes them along
            )

    def start_processes(self, *, api_port: int, flower_port: int | None) -> None:
        py = sys.executable
        celery = [py, "-m", "celery", "-A", "app.tasks"]
        cores = str(max(1, os.cpu_count() or 1))
        # --no-access-log: the API writes its own JSON access line (with request id and run/document ids).
        self.spawn("api", [py, "-m", "uvicorn", "app.api.main:app", "--host", "127.0.0.1", "--port", str(api_port),
                           "--no-access-log"])
        self.spawn("worker-cpu", [*celery, "worker", "-Q", "cpu", "-P", "prefork", "-c", cores, "-n", "cpu@%h", "-E", "--loglevel=INFO"])
        self.spawn("worker-io", [*celery, "worker", "-Q", "io", "-P", "threads", "-c", "16", "-n", "io@%h", "-E", "--loglevel=INFO"])
        # Beat opens its schedule file as it starts: the file appearing says beat is up.
        for old in self.state.glob("celerybeat-schedule*"):
            old.unlink()
        self.spawn("beat", [*celery, "beat", "-s", str(self.state / "celerybeat-schedule"), "--loglevel=INFO"])
        if flower_port is not None:
            password = (
                self.settings.flower_password.get_secret_value()
                if self.settings.flower_password
                else _secret_file(self.state / "secrets" / "flower-password")
            )
            self.spawn(
                "flower",
                [*celery, "flower", "--address=127.0.0.1", f"--port={flower_port}", "--purge_offline_workers=60"],
                {"FLOWER_BASIC_AUTH": f"{self.settings.flower_user}:{password}"},
            )

    def wait_ready(self, api_url: str, flower_port: int | None, timeout: float = 180) -> None:
        """Until the API answers /ready, both workers answer a ping, beat has opened its schedule and
        Flower (when started) listens."""
        import socket

        import httpx

        from app.tasks import celery_app

        pending = {"api", "worker-cpu", "worker-io", "beat"} | ({"flower"} if flower_port is not None else set())
        deadline = time.monotonic() + timeout
        while pending and time.monotonic() < deadline:
            self.check_alive()
            if "api" in pending:
                try:
                    if httpx.get(f"{api_url}/ready", timeout=3).status_code == 200:
                        pending.discard("api")
                except httpx.HTTPError:
                    pass
            if pending & {"worker-cpu", "worker-io"}:
                nodes = [name for reply in celery_app.control.ping(timeout=1.0) for name in reply]
                for queue in ("cpu", "io"):
                    if any(node.startswith(f"{queue}@") for node in nodes):
                        pending.discard(f"worker-{queue}")
            if "beat" in pending and any(self.state.glob("celerybeat-schedule*")):
                pending.discard("beat")
            if "flower" in pending:
                try:
                    with socket.create_connection(("127.0.0.1", flower_port), timeout=0.5):
                        pending.discard("flower")
                except OSError:
                    pass
            if pending:
                time.sleep(0.5)
        if pending:
            raise RuntimeError(
                f"{', '.join(sorted(pending))} did not become ready within {timeout:.0f}s; see {self.logs}"
            )

    def check_alive(self) -> None:
        for name, proc in self.children.items():
            if proc.poll() is not None:
                tail = (self.logs / f"{name}.log").read_text(errors="replace").splitlines()[-15:]
                raise RuntimeError(f"{name} exited with code {proc.returncode}:\n  " + "\n  ".join(tail))
        for name, server in (("PostgreSQL", self.pg), ("Redis", self.redis)):
            if server is not None and server.process is not None and server.process.poll() is not None:
                raise RuntimeError(f"the embedded {name} exited with code {server.process.returncode}")

    def ready_line(self, api_url: str, flower_port: int | None, lock: StateLock) -> dict:
        """What a script needs to find this stack (no secrets: URLs with passwords stay in runtime.env)."""

        def service(server) -> dict:
            if server is None:
                return {"embedded": False}
            return {"embedded": True, "port": server.port, "pid": server.pid}

        return {
            "event": "ready",
            "pid": os.getpid(),
            "pid_file": str(lock.path),
            "state_dir": str(self.state),
            "api_url": api_url,
            "docs_url": f"{api_url}/docs",
            "flower_url": f"http://127.0.0.1:{flower_port}" if flower_port is not None else None,
            "postgres": service(self.pg),
            "redis": service(self.redis),
            "processes": {name: proc.pid for name, proc in self.children.items()},
            "logs": str(self.logs),
        }

    def stop(self) -> None:
        for name in reversed(list(self.children)):
            proc = self.children[name]
            if proc.poll() is None:
                try:
                    os.killpg(proc.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
        deadline = time.monotonic() + 15
        for proc in self.children.values():
            try:
                proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                proc.wait(10)
        if self.redis:
            self.redis.stop()
        if self.pg:
            self.pg.stop()
        runtime_env_path().unlink(missing_ok=True)


# --- the command ------------------------------------------------------------------------------------


class Stopped(BaseException):  # like KeyboardInterrupt: no `except Exception` on the way swallows it
    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)


STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def _on_stop_signal(signum, frame):
    raise Stopped(signum)


def _api_port(port: int | None) -> int:
    if port == 0:
        return free_port()
    if port is not None:
        return port
    url = urlsplit(str(get_settings().public_url))
    return url.port or (443 if url.scheme == "https" else 80)


def _serve(demo_run, *, port: int | None, flower: bool, flower_port: int | None, ready_file: Path | None) -> None:
    from app.cli import fail
    from app.core.logging import configure_logging

    # Set explicitly: a background job of a non-interactive shell starts with SIGINT ignored, and the
    # handlers set here (not ignored ones) are what the children get back as defaults when they exec.
    for sig in STOP_SIGNALS:
        signal.signal(sig, _on_stop_signal)
    state = state_dir()
    lock = StateLock(state)
    try:
        lock.acquire()
    except StateInUse as exc:
        fail(str(exc), 2)
    stack = None
    code = 0
    try:
        # With the lock held, a runtime.env or ready file left here is from a stack that is gone.
        runtime_env_path().unlink(missing_ok=True)
        if ready_file is not None:
            ready_file.unlink(missing_ok=True)
        reset_settings_cache()
        configure_logging(fmt="text", level="WARNING")
        stack = Stack(state)
        api_port = _api_port(port)
        api_url = stack.start_services(api_port)
        configure_logging(fmt="text", level="WARNING")  # redact the embedded servers' passwords too
        if flower:
            flower_port = free_port() if flower_port == 0 else (flower_port or stack.settings.flower_port)
        else:
            flower_port = None
        say(f"· starting API, workers (cpu, io), beat{' and Flower' if flower_port else ''} …")
        stack.start_processes(api_port=api_port, flower_port=flower_port)
        stack.wait_ready(api_url, flower_port)
        ready = stack.ready_line(api_url, flower_port, lock)
        line = json.dumps(ready)
        if ready_file is not None:
            _write_private(ready_file, line + "\n", 0o644)
        typer.echo(line)
        sys.stdout.flush()
        say(f"\nCopydesk is running (pid {os.getpid()}, state {state}).\n  API and docs   {api_url}/docs")
        if flower_port:
            say(f"  Flower         http://127.0.0.1:{flower_port}  (user {stack.settings.flower_user}; password: "
                f"FLOWER_PASSWORD or {state / 'secrets' / 'flower-password'})")
        say(f"  logs           {stack.logs}/")
        if demo_run:
            demo_run(stack, api_url)
        say("\nPress Ctrl-C to stop everything.")
        while True:
            stack.check_alive()
            time.sleep(1)
    except Stopped as exc:
        say(f"\nstopping ({exc}) …")
    except (RuntimeError, EmbeddedError) as exc:
        say(f"copydesk: {exc}")
        code = 1
    finally:
        for sig in STOP_SIGNALS:  # stopping is bounded; a second Ctrl-C must not leave it half done
            signal.signal(sig, signal.SIG_IGN)
        if stack is not None:
            stack.stop()
        if ready_file is not None:
            ready_file.unlink(missing_ok=True)
        lock.release()
        say("stopped")
    if code:
        raise typer.Exit(code)


PORT = typer.Option(None, "--port", metavar="PORT", help="the API's port (default: PUBLIC_URL's; 0: any free port)")
FLOWER = typer.Option(True, "--flower/--no-flower", help="start Flower (the Celery dashboard)")
FLOWER_PORT = typer.Option(None, "--flower-port", metavar="PORT", help="Flower's port (default: FLOWER_PORT; 0: any free port)")
READY_FILE = typer.Option(
    None, "--ready-file", metavar="FILE", help="also write the ready line (JSON) to this file; removed on stop"
)


def dev(
    port: int | None = PORT,
    flower: bool = FLOWER,
    flower_port: int | None = FLOWER_PORT,
    ready_file: Path | None = READY_FILE,
) -> None:
    """Start PostgreSQL and Redis (embedded unless configured), migrate, then the API, workers, beat and
    Flower. Prints one JSON line when ready. Ctrl-C (SIGINT), SIGTERM or SIGHUP stops everything."""
    _serve(None, port=port, flower=flower, flower_port=flower_port, ready_file=ready_file)


def demo(
    port: int | None = PORT,
    flower: bool = FLOWER,
    flower_port: int | None = FLOWER_PORT,
    ready_file: Path | None = READY_FILE,
) -> None:
    """Like `dev`, then send a sample manuscript through the main workflow and print where to look."""
    _serve(_run_demo, port=port, flower=flower, flower_port=flower_port, ready_file=ready_file)


def _run_demo(stack: Stack, api_url: str) -> None:
    import httpx
    from sqlalchemy import select

    from app.core.db import session_scope
    from app.core.security import hash_password
    from app.demo import sample_manuscript
    from app.models import User

    email = "admin@copydesk.example"
    password_file = stack.state / "secrets" / "demo-password"
    password = _secret_file(password_file)
    with session_scope() as session:
        if session.execute(select(User).where(User.email == email)).scalar_one_or_none() is None:
            session.add(User(email=email, role="admin", hashed_password=hash_password(password)))
    with httpx.Client(base_url=api_url, timeout=30) as client:
        token = client.post("/auth/token", data={"username": email, "password": password}).raise_for_status()
        client.headers["Authorization"] = f"Bearer {token.json()['access_token']}"
        files = {"file": ("harbour-library.docx", sample_manuscript(), "application/octet-stream")}
        sub = client.post("/documents", files=files).raise_for_status().json()
        run_id = sub["run"]["id"]
        say(f"\n· sample manuscript submitted: run {run_id}{' (already sent before)' if sub['duplicate'] else ''}")
        deadline = time.monotonic() + 120
        run = {}
        while time.monotonic() < deadline:
            run = client.get(f"/runs/{run_id}").raise_for_status().json()
            if run["state"] in ("succeeded", "failed", "cancelled"):
                break
            time.sleep(0.3)
        say(f"· run {run.get('state')} ({run.get('progress', {}).get('text', '')}): "
            + ", ".join(f"{s['name']}={s['state']}" for s in run.get("steps", [])))
        if run.get("state") != "succeeded":
            say(f"  error: {run.get('error')}")
            return
        article = client.get(f"/articles/{run['article_id']}").raise_for_status().json()
        say(f"\nPreview of the converted article, with its images:\n  {article['preview_url']}\n"
            f"Log in to the API as {email} (password in {password_file}).")
