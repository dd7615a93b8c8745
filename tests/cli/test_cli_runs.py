"""`copydesk submit / runs / run / approve / login …` as a user runs them: a real `copydesk` process
against the test API and workers, exit codes and output checked."""

from __future__ import annotations

import io
import json
import os
import re
import stat
import subprocess
import sys
import zipfile

import pytest

from tests.conftest import make_user
from tests.samples import docx
from tests.support import free_port, wait_until

pytestmark = [pytest.mark.worker, pytest.mark.postgres, pytest.mark.redis]
TERMINAL = ("succeeded", "failed", "cancelled")


@pytest.fixture
def cli(stack_env, api, editor_token, tmp_path):
    """Run `copydesk ARGS…` in a process of its own, logged in through COPYDESK_TOKEN (unless told
    otherwise), with a config folder of its own."""
    base = {
        **stack_env["env"],
        "COPYDESK_API_URL": api,
        "COPYDESK_TOKEN": editor_token,
        "XDG_CONFIG_HOME": str(tmp_path / "config"),
        "COLUMNS": "160",
    }

    def run(*args: str, env: dict | None = None, drop: tuple = (), timeout: float = 120) -> subprocess.CompletedProcess:
        full = {**base, **(env or {})}
        for name in drop:
            full.pop(name, None)
        return subprocess.run(
            [sys.executable, "-m", "app.cli", *args], env=full, cwd=tmp_path, capture_output=True, text=True,
            timeout=timeout,
        )

    return run


def one_line(text: str) -> str:
    lines = [line for line in text.splitlines() if line.strip()]
    assert len(lines) == 1, f"expected one line, got: {text!r}"
    assert lines[0].startswith("copydesk: ")
    return lines[0]


def broken_docx() -> bytes:
    """Passes the upload checks (a zip with word/document.xml) but cannot be parsed: the run fails."""
    source = zipfile.ZipFile(io.BytesIO(docx("Broken inside", seed=4040)))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as target:
        for item in source.infolist():
            data = b"<w:document this is not XML" if item.filename == "word/document.xml" else source.read(item)
            target.writestr(item, data)
    return out.getvalue()


def test_submit_shows_progress_until_every_run_ends(cli, client, workers, tmp_path):
    first, second = tmp_path / "harbour.docx", tmp_path / "market.docx"
    first.write_bytes(docx("Harbour library reopens", images=2, seed=8101))
    second.write_bytes(docx("Market day moves", seed=8102))

    result = cli("submit", str(first), str(second), "--status", "draft")
    assert result.returncode == 0, result.stderr
    # Progress bars (stderr) for each file, ending complete; then one line per run (stdout).
    assert "harbour.docx" in result.stderr and "market.docx" in result.stderr
    assert result.stderr.count("succeeded") >= 2
    lines = [line for line in result.stdout.splitlines() if line.startswith(("harbour.docx", "market.docx"))]
    assert len(lines) == 2 and all(": succeeded  run " in line for line in lines)
    run_ids = [line.split(" run ")[1].split()[0] for line in lines]
    assert "/preview/" in result.stdout  # where to look
    for run_id in run_ids:
        run = client.get(f"/runs/{run_id}").json()
        assert run["state"] == "succeeded"
        assert run["payload"].get("status") == "draft"


def test_submit_json_for_scripts(cli, client, workers, tmp_path):
    path = tmp_path / "scripted.docx"
    path.write_bytes(docx("Scripted submission", images=1, seed=8201))
    result = cli("submit", str(path), "--json")
    assert result.returncode == 0, result.stderr
    [entry] = json.loads(result.stdout)  # stdout is JSON only
    assert entry["file"] == str(path)
    assert entry["state"] == "succeeded" and entry["duplicate"] is False
    assert entry["progress"]["done"] == entry["progress"]["total"] > 0
    run = client.get(f"/runs/{entry['run_id']}").json()
    assert run["state"] == "succeeded" and run["document_id"] == entry["document_id"]
    assert entry["article_id"] == run["article_id"] and "/preview/" in entry["url"]

    # The same file again: the document is recognised, its run reported, nothing runs twice.
    again = cli("submit", str(path), "--json")
    assert again.returncode == 0, again.stderr
    [entry2] = json.loads(again.stdout)
    assert entry2["duplicate"] is True and entry2["run_id"] == entry["run_id"]


