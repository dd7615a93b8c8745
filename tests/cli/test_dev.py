"""`copydesk dev` as a script or a supervisor runs it: real stacks (embedded PostgreSQL and Redis, API,
workers, beat; no Flower: two cores) started from this checkout on state folders of their own."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

import httpx
import psutil
import pytest

from tests.samples import docx
from tests.support import wait_until

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.worker, pytest.mark.slow]
ROOT = Path(__file__).resolve().parents[2]
START = 300  # seconds for a whole stack to come up on two busy cores
GONE = 90  # seconds for every process of a stack to be gone


def clean_env(state: Path, **extra: str) -> dict[str, str]:
    """Only what a user's shell would have, plus the state folder: no setting of the test session.
    (The commands run in the state folder, where there is no .env.)"""
    keep = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "TMPDIR") or k.startswith("COV_")}
    return {**keep, "PYTHONPATH": str(ROOT), "COPYDESK_STATE_DIR": str(state), **extra}


def alive(processes: list[psutil.Process]) -> list[psutil.Process]:
    living = []
    for proc in processes:
        try:
            if proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE:
                living.append(proc)
        except psutil.NoSuchProcess:
            pass
    return living


def listening(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


class DevStack:
    """`copydesk dev --no-flower --port 0 --ready-file …` in a process of its own (or, with
    background_job, as `cmd &` of a non-interactive shell, which starts it with SIGINT ignored)."""

    def __init__(self, state: Path, *, background_job: bool = False) -> None:
        self.state = state
        state.mkdir(exist_ok=True)  # its working directory
        self.ready_file = state / "ready.json"
        self.ready_file.unlink(missing_ok=True)  # left by a stack that was killed
        self.log = state.parent / f"{state.name}.out"
        args = [sys.executable, "-m", "app.cli", "dev", "--no-flower", "--port", "0", "--ready-file", str(self.ready_file)]
        if background_job:
            args = ["sh", "-c", f"{shlex.join(args)} & wait"]
        with open(self.log, "wb") as out:
            self.process = subprocess.Popen(args, env=clean_env(state), cwd=state, stdin=subprocess.DEVNULL,
                                            stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        self.ready: dict = {}
        self.seen: list[psutil.Process] = []

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_ready(self) -> dict:
        def ready():
            if self.process.poll() is not None:
                pytest.fail(f"copydesk dev exited with {self.process.returncode}:\n{self.output()[-3000:]}")
            return self.ready_file.exists() and self.ready_file.read_text().endswith("\n")

        wait_until(ready, timeout=START, interval=0.5, message=f"the stack on {self.state} to be ready")
        self.ready = json.loads(self.ready_file.read_text())
        assert json.loads(self._ready_line()) == self.ready
        self.seen = self.processes()
        return self.ready

    def _ready_line(self) -> str:
        [line] = [line for line in self.output().splitlines() if line.startswith("{")]  # stdout: the one line
        return line

    def processes(self) -> list[psutil.Process]:
        """The supervisor and every process under it."""
        supervisor = psutil.Process(self.ready["pid"])
        return [supervisor, *supervisor.children(recursive=True)]

    def cli(self, *args: str, **env: str) -> subprocess.CompletedProcess:
        """`copydesk ARGS` with nothing but this stack's state folder to find it."""
        return subprocess.run([sys.executable, "-m", "app.cli", *args], env=clean_env(self.state, **env),
                              cwd=self.state, capture_output=True, text=True, timeout=120)

    def wait_gone(self, processes: list[psutil.Process]) -> None:
        wait_until(lambda: not alive(processes), timeout=GONE, interval=0.2,
                   message=f"every process of the stack on {self.state} to be gone")

    def cleanup(self) -> None:
        """Whatever a failed test left running (by the pids it saw), then the shell or supervisor."""
        for proc in alive(self.seen):
            proc.kill()
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(30)


@pytest.fixture
def stacks():
    """DevStack(name, background_job=False): a stack on a new state folder (0755: as root the
    embedded servers run as `nobody`, which must be able to enter it), all cleaned up afterwards."""
    made: list[DevStack] = []
    folders: list[Path] = []

    def start(name: str, *, background_job: bool = False, state: Path | None = None) -> DevStack:
        if state is None:
            folder = Path(tempfile.mkdtemp(prefix=f"copydesk-dev-{name}-"))
            folder.chmod(0o755)
            folders.append(folder)
            state = folder / "state"
        made.append(DevStack(state, background_job=background_job))
        return made[-1]

    yield start
    for stack in made:
        stack.cleanup()
    for folder in folders:
        shutil.rmtree(folder, ignore_errors=True)


def token(api_url: str, stack: DevStack, email: str) -> str:
    created = stack.cli("users", "create", email, "--role", "admin", COPYDESK_PASSWORD="correct horse battery")
    assert created.returncode == 0, created.stderr
    response = httpx.post(f"{api_url}/auth/token", data={"username": email, "password": "correct horse battery"})
    response.raise_for_status()
    return response.json()["access_token"]


