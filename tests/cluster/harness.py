"""Copydesk on several hosts on one machine: Linux network namespaces joined by a bridge.

Hosts, each a network namespace with one address on a private /24:

    data   PostgreSQL 15 (Debian's binaries, run as the postgres user, its own data folder) and Redis
    api    the API (uvicorn) and beat (the sweeper's clock)
    w1 w2  one Celery worker each (queues cpu, io and one named after the host), threads pool
    svc    the OSS and OpenAI-compatible test servers (tests/servers/)
    probe  the test's own client (tests/cluster/probe.py): HTTP, SQL, Redis from inside the cluster

Each host's veth pair ends in a bridge that lives in a namespace of its own (the switch), so the
root namespace gets no interface and no route into the cluster — and must never send anything to
a cluster address (it would follow the default route off the machine): the test process talks to
the cluster only through the probe's pipes. Links are cut by an nftables bridge table in the switch
(packets vanish on the wire, as in a real partition: no reset, no "unreachable") and healed by
removing its rules.

Names are unique per pytest session: namespaces `cdc-<pytest pid>-<host>`, subnet 10.77.<n>.0/24
(n from the pid; the namespaces alone already keep sessions apart), work folder
/tmp/copydesk-cluster-<pid>-*. A session removes the namespaces, processes and folders of earlier
sessions whose pytest process is gone (a crash, SIGKILL) before it starts, and its own at the end.
"""

from __future__ import annotations

import itertools
import json
import os
import pwd
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import Future
from pathlib import Path

from tests.support import wait_until

ROOT = Path(__file__).resolve().parents[2]
PREFIX = "cdc"
PG_BIN = Path("/usr/lib/postgresql/15/bin")
FAKETIME_LIB = Path("/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1")
HOSTS = {"data": 10, "api": 20, "w1": 31, "w2": 32, "svc": 40, "probe": 50}
WORKERS = ("w1", "w2")
PG_PORT, REDIS_PORT, API_PORT, OSS_PORT, LLM_PORT = 5432, 6379, 8000, 9000, 8089
OSS_KEYS = ("cluster-access-key-id", "cluster-access-key-secret")
LLM_KEY = "sk-test-copydesk-cluster"

# The cluster's settings: the connection settings keep their defaults (what the tests prove); the
# heartbeat timeout is the production one, longer than a 30 s cut; the sweeper is fast.
SETTINGS = {
    "STEP_HEARTBEAT_INTERVAL": "2",
    "STEP_HEARTBEAT_TIMEOUT": "60",
    "RUN_STUCK_AFTER": "20",
    "SWEEP_INTERVAL": "5",
    "RUN_MAX_SWEEPS": "10",
    "CELERY_VISIBILITY_TIMEOUT": "3600",
    "INLINE_RETRY_MAX_WAIT": "2",
    "OPENAI_TIMEOUT": "20",
}


def setting(name: str) -> float:
    """A numeric setting as every Copydesk process of the cluster has it: the cluster's value (SETTINGS),
    else Copydesk's default. The tests derive their deadlines from these."""
    from app.core.config import Settings

    field = next(f for f in Settings.model_fields.values() if f.alias == name)
    return float(SETTINGS.get(name, field.default))


def run(args: list, *, timeout: float = 60, check: bool = True, input: str | None = None):
    result = subprocess.run([str(a) for a in args], capture_output=True, text=True, timeout=timeout, input=input)
    if check and result.returncode != 0:
        raise RuntimeError(f"{' '.join(map(str, args))} exited {result.returncode}: {result.stderr.strip()}")
    return result


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _namespaces() -> list[str]:
    return [line.split()[0] for line in run(["ip", "netns", "list"]).stdout.splitlines() if line.strip()]


def delete_namespace(name: str) -> None:
    """Kill what still runs in the namespace (only cluster processes run there), then delete it."""
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        pids = run(["ip", "netns", "pids", name], check=False).stdout.split()
        if not pids:
            break
        for pid in pids:
            try:
                os.kill(int(pid), signal.SIGKILL)
            except ProcessLookupError:
                pass
        time.sleep(0.1)
    run(["ip", "netns", "delete", name], check=False)


