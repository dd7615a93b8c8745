"""`copydesk mailbox …` against the real Dovecot, as an operator types it."""

from __future__ import annotations

import subprocess
import sys
import uuid

import pytest

from tests.fixtures.dovecot import docx_message
from tests.support import free_port

pytestmark = [pytest.mark.imap, pytest.mark.postgres, pytest.mark.redis, pytest.mark.worker]


def copydesk(env: dict, *args: str, extra_env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", "from app.cli import main; main()", *args],
        env={**env, **(extra_env or {})}, capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL,
    )  # fmt: skip


def test_add_list_test_and_poll_a_mailbox(mail_stack, dovecot, imap_user, admin_token, admin_client, tmp_path):
    env = mail_stack["env"]
    name = f"cli-{uuid.uuid4().hex[:6]}"
    dovecot.deliver(imap_user, docx_message("From the command line"))
    added = copydesk(
        env, "mailbox", "add", name, "--host", dovecot.host, "--port", str(dovecot.imaps_port), "--user", imap_user,
        "--ca-file", dovecot.ca_file, "--allowed-sender", "@example.org", "--disabled",
        extra_env={"COPYDESK_IMAP_PASSWORD": dovecot.users[imap_user]},
    )  # fmt: skip
    assert added.returncode == 0, added.stderr
    assert added.stdout.strip() == f"added mailbox {name}: {imap_user} on {dovecot.host}:{dovecot.imaps_port} (imaps)"

    listed = copydesk(env, "mailbox", "list")
    assert listed.returncode == 0, listed.stderr
    line = next(line for line in listed.stdout.splitlines() if line.startswith(name))
    assert "disabled" in line and "last poll never" in line and line.endswith("ok")
    assert any(line.startswith("default\t") for line in listed.stdout.splitlines())  # from IMAP_HOST/USER/PASSWORD

    checked = copydesk(env, "mailbox", "test", name)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert f"{imap_user} on {dovecot.host}:{dovecot.imaps_port} (imaps)" in checked.stdout
    assert "login: ok" in checked.stdout
    assert "INBOX: 1 messages, 1 unseen" in checked.stdout and "Processed: 0 messages" in checked.stdout
    assert "OK in" in checked.stdout
    assert dovecot.users[imap_user] not in checked.stdout + checked.stderr

    # `poll` asks the API: a worker polls, with the workers' settings and storage, whatever this
    # process has (here: no database it could reach, and a storage folder of its own)
    cli_storage = tmp_path / "cli-storage"
    polled = copydesk(env, "mailbox", "poll", name, extra_env={
        "COPYDESK_TOKEN": admin_token, "XDG_CONFIG_HOME": str(tmp_path),
        "DATABASE_URL": "postgresql://nobody@127.0.0.1:9/nowhere", "STORAGE_DIR": str(cli_storage),
    })  # fmt: skip
    assert polled.returncode == 0, polled.stderr
    assert polled.stdout.startswith(f"{name}: 1 new message(s), 1 run(s) started")
    [document] = admin_client.get("/documents", params={"source": name}).json()
    assert admin_client.get(f"/documents/{document['id']}/original").status_code == 200
    assert not cli_storage.exists()

    default = copydesk(env, "mailbox", "test", "default")
    assert default.returncode == 0, default.stdout + default.stderr
    assert "(plain)" in default.stdout and "login: ok" in default.stdout


def test_failures_are_one_clear_line_and_exit_1(mail_stack, dovecot, imap_user, admin_token, editor_token, tmp_path):
    env = mail_stack["env"]
    name = f"cli-{uuid.uuid4().hex[:6]}"
    wrong = "Wr0ng-" + uuid.uuid4().hex[:10]
    added = copydesk(
        env, "mailbox", "add", name, "--host", dovecot.host, "--port", str(dovecot.imaps_port), "--user", imap_user,
        "--ca-file", dovecot.ca_file, "--password", wrong, "--disabled",
    )  # fmt: skip
    assert added.returncode == 0, added.stderr
    assert "warning: no allowed senders" in added.stdout

    checked = copydesk(env, "mailbox", "test", name)
    assert checked.returncode == 1
    refused = f"error: {dovecot.host}:{dovecot.imaps_port} refused the user name or password of {imap_user}"
    assert refused in checked.stdout
    assert "NOT OK" in checked.stdout and wrong not in checked.stdout + checked.stderr

    as_admin = {"COPYDESK_TOKEN": admin_token, "XDG_CONFIG_HOME": str(tmp_path)}
    polled = copydesk(env, "mailbox", "poll", name, extra_env=as_admin)
    assert polled.returncode == 1
    assert polled.stderr.startswith(f"copydesk: {name}: {refused}".replace("error: ", ""))
    assert wrong not in polled.stdout + polled.stderr
    unknown = copydesk(env, "mailbox", "poll", "no-such-box", extra_env=as_admin)
    assert (unknown.returncode, unknown.stderr.strip()) == (1, "copydesk: no mailbox source 'no-such-box'")
    as_editor = copydesk(env, "mailbox", "poll", name, extra_env={**as_admin, "COPYDESK_TOKEN": editor_token})
    assert as_editor.returncode == 4 and "admin" in as_editor.stderr
    nobody = copydesk(env, "mailbox", "poll", name, "--api-url", f"http://127.0.0.1:{free_port()}", extra_env=as_admin)
    assert nobody.returncode == 3 and nobody.stderr.startswith("copydesk: cannot reach the API")

    missing = copydesk(env, "mailbox", "test", "no-such-box")
    assert missing.returncode == 1
    assert missing.stderr.startswith("copydesk: no mailbox source 'no-such-box' (known: ")
    assert len(missing.stderr.strip().splitlines()) == 1

    plain = copydesk(
        env, "mailbox", "add", "x" + name, "--host", "h", "--user", "u", "--password", "p", "--tls", "plain"
    )
    assert plain.returncode == 2
    assert plain.stderr.strip().startswith("copydesk: plain IMAP would send the mailbox password unencrypted")
    again = copydesk(env, "mailbox", "add", name, "--host", "h", "--user", "u", "--password", "p")
    assert again.returncode == 1 and "already exists (use --update to change it)" in again.stderr