def test_submit_again_with_new_options_updates_the_post(cli, client, workers, tmp_path):
    path = tmp_path / "again.docx"
    path.write_bytes(docx("Sent twice", seed=8251))
    first = cli("submit", str(path), "--status", "draft", "--tags", "one", "--json")
    assert first.returncode == 0, first.stderr
    [entry] = json.loads(first.stdout)

    # The same file with other options: a new run of the same document updates its post.
    second = cli("submit", str(path), "--status", "pending", "--tags", "two,three")
    assert second.returncode == 0, second.stderr
    line, url = [line.strip() for line in second.stdout.splitlines() if line.strip()]
    assert line.startswith("again.docx: submitted before, its post updated with the new options: succeeded  run ")
    run_id = line.split(" run ")[1].split()[0]
    assert run_id != entry["run_id"] and url == entry["url"]  # the same post (here: its preview)
    run = client.get(f"/runs/{run_id}").json()
    assert run["document_id"] == entry["document_id"] and run["payload"] == {"status": "pending", "tags": ["two", "three"]}
    article = client.get(f"/articles/{run['article_id']}").json()
    assert (article["status"], article["tags"]) == ("pending", ["two", "three"])

    # The same options once more: nothing runs, and it says so, with the URL.
    third = cli("submit", str(path), "--tags", "two, three", "--json")
    assert third.returncode == 0, third.stderr
    [again] = json.loads(third.stdout)
    assert again["duplicate"] is True and again["updated"] is False and again["run_id"] == run_id
    assert again["article_id"] == entry["article_id"] and again["url"] == url
    text = cli("submit", str(path))
    assert text.stdout.startswith("again.docx: already submitted, nothing new to apply: succeeded  run ")
    assert url in text.stdout


def test_submit_exits_1_when_a_run_fails(cli, workers, tmp_path):
    good, bad = tmp_path / "good.docx", tmp_path / "bad.docx"
    good.write_bytes(docx("Good one", seed=8301))
    bad.write_bytes(broken_docx())
    result = cli("submit", str(good), str(bad), "--json")
    assert result.returncode == 1, (result.stdout, result.stderr)
    states = {os.path.basename(e["file"]): e for e in json.loads(result.stdout)}
    assert states["good.docx"]["state"] == "succeeded"
    assert states["bad.docx"]["state"] == "failed" and states["bad.docx"]["error_step"] == "parse"
    assert states["bad.docx"]["error"]


def test_a_bad_file_is_one_line_and_a_non_zero_exit(cli, workers, tmp_path):
    text = tmp_path / "notes.txt"
    text.write_text("just some notes, not a manuscript")
    result = cli("submit", str(text))
    assert result.returncode == 1
    line = one_line(result.stderr)
    assert "notes.txt" in line and "not a Word document" in line

    missing = cli("submit", str(tmp_path / "nowhere.docx"))
    assert missing.returncode == 2
    assert one_line(missing.stderr) == f"copydesk: {tmp_path / 'nowhere.docx'}: no such file"