def remove_leftovers() -> None:
    """Namespaces and work folders of sessions whose pytest process is gone (or whose pid this
    process now has: it cannot have made them yet)."""
    def orphaned(pid: str) -> bool:
        return int(pid) == os.getpid() or not _pid_alive(int(pid))

    for name in _namespaces():
        match = re.fullmatch(rf"{PREFIX}-(\d+)-\w+", name)
        if match and orphaned(match.group(1)):
            delete_namespace(name)
    for path in Path(tempfile.gettempdir()).glob("copydesk-cluster-*"):
        match = re.match(r"copydesk-cluster-(\d+)-", path.name)
        if match and orphaned(match.group(1)):
            shutil.rmtree(path, ignore_errors=True)


class Host:
    def __init__(self, name: str, ns: str, addr: str) -> None:
        self.name, self.ns, self.addr = name, ns, addr

    def command(self, args: list) -> list[str]:
        return ["ip", "netns", "exec", self.ns, *map(str, args)]

    def run(self, args: list, **kwargs):
        return run(self.command(args), **kwargs)

    def can_connect(self, addr: str, port: int) -> bool:
        return self.run(["timeout", "2", "bash", "-c", f"echo > /dev/tcp/{addr}/{port}"], check=False).returncode == 0

    def __repr__(self) -> str:
        return f"<host {self.name} {self.addr}>"


class Process:
    """A long-running process on a host; its output goes to logs/<name>.log (appended on restart)."""

    def __init__(self, host: Host, name: str, args: list, env: dict[str, str], log_dir: Path) -> None:
        self.host, self.name, self.args, self.env = host, name, [str(a) for a in args], env
        self.log_path = log_dir / f"{name}.log"
        self.popen: subprocess.Popen | None = None
        self.log_offset = 0  # where this start's output begins in the log
        self.overrides: dict[str, str] = {}  # settings beyond the cluster's (a worker started with others)

    def start(self) -> Process:
        self.log_offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        with open(self.log_path, "ab") as log:
            # `ip netns exec` execs the command: the pid is the process's own
            self.popen = subprocess.Popen(
                self.host.command(self.args), cwd=ROOT, env=self.env, stdin=subprocess.DEVNULL,
                stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            )
        return self

    @property
    def pid(self) -> int:
        return self.popen.pid

    @property
    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def mark(self) -> int:
        """A position in the log: `log(since=mark)` is what was written after it."""
        return self.log_path.stat().st_size if self.log_path.exists() else 0

    def log(self, since: int | None = None) -> str:
        """What this start of the process has written (since `since`)."""
        if not self.log_path.exists():
            return ""
        with open(self.log_path, "rb") as fh:
            fh.seek(self.log_offset if since is None else since)
            return fh.read().decode(errors="replace")

    def wait_log(self, text: str | re.Pattern, timeout: float, message: str | None = None,
                 since: int | None = None) -> str:
        """Wait until the log (of this start, or since `since`) contains `text`; that log."""
        def seen():
            log = self.log(since)
            found = text.search(log) if isinstance(text, re.Pattern) else text in log
            if not found and not self.alive:
                raise RuntimeError(f"{self.name} exited ({self.popen.returncode}):\n{log[-3000:]}")
            return log if found else None

        return wait_until(seen, timeout=timeout, interval=0.2, message=message or f"{self.name} to log {text!r}")

    def send_signal(self, sig: int) -> None:
        if self.alive:
            os.kill(self.pid, sig)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30) -> int | None:
        """Send `sig` and wait for the exit; SIGKILL (the whole process group) after `timeout`."""
        if self.popen is None:
            return None
        if self.alive:
            self.send_signal(sig)
            try:
                return self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()
        return self.popen.poll()

    def kill(self) -> None:
        if self.alive:
            try:
                os.killpg(self.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.popen.wait(10)


class ProbeError(Exception):
    pass


class DoneTwice(AssertionError):
    """A step or item body ran more than once."""


class Probe:
    """The test process's end of tests/cluster/probe.py: `call(fn, *args)` runs fn inside the probe
    host and returns its JSON answer; `submit` returns a Future (several may run at once)."""

    def __init__(self, host: Host, env: dict[str, str], log_dir: Path) -> None:
        self._ids = itertools.count(1)
        self._pending: dict[int, Future] = {0: Future()}
        self._lock = threading.Lock()
        with open(log_dir / "probe.log", "ab") as log:
            self.popen = subprocess.Popen(
                host.command([sys.executable, "-m", "tests.cluster.probe"]), cwd=ROOT, env=env,
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log, text=True, bufsize=1,
                start_new_session=True,
            )
        threading.Thread(target=self._read, name="cluster-probe", daemon=True).start()
        self._pending_ready = self._pending[0]
        self._pending_ready.result(timeout=60)

    def _read(self) -> None:
        for line in self.popen.stdout:
            answer = json.loads(line)
            with self._lock:
                future = self._pending.pop(answer["id"], None)
            if future is None:
                continue
            if "error" in answer:
                future.set_exception(ProbeError(f"{answer['error']}\n{answer.get('trace', '')}"))
            else:
                future.set_result(answer["ok"])
        with self._lock:  # the probe exited: nobody will answer
            pending, self._pending = list(self._pending.values()), {}
        for future in pending:
            future.set_exception(ProbeError("the probe process exited"))

    def submit(self, fn: str, *args, **kwargs) -> Future:
        future: Future = Future()
        with self._lock:
            request_id = next(self._ids)
            self._pending[request_id] = future
            self.popen.stdin.write(json.dumps({"id": request_id, "fn": fn, "args": args, "kwargs": kwargs}) + "\n")
            self.popen.stdin.flush()
        return future

    def call(self, fn: str, *args, timeout: float = 120, **kwargs):
        return self.submit(fn, *args, **kwargs).result(timeout=timeout)

    def sql(self, query: str, params=None) -> list[list]:
        return self.call("sql", query, params)

    def close(self) -> None:
        if self.popen.poll() is None:
            self.popen.stdin.close()
            try:
                self.popen.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.popen.pid, signal.SIGKILL)
                self.popen.wait(10)