def test_two_stacks_on_two_state_folders_share_nothing_and_a_third_on_one_is_refused(stacks):
    a, b = stacks("a"), stacks("b")
    ready_a, ready_b = a.wait_ready(), b.wait_ready()

    # Their own PostgreSQL and Redis (ports and data folders), API and workers.
    assert ready_a["postgres"]["embedded"] and ready_b["postgres"]["embedded"]
    assert ready_a["postgres"]["port"] != ready_b["postgres"]["port"]
    assert ready_a["redis"]["port"] != ready_b["redis"]["port"]
    assert ready_a["api_url"] != ready_b["api_url"]
    for stack, ready in ((a, ready_a), (b, ready_b)):
        postmaster = psutil.Process(ready["postgres"]["pid"])
        assert str(stack.state / "postgres" / "data") in postmaster.cmdline()
        runtime = (stack.state / "runtime.env").read_text()
        assert f":{ready['postgres']['port']}/" in runtime and f":{ready['redis']['port']}/" in runtime
        assert (stack.state / "copydesk.pid").read_text().strip() == str(ready["pid"])
        assert (stack.state / "runtime.env").stat().st_mode & 0o077 == 0  # it holds the servers' passwords

    # The CLI finds each stack through its state folder alone (its runtime.env): the database for
    # `users create`, the API for `runs`.
    token_a = token(ready_a["api_url"], a, "admin@a.example")
    token_b = token(ready_b["api_url"], b, "admin@b.example")
    with httpx.Client(base_url=ready_a["api_url"], headers={"Authorization": f"Bearer {token_a}"}) as client_a:
        sent = client_a.post("/documents", files={"file": ("only-a.docx", docx("Only in A", seed=9101))})
        assert sent.status_code == 201, sent.text
        document_id, run_id = sent.json()["document"]["id"], sent.json()["run"]["id"]
        assert document_id in [d["id"] for d in client_a.get("/documents").json()]
    with httpx.Client(base_url=ready_b["api_url"], headers={"Authorization": f"Bearer {token_b}"}) as client_b:
        assert document_id not in [d["id"] for d in client_b.get("/documents").json()]
        assert client_b.get(f"/documents/{document_id}").status_code == 404
        assert httpx.post(f"{ready_b['api_url']}/auth/token",
                          data={"username": "admin@a.example", "password": "correct horse battery"}).status_code == 401
    runs_a = a.cli("runs", "--json", COPYDESK_TOKEN=token_a)
    runs_b = b.cli("runs", "--json", COPYDESK_TOKEN=token_b)
    assert runs_a.returncode == 0 and runs_b.returncode == 0, (runs_a.stderr, runs_b.stderr)
    assert [r["id"] for r in json.loads(runs_a.stdout)["items"]] == [run_id]
    assert json.loads(runs_b.stdout)["total"] == 0

    # A second stack on A's state folder stops at once and says which one holds it.
    third = subprocess.run([sys.executable, "-m", "app.cli", "dev", "--no-flower", "--port", "0"],
                           env=clean_env(a.state), cwd=a.state, capture_output=True, text=True, timeout=120)
    assert third.returncode == 2, third.stderr
    assert f"in use by another stack (copydesk dev, pid {ready_a['pid']}, started " in third.stderr
    assert httpx.get(f"{ready_a['api_url']}/ready").status_code == 200  # and A did not notice
    assert (a.state / "runtime.env").exists()

    # SIGTERM stops everything each started, its PostgreSQL included, and clears its state files.
    for stack in (a, b):
        os.kill(stack.ready["pid"], signal.SIGTERM)
        stack.wait_gone(stack.seen)
        assert stack.process.wait(30) == 0
        assert not (stack.state / "runtime.env").exists() and not (stack.state / "copydesk.pid").exists()
        assert not stack.ready_file.exists()
        assert not listening(stack.ready["postgres"]["port"]) and not listening(stack.ready["redis"]["port"])


def test_a_supervisor_killed_with_sigkill_leaves_no_process_of_its_stack(stacks):
    stack = stacks("killed")
    ready = stack.wait_ready()
    processes = stack.processes()
    names = {p.name() for p in processes}
    assert {"postgres", "redis-server"} <= names and len(processes) > 6, names
    if os.geteuid() == 0:  # the embedded servers never run as root
        for server in ("postgres", "redis"):
            assert psutil.Process(ready[server]["pid"]).username() == "nobody"

    os.kill(ready["pid"], signal.SIGKILL)
    stack.wait_gone(processes)
    for port in (ready["postgres"]["port"], ready["redis"]["port"], int(ready["api_url"].rsplit(":", 1)[1])):
        assert not listening(port)

    # The lock died with it: a new stack on the same folder starts (and finds the same database).
    again = stacks("again", state=stack.state)
    assert again.wait_ready()["postgres"]["embedded"]
    os.kill(again.ready["pid"], signal.SIGTERM)
    again.wait_gone(again.seen)


def test_sigint_stops_a_stack_started_as_a_background_job(stacks):
    # What makes this case: a non-interactive shell starts `cmd &` with SIGINT ignored.
    probe = subprocess.run(["sh", "-c", "grep SigIgn /proc/self/status & wait"], capture_output=True, text=True)
    assert int(probe.stdout.split()[1], 16) & (1 << (signal.SIGINT - 1))

    stack = stacks("background", background_job=True)
    ready = stack.wait_ready()
    processes = stack.processes()
    os.kill(ready["pid"], signal.SIGINT)
    stack.wait_gone(processes)
    assert stack.process.wait(30) == 0  # the shell's `wait` returned: its job ended
    assert "stopping (SIGINT)" in stack.output()
