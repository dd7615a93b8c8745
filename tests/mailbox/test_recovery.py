"""What goes wrong: a worker killed at the worst moments, a wrong password, an unreachable server."""

from __future__ import annotations

import socket
from datetime import timedelta

import pytest
import redis

from tests.fixtures.dovecot import docx_message
from tests.fixtures.stack import WorkerProcess
from tests.mailbox.faults import KEY
from tests.mailbox.helpers import documents, drive, folder_counts, messages, poll_in_worker, runs, settled, source
from tests.support import wait_broker_drained

pytestmark = [pytest.mark.imap, pytest.mark.worker, pytest.mark.postgres, pytest.mark.redis]


@pytest.fixture
def r(mail_stack):
    client = redis.Redis.from_url(mail_stack["env"]["REDIS_URL"], decode_responses=True)
    client.delete("test:mailbox:crashed")
    return client


def io_worker(mail_stack) -> WorkerProcess:
    [worker] = [w for w in mail_stack["workers"] if w.name == "io" and w.process.poll() is None]
    return worker


@pytest.mark.parametrize("point", ["after_fetch", "after_record", "before_move"])
def test_a_worker_killed_between_fetch_and_move_processes_the_mail_once(
    mail_stack, make_source, dovecot, imap_user, r, point
):
    from app.tasks.ops import sweep

    source_id = make_source(imap_user)
    message_id = f"<crash-{point}@example.org>"
    dovecot.deliver(imap_user, docx_message("Crash course", filename="crash.docx", message_id=message_id))
    worker = io_worker(mail_stack)
    r.set(KEY.format(point), "1")

    drive(lambda: worker.process.poll() is not None, message=f"the io worker to be killed at {point}")
    assert r.lrange("test:mailbox:crashed", 0, -1) == [point]
    rows = messages(source_id)
    if point == "after_fetch":  # read, nothing recorded: the cursor still points before the message
        assert rows == [] and source(source_id).last_uid is None
    elif point == "after_record":  # recorded and committed, the run never sent
        assert [m.state for m in rows] == ["accepted"] and [x.state for x in runs(source_id)] == ["queued"]
    else:  # the run ended, the message not moved yet
        assert [m.state for m in rows] == ["accepted"] and [x.state for x in runs(source_id)] == ["succeeded"]
    assert folder_counts(dovecot, imap_user) == {"INBOX": 1, "Processed": 0, "Failed": 0}

    # a new worker takes over (the dead one's lock expires after STEP_HEARTBEAT_TIMEOUT)
    replacement = WorkerProcess("io", "io", "threads", 4, mail_stack["env"], mail_stack["log_dir"])
    mail_stack["workers"].append(replacement.start())

    def recovered():
        if point == "after_record" and runs(source_id)[0].launches < 2:
            sweep(stuck_after=1, heartbeat_timeout=1)  # what beat's sweeper does for a run nobody sent
        return settled(source_id, 1)

    rows = drive(recovered, timeout=90, message="the mail to be processed after the crash")
    [row] = rows
    assert row.state == "processed" and row.folder == "Processed"
    [run] = runs(source_id)
    assert run.state == "succeeded" and len(documents(source_id)) == 1
    assert folder_counts(dovecot, imap_user) == {"INBOX": 0, "Processed": 1, "Failed": 0}
    [moved] = dovecot.messages(imap_user, "Processed")
    assert moved["message_id"] == message_id


def test_a_wrong_password_shows_on_the_source_and_polling_backs_off(
    mail_stack, make_source, dovecot, imap_user, admin_client
):
    wrong = "Wr0ng-Pa55word-Xyzzy-42"
    source_id = make_source(imap_user, password=wrong, poll_interval=5)
    dovecot.deliver(imap_user, docx_message("Locked out", filename="locked.docx"))

    first = poll_in_worker(source_id)
    assert first["error_code"] == "auth_failed"
    assert f"refused the user name or password of {imap_user}" in first["error"]
    after_one = source(source_id)
    assert after_one.consecutive_failures == 1 and after_one.last_error_code == "auth_failed"
    assert after_one.last_error == first["error"]
    delay = (after_one.next_poll_at - after_one.last_error_at).total_seconds()
    assert delay == pytest.approx(10, abs=0.01)  # twice the interval

    poll_in_worker(source_id)  # e.g. an admin's "poll now": fails again, waits twice as long
    after_two = source(source_id)
    assert after_two.consecutive_failures == 2
    assert (after_two.next_poll_at - after_two.last_error_at).total_seconds() == pytest.approx(20, abs=0.01)
    # the dispatcher leaves it alone while it backs off: once every task it sent is done, no poll came
    from app.tasks.mailbox.tasks import dispatch

    for _ in range(2):
        dispatch()
        wait_broker_drained(mail_stack["env"]["REDIS_URL"], message="the dispatched polls to be done with")
    backing_off = source(source_id)
    assert backing_off.last_poll_at == after_two.last_poll_at
    assert backing_off.next_poll_at == after_two.next_poll_at  # not even a poll queued

    # the admin sees the error, never the password
    shown = admin_client.get(f"/sources/{source_id}")
    assert shown.json()["last_error"] == first["error"] and shown.json()["consecutive_failures"] == 2
    answers = shown.text + admin_client.get("/sources").text + admin_client.get(f"/sources/{source_id}/messages").text
    answers += admin_client.post(f"/sources/{source_id}/test").text
    assert wrong not in answers
    logs = "".join(p.read_text(errors="replace") for p in mail_stack["log_dir"].glob("*.log"))
    assert "refused the user name or password" in logs  # the failure is logged …
    assert wrong not in logs  # … without the password

    # the password is fixed: polling resumes at once and the error clears
    fixed = admin_client.patch(f"/sources/{source_id}", json={"password": dovecot.users[imap_user]})
    assert fixed.status_code == 200 and dovecot.users[imap_user] not in fixed.text
    rows = drive(lambda: settled(source_id, 1), message="the mail to be processed once the password is right")
    healed = source(source_id)
    assert healed.consecutive_failures == 0 and healed.last_error is None and healed.last_error_code is None
    assert rows[0].state == "processed"
    assert folder_counts(dovecot, imap_user) == {"INBOX": 0, "Processed": 1, "Failed": 0}


def test_an_unreachable_server_shows_on_the_source(make_source, imap_user):
    from app.tasks.mailbox.polling import poll_source

    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    source_id = make_source(imap_user, port=port, poll_interval=30)
    result = poll_source(source_id)
    assert result["error_code"] == "connection"
    assert result["error"].startswith(f"cannot reach the IMAP server 127.0.0.1:{port}")
    failing = source(source_id)
    assert failing.last_error == result["error"] and failing.consecutive_failures == 1
    assert failing.next_poll_at - failing.last_error_at == timedelta(seconds=60)