class Cut:
    def __init__(self, cluster: Cluster, rules: list[str], label: str) -> None:
        self.cluster, self.rules, self.label = cluster, rules, label

    def heal(self) -> None:
        if self in self.cluster.cuts:
            self.cluster.cuts.remove(self)
            self.cluster.apply_cuts()

    def __enter__(self) -> Cut:
        return self

    def __exit__(self, *exc) -> None:
        self.heal()


class Cluster:
    def __init__(self) -> None:
        remove_leftovers()  # first: this session's names are free after it
        pid = os.getpid()
        self.prefix = f"{PREFIX}-{pid}"
        octet = pid % 200 + 20
        self.subnet = f"10.77.{octet}.0/24"
        self.switch = f"{self.prefix}-sw"
        self.hosts = {name: Host(name, f"{self.prefix}-{name}", f"10.77.{octet}.{n}") for name, n in HOSTS.items()}
        self.dir = Path(tempfile.mkdtemp(prefix=f"copydesk-cluster-{pid}-"))
        self.dir.chmod(0o755)  # the postgres user goes through it to its data folder
        self.logs = self.dir / "logs"
        self.logs.mkdir()
        self.processes: dict[str, Process] = {}
        self.cuts: list[Cut] = []
        self.probe: Probe | None = None
        self.token: str | None = None
        self.env = self._environment()

    def __getitem__(self, name: str) -> Host:
        return self.hosts[name]

    # --- the settings every Copydesk process on the cluster gets ---------------------------------

    def _environment(self) -> dict[str, str]:
        from cryptography.fernet import Fernet

        data, svc, api = self["data"].addr, self["svc"].addr, self["api"].addr
        return {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": os.environ.get("HOME", "/root"),
            "LANG": "C.UTF-8",
            "PYTHONPATH": str(ROOT),
            "PYTHONUNBUFFERED": "1",
            "COPYDESK_ENV_FILE": "",
            "COPYDESK_ENV": "test",
            "COPYDESK_STATE_DIR": str(self.dir / "state"),
            "DATABASE_URL": f"postgresql://postgres@{data}:{PG_PORT}/copydesk",
            "REDIS_URL": f"redis://{data}:{REDIS_PORT}/0",
            "PUBLIC_URL": f"http://{api}:{API_PORT}",
            "JWT_SECRET_KEY": secrets.token_urlsafe(40),
            "ENCRYPTION_KEY": Fernet.generate_key().decode(),
            "OSS_ENDPOINT": f"http://{svc}:{OSS_PORT}",
            "OSS_BUCKET": "copydesk",
            "OSS_ACCESS_KEY_ID": OSS_KEYS[0],
            "OSS_ACCESS_KEY_SECRET": OSS_KEYS[1],
            "OSS_REGION": "cn-test",
            "OPENAI_API_KEY": LLM_KEY,
            "OPENAI_BASE_URL": f"http://{svc}:{LLM_PORT}/v1",
            "STEP_MODULES": "tests.workflows.kinds",
            "WORKFLOWS_DIR": str(ROOT / "tests" / "workflows" / "definitions"),
            "LOG_FORMAT": "json",
            "LOG_LEVEL": "INFO",
            **SETTINGS,
        }

    # --- start and stop -----------------------------------------------------------------------

    def start(self) -> None:
        self._network()
        self._start_data()
        self._start_servers()
        self.probe = Probe(self["probe"], self.env, self.logs)
        self.probe.call("migrate", timeout=180)
        email, password = self.probe.call("make_user", "editor")
        self._start_api()
        answer = self.probe.call("http", "POST", "/auth/token", data={"username": email, "password": password})
        assert answer["status"] == 200, answer
        self.token = answer["body"]["access_token"]
        for name in WORKERS:
            self.start_worker(name, wait=False)
        for name in WORKERS:
            self.processes[name].wait_log("ready.", timeout=120, message=f"worker {name} to start")

    def _network(self) -> None:
        run(["ip", "netns", "add", self.switch])
        run(["ip", "-n", self.switch, "link", "set", "lo", "up"])
        run(["ip", "-n", self.switch, "link", "add", "br0", "type", "bridge"])
        run(["ip", "-n", self.switch, "link", "set", "br0", "up"])
        for host in self.hosts.values():
            run(["ip", "netns", "add", host.ns])
            # Both ends are created in their namespaces: nothing appears in the root namespace.
            run(["ip", "link", "add", "eth0", "netns", host.ns, "type", "veth", "peer", "name", f"v-{host.name}",
                 "netns", self.switch])
            run(["ip", "-n", self.switch, "link", "set", f"v-{host.name}", "master", "br0", "up"])
            run(["ip", "-n", host.ns, "link", "set", "lo", "up"])
            run(["ip", "-n", host.ns, "addr", "add", f"{host.addr}/24", "dev", "eth0"])
            run(["ip", "-n", host.ns, "link", "set", "eth0", "up"])
        self.apply_cuts()

    def _start_data(self) -> None:
        data = self["data"]
        pg = self.dir / "pg"
        pg.mkdir(mode=0o700)
        postgres = pwd.getpwnam("postgres")
        os.chown(pg, postgres.pw_uid, postgres.pw_gid)
        as_postgres = ["setpriv", "--reuid=postgres", "--regid=postgres", "--init-groups"]
        run([*as_postgres, PG_BIN / "initdb", "-D", pg / "data", "-U", "postgres", "--auth-local=trust",
             "--auth-host=trust", "-E", "UTF8", "--locale=C.UTF-8", "-N"], timeout=120)
        with open(pg / "data" / "pg_hba.conf", "a") as hba:
            hba.write(f"host all all {self.subnet} trust\n")
        settings = {
            "listen_addresses": data.addr, "port": PG_PORT, "unix_socket_directories": pg,
            "fsync": "off", "synchronous_commit": "off", "full_page_writes": "off", "max_connections": 300,
            # The server side of a cut: the backend of a vanished client (holding a run's row lock,
            # maybe) ends within seconds, as README's "Running it in production" asks.
            "tcp_keepalives_idle": 5, "tcp_keepalives_interval": 1, "tcp_keepalives_count": 5,
            "tcp_user_timeout": 10000,
        }
        args = [*as_postgres, PG_BIN / "postgres", "-D", pg / "data"]
        for key, value in settings.items():
            args += ["-c", f"{key}={value}"]
        self._start(Process(data, "postgres", args, {"PATH": os.environ.get("PATH", ""), "LANG": "C.UTF-8"},
                            self.logs))
        wait_until(lambda: data.run([PG_BIN / "pg_isready", "-q", "-h", pg, "-p", PG_PORT], check=False).returncode == 0,
                   timeout=60, interval=0.2, message="PostgreSQL on the data host")
        data.run([PG_BIN / "psql", "-h", pg, "-p", PG_PORT, "-U", "postgres", "-c", "CREATE DATABASE copydesk"])
        redis_dir = self.dir / "redis"
        redis_dir.mkdir()
        self._start(Process(data, "redis", [
            "redis-server", "--bind", data.addr, "--port", REDIS_PORT, "--protected-mode", "no", "--save", "",
            "--appendonly", "no", "--dir", redis_dir,
        ], {"PATH": os.environ.get("PATH", "")}, self.logs))
        self.wait_port(data, REDIS_PORT)

    def _start_servers(self) -> None:
        svc = self["svc"]
        oss_root = self.dir / "oss"
        oss_root.mkdir()
        self._start(Process(svc, "oss", [
            sys.executable, "-m", "tests.servers.oss_server", "--root", oss_root, "--host", svc.addr,
            "--port", OSS_PORT, "--ak", OSS_KEYS[0], "--sk", OSS_KEYS[1], "--bucket", "copydesk",
        ], self.env, self.logs))
        self._start(Process(svc, "llm", [
            sys.executable, "-m", "tests.servers.openai_server", "--host", svc.addr, "--port", LLM_PORT,
            "--key", LLM_KEY,
        ], self.env, self.logs))
        self.wait_port(svc, OSS_PORT)
        self.wait_port(svc, LLM_PORT)

    def _start_api(self) -> None:
        api = self["api"]
        self._start(Process(api, "api", [
            sys.executable, "-m", "uvicorn", "app.api.main:create_app", "--factory", "--host", api.addr,
            "--port", API_PORT, "--log-level", "warning",
        ], self.env, self.logs))
        self.wait_port(api, API_PORT, timeout=90)
        self._start(Process(api, "beat", [
            sys.executable, "-m", "celery", "-A", "app.tasks", "beat", "-s", self.dir / "beat-schedule",
            "--loglevel=INFO",
        ], self.env, self.logs))

    def _start(self, process: Process) -> Process:
        self.processes[process.name] = process
        return process.start()

    def wait_port(self, host: Host, port: int, timeout: float = 60) -> None:
        """Wait until `host` listens on `port` (checked from the probe host, inside the cluster)."""
        wait_until(lambda: self["probe"].can_connect(host.addr, port), timeout=timeout, interval=0.2,
                   message=f"{host.name} to listen on {port}")

    def close(self) -> None:
        """Stop everything, delete the namespaces and the work folder (the logs stay until the next
        session's leftover sweep)."""
        try:
            if self.probe is not None:
                self.probe.close()
            for process in reversed(list(self.processes.values())):
                # postgres: SIGINT is its fast shutdown; the rest stop on SIGTERM
                process.stop(signal.SIGINT if process.name == "postgres" else signal.SIGTERM, timeout=20)
        finally:
            for name in [*(h.ns for h in self.hosts.values()), self.switch]:
                if name in _namespaces():
                    delete_namespace(name)
            for part in ("pg", "redis", "oss", "state"):
                shutil.rmtree(self.dir / part, ignore_errors=True)

    # --- workers --------------------------------------------------------------------------------

    def start_worker(self, name: str, *, env: dict[str, str] | None = None, concurrency: int = 3,
                     queues: str | None = None, wait: bool = True) -> Process:
        """(Re)start the worker of host `name` with extra settings `env`; it consumes cpu, io and
        a queue named after the host (to send a message to that host alone), or `queues`."""
        old = self.processes.get(name)
        if old is not None and old.alive:
            old.stop()
        process = Process(self[name], name, [
            sys.executable, "-m", "celery", "-A", "tests.celery_worker", "worker", "-Q", queues or f"cpu,io,{name}",
            "-P", "threads", "-c", concurrency, "-n", f"{name}@{self.prefix}", "--without-mingle", "--without-gossip",
            "-E", "--loglevel=INFO",
        ], {**self.env, **(env or {})}, self.logs)
        process.overrides = {**(env or {}), **({"queues": queues} if queues else {})}
        self._start(process)
        if wait:
            process.wait_log("ready.", timeout=120, message=f"worker {name} to start")
        return process

    def worker(self, name: str) -> Process:
        return self.processes[name]

    def reset_workers(self) -> None:
        """Every worker running, with the cluster's own settings (after a test changed them)."""
        restart = [n for n in WORKERS if not self.processes[n].alive or self.processes[n].overrides]
        for name in restart:
            self.start_worker(name, wait=False)
        for name in restart:
            self.processes[name].wait_log("ready.", timeout=120, message=f"worker {name} to start")

    # --- reading the cluster's state (through the probe) -------------------------------------------

    def run_states(self, run_ids: list[str]) -> dict[str, str]:
        rows = self.probe.sql("SELECT id::text, state FROM runs WHERE id = ANY(%s::uuid[])", [run_ids])
        return dict(rows)

    def wait_runs(self, run_ids: list[str], timeout: float) -> dict[str, str]:
        """Wait until every run has ended; their states."""
        def ended():
            states = self.run_states(run_ids)
            done = len(states) == len(run_ids) and all(s in ("succeeded", "failed", "cancelled")
                                                       for s in states.values())
            return states if done else None

        return wait_until(ended, timeout=timeout, interval=0.5, message=f"runs {run_ids} to end")

    def running(self, run_ids: list[str]) -> list[tuple[str, str, int | None]]:
        """(worker host, step, item) of each step or item of the runs that is running now."""
        rows = self.probe.sql(
            "SELECT s.claimed_by, s.name, NULL FROM steps s WHERE s.run_id = ANY(%(ids)s::uuid[])"
            " AND s.state = 'running' AND s.items_total IS NULL"
            " UNION ALL SELECT i.claimed_by, s.name, i.index FROM step_items i JOIN steps s ON s.id = i.step_id"
            " WHERE s.run_id = ANY(%(ids)s::uuid[]) AND i.state = 'running'", {"ids": run_ids})
        return [(self.worker_of(claimed_by), name, index) for claimed_by, name, index in rows]

    def running_items(self, run_ids: list[str]) -> list[tuple[str | None, str, int]]:
        """(worker host, run id, index) of each item of the runs that is running now."""
        rows = self.probe.sql(
            "SELECT i.claimed_by, s.run_id::text, i.index FROM step_items i JOIN steps s ON s.id = i.step_id"
            " WHERE s.run_id = ANY(%s::uuid[]) AND i.state = 'running'", [run_ids])
        return [(self.worker_of(claimed_by), run_id, index) for claimed_by, run_id, index in rows]

    def done_again(self, run_ids: list[str]) -> dict[str, int]:
        """The step and item bodies of the runs that started more than once (tests/workflows/kinds.py
        counts them in Redis), with their counts."""
        return {f"{run_id[:8]}:{label}": n for run_id in run_ids
                for label, n in self.probe.call("executions", run_id).items() if n != 1}

    def assert_done_once(self, run_ids: list[str]) -> None:
        again = self.done_again(run_ids)
        if again:
            raise DoneTwice(f"bodies started more than once: {again}")

    def worker_of(self, claimed_by: str | None) -> str | None:
        """The worker host whose process made a claim (`<task id>@<hostname>:<pid>`)."""
        pid = int(claimed_by.rsplit(":", 1)[1]) if claimed_by else None
        return next((n for n in WORKERS if n in self.processes and self.processes[n].pid == pid), None)

    # --- links ----------------------------------------------------------------------------------

    def cut(self, a: str, b: str | None = None, port: int | None = None) -> Cut:
        """Drop the packets between hosts `a` and `b` (to and from `port` on `b` if given), or all of
        `a`'s packets when `b` is None. Heal with `.heal()` or as a context manager."""
        x = self[a].addr
        if b is None:
            rules, label = [f"ip saddr {x} drop", f"ip daddr {x} drop"], f"{a} isolated"
        else:
            y = self[b].addr
            if port is None:
                rules = [f"ip saddr {x} ip daddr {y} drop", f"ip saddr {y} ip daddr {x} drop"]
            else:
                rules = [f"ip saddr {x} ip daddr {y} tcp dport {port} drop",
                         f"ip saddr {y} ip daddr {x} tcp sport {port} drop"]
            label = f"{a} cut from {b}" + (f":{port}" if port else "")
        cut = Cut(self, rules, label)
        self.cuts.append(cut)
        self.apply_cuts()
        return cut

    def heal_all(self) -> None:
        self.cuts.clear()
        self.apply_cuts()

    def apply_cuts(self) -> None:
        """Write the switch's rules in one nft transaction (the table is replaced whole)."""
        rules = "\n".join(f"    {rule}" for cut in self.cuts for rule in cut.rules)
        script = (
            "add table bridge copydesk_cuts\ndelete table bridge copydesk_cuts\n"
            "table bridge copydesk_cuts {\n  chain forward_cuts {\n"
            "    type filter hook forward priority 0; policy accept;\n"
            f"{rules}\n  }}\n}}\n"
        )
        run(["ip", "netns", "exec", self.switch, "nft", "-f", "-"], input=script)
