"""`copydesk dev` / `copydesk demo`: one command that starts the whole stack on this machine.

Services that are configured (DATABASE_URL, REDIS_URL, OSS_*, OPENAI_API_KEY, WP_*) are used; the rest
fall back to the embedded defaults. Then: migrate, start API, workers (cpu: prefork, io: threads),
beat and Flower, wait until they answer, and (demo) send a sample manuscript through. Ctrl-C stops
everything this command started. Process logs go to <state>/logs/.
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

import typer

from app.core.config import ROOT, get_settings, reset_settings_cache


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


class Stack:
    """The processes of a development stack, started in order and stopped together."""

    def __init__(self) -> None:
        self.settings = get_settings()
        self.state = self.settings.state_dir
        self.logs = self.state / "logs"
        self.children: dict[str, subprocess.Popen] = {}
        self.pg = None
        self.redis = None
        self.env = dict(os.environ)

    # -- services -------------------------------------------------------------------------------
    def start_services(self) -> None:
        from app.core.embedded import EmbeddedPostgres, EmbeddedRedis

        self.state.mkdir(parents=True, exist_ok=True)
        self.logs.mkdir(exist_ok=True)
        runtime = {}
        if not self.settings.database_url:
            typer.echo("· PostgreSQL: starting the embedded server (state/postgres)")
            self.pg = EmbeddedPostgres(self.state)
            runtime["DATABASE_URL"] = self.pg.start()
        else:
            typer.echo("· PostgreSQL: DATABASE_URL")
        if not self.settings.redis_url:
            typer.echo("· Redis: starting the embedded server (state/redis)")
            self.redis = EmbeddedRedis(self.state)
            runtime["REDIS_URL"] = self.redis.start()
        else:
            typer.echo("· Redis: REDIS_URL")
        # Commands run from this checkout (`celery -A app.tasks inspect active`, `copydesk users …`)
        # find the embedded services through this file while the stack runs.
        (self.state / "runtime.env").write_text("".join(f"{k}={v}\n" for k, v in runtime.items()))
        self.env.update(runtime)
        os.environ.update(runtime)
        reset_settings_cache()
        self.settings = get_settings()
        typer.echo(f"· storage: {'OSS bucket ' + str(self.settings.oss_bucket) if self.settings.uses_oss else self.settings.storage_root}")
        typer.echo(f"· editing: {'OpenAI ' + self.settings.openai_model if self.settings.uses_openai else 'offline editor'}")
        typer.echo(f"· publishing: {'WordPress ' + str(self.settings.wp_url) if self.settings.wp_url else 'local preview'}")
        migrate()
        typer.echo("· database schema up to date")

    # -- processes ------------------------------------------------------------------------------
    def spawn(self, name: str, args: list[str], extra_env: dict[str, str] | None = None) -> None:
        log = open(self.logs / f"{name}.log", "ab")
        self.children[name] = subprocess.Popen(
            args,
            cwd=ROOT,
            env={**self.env, **(extra_env or {})},
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # Ctrl-C reaches only this supervisor, which stops them in order
        )

    def start_processes(self, *, api_port: int, flower: bool = True) -> None:
        py = sys.executable
        celery = [py, "-m", "celery", "-A", "app.tasks"]
        cores = str(max(1, os.cpu_count() or 1))
        # --no-access-log: the API writes its own JSON access line (with request id and run/document ids).
        self.spawn("api", [py, "-m", "uvicorn", "app.api.main:app", "--host", "127.0.0.1", "--port", str(api_port),
                           "--no-access-log"])
        self.spawn("worker-cpu", [*celery, "worker", "-Q", "cpu", "-P", "prefork", "-c", cores, "-n", "cpu@%h", "-E", "--loglevel=INFO"])
        self.spawn("worker-io", [*celery, "worker", "-Q", "io", "-P", "threads", "-c", "16", "-n", "io@%h", "-E", "--loglevel=INFO"])
        self.spawn("beat", [*celery, "beat", "-s", str(self.state / "celerybeat-schedule"), "--loglevel=INFO"])
        if flower:
            password = (
                self.settings.flower_password.get_secret_value()
                if self.settings.flower_password
                else _secret_file(self.state / "secrets" / "flower-password")
            )
            self.spawn(
                "flower",
                [*celery, "flower", "--address=127.0.0.1", f"--port={self.settings.flower_port}", "--purge_offline_workers=60"],
                {"FLOWER_BASIC_AUTH": f"{self.settings.flower_user}:{password}"},
            )

    def wait_ready(self, api_url: str, timeout: float = 60) -> None:
        import httpx

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.check_alive()
            try:
                r = httpx.get(f"{api_url}/ready", timeout=3)
                if r.status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        raise RuntimeError(f"the stack did not become ready within {timeout:.0f}s; see {self.logs}")

    def check_alive(self) -> None:
        for name, proc in self.children.items():
            if proc.poll() is not None:
                tail = (self.logs / f"{name}.log").read_text(errors="replace").splitlines()[-15:]
                raise RuntimeError(f"{name} exited with code {proc.returncode}:\n  " + "\n  ".join(tail))

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
        if self.redis:
            self.redis.stop()
        if self.pg:
            self.pg.stop()
        runtime = self.state / "runtime.env"
        if self.redis or self.pg:
            runtime.unlink(missing_ok=True)


def _api_port() -> int:
    url = urlsplit(str(get_settings().public_url))
    return url.port or (443 if url.scheme == "https" else 80)


def _serve(demo_run) -> None:
    from app.cli import fail
    from app.core.logging import configure_logging

    configure_logging(fmt="text", level="WARNING")
    stack = Stack()
    stop_requested = False

    def on_signal(signum, frame):
        nonlocal stop_requested
        stop_requested = True
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_signal)
    try:
        stack.start_services()
        api_url = str(stack.settings.public_url).rstrip("/")
        stack.start_processes(api_port=_api_port())
        typer.echo("· starting API, workers (cpu, io), beat and Flower …")
        stack.wait_ready(api_url)
        typer.echo(f"\nCopydesk is running.\n  API and docs   {api_url}/docs\n"
                   f"  Flower         http://127.0.0.1:{stack.settings.flower_port}  "
                   f"(user {stack.settings.flower_user}; password: FLOWER_PASSWORD or state/secrets/flower-password)\n"
                   f"  logs           {stack.logs}/")
        if demo_run:
            demo_run(stack, api_url)
        typer.echo("\nPress Ctrl-C to stop everything.")
        while True:
            stack.check_alive()
            time.sleep(1)
    except KeyboardInterrupt:
        typer.echo("\nstopping …")
    except RuntimeError as exc:
        stack.stop()
        fail(str(exc), 1)
    finally:
        stack.stop()
        if stop_requested:
            typer.echo("stopped")


def dev() -> None:
    """Start PostgreSQL and Redis (embedded unless configured), migrate, then the API, workers, beat and
    Flower. Ctrl-C stops everything."""
    _serve(None)


def demo() -> None:
    """Like `dev`, then send a sample manuscript through the main workflow and print where to look."""
    _serve(_run_demo)


def _run_demo(stack: Stack, api_url: str) -> None:
    import httpx
    from sqlalchemy import select

    from app.core.db import session_scope
    from app.core.security import hash_password
    from app.demo import sample_manuscript
    from app.models import User

    email = "admin@copydesk.example"
    password = _secret_file(stack.state / "secrets" / "demo-password")
    with session_scope() as session:
        if session.execute(select(User).where(User.email == email)).scalar_one_or_none() is None:
            session.add(User(email=email, role="admin", hashed_password=hash_password(password)))
    with httpx.Client(base_url=api_url, timeout=30) as client:
        token = client.post("/auth/token", data={"username": email, "password": password}).raise_for_status()
        client.headers["Authorization"] = f"Bearer {token.json()['access_token']}"
        files = {"file": ("harbour-library.docx", sample_manuscript(), "application/octet-stream")}
        sub = client.post("/documents", files=files).raise_for_status().json()
        run_id = sub["run"]["id"]
        typer.echo(f"\n· sample manuscript submitted: run {run_id}{' (already sent before)' if sub['duplicate'] else ''}")
        deadline = time.monotonic() + 120
        run = {}
        while time.monotonic() < deadline:
            run = client.get(f"/runs/{run_id}").raise_for_status().json()
            if run["state"] in ("succeeded", "failed", "cancelled"):
                break
            time.sleep(0.3)
        typer.echo(f"· run {run.get('state')} ({run.get('progress', {}).get('text', '')}): "
                   + ", ".join(f"{s['name']}={s['state']}" for s in run.get("steps", [])))
        if run.get("state") != "succeeded":
            typer.echo(f"  error: {run.get('error')}")
            return
        article = client.get(f"/articles/{run['article_id']}").raise_for_status().json()
        typer.echo(f"\nPreview of the converted article, with its images:\n  {article['preview_url']}\n"
                   f"Log in to the API as {email} (password in state/secrets/demo-password).")