def test_runs_and_run_as_json_and_text(cli, client, workers, tmp_path):
    path = tmp_path / "listed.docx"
    path.write_bytes(docx("Listed and shown", seed=8401))
    [entry] = json.loads(cli("submit", str(path), "--json").stdout)
    run_id = entry["run_id"]

    listed = cli("runs", "--json", "--state", "succeeded", "--workflow", "publish_document", "--limit", "200")
    assert listed.returncode == 0, listed.stderr
    page = json.loads(listed.stdout)
    assert run_id in [r["id"] for r in page["items"]]
    assert {r["state"] for r in page["items"]} == {"succeeded"}

    shown = cli("run", run_id, "--json")
    assert shown.returncode == 0, shown.stderr
    run = json.loads(shown.stdout)
    assert run == client.get(f"/runs/{run_id}").json()
    assert [s["name"] for s in run["steps"]] == ["store", "to_docx", "parse", "transform", "upload_image", "publish"]

    text = cli("run", run_id)
    assert text.returncode == 0, text.stderr
    assert f"run {run_id}" in text.stdout and "state: succeeded" in text.stdout
    for step in ("store", "parse", "transform", "publish"):
        assert step in text.stdout
    table = cli("runs", "--limit", "5")
    assert table.returncode == 0 and "publish_document" in table.stdout

    unknown = cli("run", "00000000-0000-0000-0000-000000000000")
    assert unknown.returncode == 1 and "no run" in one_line(unknown.stderr)
    assert cli("run", "not-a-run").returncode == 2


def test_a_run_that_waits_for_approval_exit_5_then_approve(cli, client, workers, tmp_path):
    path = tmp_path / "gated.docx"
    path.write_bytes(docx("Needs a yes", seed=8501))
    result = cli("submit", str(path), "--workflow", "t_control", "--json")
    assert result.returncode == 5, result.stderr
    [entry] = json.loads(result.stdout)
    assert entry["state"] == "awaiting_approval"

    approved = cli("approve", entry["run_id"])
    assert approved.returncode == 0, approved.stderr
    assert approved.stdout.startswith(f"run {entry['run_id']}: ")

    def ended():
        run = json.loads(cli("run", entry["run_id"], "--json").stdout)
        return run if run["state"] in TERMINAL else None

    assert wait_until(ended, timeout=60, interval=0.5, message="the approved run to end")["state"] == "succeeded"
    again = cli("approve", entry["run_id"])
    assert again.returncode == 1
    assert "not waiting for approval" in one_line(again.stderr)


def test_reject_resume_cancel(cli, client, workers):
    waiting = client.post("/workflows/t_control/runs", json={}).json()["id"]
    wait_until(lambda: client.get(f"/runs/{waiting}").json()["state"] == "awaiting_approval", timeout=60,
               message="the run to wait")
    rejected = cli("reject", waiting, "--reason", "wrong issue", "--json")
    assert rejected.returncode == 0, rejected.stderr
    assert json.loads(rejected.stdout)["state"] == "cancelled"
    assert client.get(f"/runs/{waiting}").json()["error"].endswith(": wrong issue")

    resumed = cli("resume", waiting, "--json")
    assert resumed.returncode == 0, resumed.stderr
    assert json.loads(resumed.stdout)["state"] in ("queued", "running", "awaiting_approval")
    wait_until(lambda: client.get(f"/runs/{waiting}").json()["state"] == "awaiting_approval", timeout=60,
               message="the resumed run to wait again")
    cancelled = cli("cancel", waiting)
    assert cancelled.returncode == 0, cancelled.stderr
    assert "cancelled" in cancelled.stdout
    assert client.get(f"/runs/{waiting}").json()["state"] == "cancelled"


def test_login_keeps_a_private_token_and_errors_have_their_own_codes(cli, api, workers, tmp_path):
    email, password = make_user("editor")
    wrong = cli("login", "--email", email, "--password", "wrong password", drop=("COPYDESK_TOKEN",))
    assert wrong.returncode == 4
    assert one_line(wrong.stderr).startswith("copydesk: wrong e-mail or password")
    assert cli("runs", "--json", drop=("COPYDESK_TOKEN",)).returncode == 4  # not logged in

    done = cli("login", "--email", email, "--password", password, drop=("COPYDESK_TOKEN",))
    assert done.returncode == 0, done.stderr
    saved = tmp_path / "config" / "copydesk" / "credentials.json"
    assert stat.S_IMODE(saved.stat().st_mode) == 0o600
    assert json.loads(saved.read_text())["api_url"] == api
    assert cli("runs", "--json", drop=("COPYDESK_TOKEN",)).returncode == 0
    # The saved token is never sent to another API (here: the same server under another name).
    elsewhere = cli("runs", "--json", "--api-url", api.replace("127.0.0.1", "localhost"), drop=("COPYDESK_TOKEN",))
    assert elsewhere.returncode == 4
    assert one_line(elsewhere.stderr).startswith("copydesk: not logged in to http://localhost:")
    # An API that cannot be reached says so, logged in to it or not.
    nowhere = cli("runs", "--json", "--api-url", f"http://127.0.0.1:{free_port()}", drop=("COPYDESK_TOKEN",))
    assert nowhere.returncode == 3 and "cannot reach the API" in one_line(nowhere.stderr)
    unreachable = cli("runs", "--json", "--api-url", f"http://127.0.0.1:{free_port()}")
    assert unreachable.returncode == 3
    assert "cannot reach the API" in one_line(unreachable.stderr)
    expired = cli("runs", "--json", env={"COPYDESK_TOKEN": "not-a-token"})
    assert expired.returncode == 4

    assert cli("logout").returncode == 0
    assert not saved.exists()
    assert cli("runs", "--json", drop=("COPYDESK_TOKEN",)).returncode == 4


def test_runs_watch_refreshes_until_ctrl_c(stack_env, api, editor_token, client, workers, tmp_path):
    import signal
    import threading

    # TTY_COMPATIBLE: rich redraws the table on each refresh even though stdout is a pipe, so each
    # refresh can be seen as it comes (on a plain pipe only the last one is printed, at exit).
    env = {**stack_env["env"], "COPYDESK_API_URL": api, "COPYDESK_TOKEN": editor_token, "COLUMNS": "160",
           "TTY_COMPATIBLE": "1", "TERM": "xterm"}
    watcher = subprocess.Popen(
        [sys.executable, "-m", "app.cli", "runs", "--watch", "--limit", "3"], env=env, cwd=tmp_path,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    shown: list[str] = []
    reader = threading.Thread(target=lambda: shown.extend(iter(watcher.stdout.readline, "")), daemon=True)
    reader.start()
    try:
        wait_until(lambda: "workflow" in "".join(shown), timeout=60, message="the watcher to draw its first table")
        run_id = client.post("/workflows/t_fanout/runs", json={"count": 0}).json()["id"]
        wait_until(lambda: run_id in "".join(shown), timeout=60, message=f"a refresh to show the new run {run_id}")
    finally:
        watcher.send_signal(signal.SIGINT)
        watcher.wait(30)
        reader.join(10)
    assert watcher.returncode == 0, watcher.stderr.read()
    assert "--watch and --json" in one_line(
        subprocess.run([sys.executable, "-m", "app.cli", "runs", "--watch", "--json"], env=env,
                       capture_output=True, text=True, timeout=60).stderr
    )


def test_runs_fit_80_columns_with_a_title(cli, workers, tmp_path):
    path = tmp_path / "narrow.docx"
    path.write_bytes(docx("Narrow terminals deserve titles too", seed=8501))
    [entry] = json.loads(cli("submit", str(path), "--json").stdout)
    assert entry["state"] == "succeeded"

    listed = cli("runs", "--limit", "5", env={"COLUMNS": "80"})
    assert listed.returncode == 0, listed.stderr
    lines = listed.stdout.splitlines()
    assert max(len(line.rstrip()) for line in lines) <= 80, listed.stdout
    assert lines[1].split() == ["run", "title", "state", "done"]
    [row] = [line for line in lines if line.startswith(entry["run_id"])]
    progress = entry["progress"]
    assert re.search(rf"  Narrow terminals .*  succeeded  {progress['done']}/{progress['total']}\s*$", row), row

    wide = cli("runs", "--limit", "5", env={"COLUMNS": "160"}).stdout
    [row] = [line for line in wide.splitlines() if line.startswith(entry["run_id"])]
    assert "Narrow terminals deserve titles too" in row and "publish_document" in row

    page = json.loads(cli("runs", "--json", "--limit", "5").stdout)
    [item] = [r for r in page["items"] if r["id"] == entry["run_id"]]
    assert item["title"] == "Narrow terminals deserve titles too" and item["filename"] == "narrow.docx"
