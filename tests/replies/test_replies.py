"""Replies to the senders of mailed manuscripts, end to end: a real Dovecot, real workers, the real SMTP
test server (STARTTLS + AUTH), the dispatchers driven as beat drives them."""

from __future__ import annotations

import uuid

import pytest
import redis

from tests.fixtures.dovecot import DOCX_TYPE, make_message
from tests.fixtures.stack import WorkerProcess
from tests.replies.conftest import SMTP_FROM
from tests.replies.faults import CRASHED, KEY
from tests.replies.helpers import drive, mail_message, notifications, runs_of, settled
from tests.samples import broken_docx, docx
from tests.support import wait_run

pytestmark = [pytest.mark.smtp, pytest.mark.imap, pytest.mark.worker, pytest.mark.postgres, pytest.mark.redis]


def send_manuscript(dovecot, user, sender, subject, *, data=None, text="Please publish the attached story.",
                    filename="story.docx", headers=None):  # fmt: skip
    tag = uuid.uuid4().hex[:8]
    message_id = f"<{tag}@example.org>"
    message = make_message(
        sender=sender, to=f"{user}@example.net", subject=subject, text=text, message_id=message_id,
        attachments=[(filename, data or docx(f"{subject} {tag}", paragraphs=3, seed=hash(tag) % 1000), DOCX_TYPE)],
    )  # fmt: skip
    for name, value in (headers or {}).items():
        message[name] = value
    dovecot.deliver(user, message)
    return message_id


def replies_to(smtp_server, address, count=1):
    found = smtp_server.messages(address)
    return found if len(found) >= count else None


def body(message, kind="plain") -> str:
    return message.get_body((kind,)).get_content().replace("\r\n", "\n")


def test_a_published_manuscript_gets_a_reply_in_its_thread(
    notify_stack, mailbox, dovecot, smtp_server, client
):
    source_id, user = mailbox()
    sender = f"ann-{uuid.uuid4().hex[:6]}@example.org"
    original = send_manuscript(
        dovecot,
        user,
        f"Ann <{sender}>",
        "[status pending] Harbour opens",
        headers={"References": "<root@example.org>"},
    )

    [reply] = drive(lambda: replies_to(smtp_server, sender), message="the reply to the published manuscript")

    [run] = runs_of(source_id)
    assert run.state == "succeeded"
    assert reply["In-Reply-To"] == original
    assert reply["References"] == f"<root@example.org> {original}"
    assert reply["Subject"] == "Re: [status pending] Harbour opens"
    assert reply["Auto-Submitted"] == "auto-replied" and reply["From"] == f"Copydesk <{SMTP_FROM}>"
    detail = client.get(f"/runs/{run.id}").json()
    [article] = [client.get(f"/articles/{detail['article_id']}").json()]
    text = body(reply)
    assert text.startswith(
        f'Your manuscript "{article["title"]}" is waiting for review.\n\n{article["preview_url"]}\n'
    )
    changed = client.get(f"/articles/{article['id']}/diff").json()["changed_blocks"]
    assert changed and f"\nThe editor changed {changed} of " in text  # what GET /articles/{id}/diff shows
    assert f'<a href="{article["preview_url"]}">' in body(reply, "html")
    # recorded on the run, sent once
    [note] = drive(
        lambda: settled(notifications(run.id, channel="email")), message="the reply to be recorded"
    )
    assert (note.channel, note.event, note.state, note.recipient) == ("email", "succeeded", "sent", sender)
    assert note.message_id == reply["Message-ID"] and note.attempts == 1
    [shown] = [n for n in client.get(f"/runs/{run.id}").json()["notifications"] if n["channel"] == "email"]
    assert shown["state"] == "sent" and shown["subject"] == reply["Subject"] and shown["recipient"] == sender


def test_waiting_for_approval_then_published_in_the_senders_language(
    notify_stack, mailbox, dovecot, smtp_server, client
):
    source_id, user = mailbox(workflow="t_reviewed")
    sender = f"berta-{uuid.uuid4().hex[:6]}@example.org"
    original = send_manuscript(
        dovecot, user, f"Berta <{sender}>", "Bericht aus dem Rathaus",
        text="Anbei mein Bericht über die Sitzung, bitte veröffentlichen Sie ihn.", filename="rathaus.docx",
    )  # fmt: skip

    [waiting] = drive(
        lambda: replies_to(smtp_server, sender), message="the reply saying it waits for approval"
    )
    [run] = runs_of(source_id)
    assert run.state == "awaiting_approval" and mail_message(source_id).language == "de"
    assert waiting["In-Reply-To"] == original and waiting["Subject"] == "Re: Bericht aus dem Rathaus"
    assert waiting["Content-Language"] == "de"
    assert body(waiting).startswith("Ihr Manuskript rathaus.docx ist eingegangen. Es wartet auf die Freigabe")

    assert client.post(f"/runs/{run.id}/approve").status_code == 200
    wait_run(client, str(run.id))
    first, published = drive(
        lambda: replies_to(smtp_server, sender, 2), message="the reply saying it is published"
    )
    assert first["Message-ID"] == waiting["Message-ID"]
    assert published["In-Reply-To"] == original and published["Message-ID"] != waiting["Message-ID"]
    assert "ist veröffentlicht." in body(published) and "Die Redaktion hat " in body(published)
    rows = drive(
        lambda: settled(notifications(run.id, channel="email")), message="both replies to be recorded"
    )
    assert [(n.event, n.state) for n in rows] == [("awaiting_approval", "sent"), ("succeeded", "sent")]


def test_a_failed_manuscript_gets_a_reply_naming_the_file_the_reason_and_what_to_do(
    notify_stack, mailbox, dovecot, smtp_server, webhook_receiver, webhooks
):
    name = uuid.uuid4().hex
    hook = webhooks(webhook_receiver.url(name), workflow="publish_document")
    webhook_receiver.expect(name, hook["secret"])
    source_id, user = mailbox()
    sender = f"carl-{uuid.uuid4().hex[:6]}@example.org"
    original = send_manuscript(
        dovecot, user, sender, "Budget vote", data=broken_docx(sender), filename="budget.docx"
    )

    [reply] = drive(lambda: replies_to(smtp_server, sender), message="the reply to the failed manuscript")
    [run] = runs_of(source_id)
    assert run.state == "failed"
    assert reply["In-Reply-To"] == original and reply["Subject"] == "Re: Budget vote"
    text = body(reply)
    assert text.startswith("Your manuscript budget.docx could not be published.\n\nWhy: ")
    assert "What to do: Open the file in Word, save it again as .docx and send it once more." in text
    # the same event also went to the workflow's webhook (planned together with the reply)
    rows = drive(lambda: settled(notifications(run.id)), message="the reply and the delivery to be recorded")
    ours = {
        (n.channel, n.event, n.state)
        for n in rows
        if n.channel == "email" or n.webhook_id == uuid.UUID(hook["id"])
    }
    assert ours == {("email", "failed", "sent"), ("webhook", "failed", "sent")}
    [request] = webhook_receiver.requests(name)
    assert request["body"]["data"]["filename"] == "budget.docx" and request["body"]["data"]["source"]


def test_no_reply_to_a_sender_whose_address_is_not_proven(
    notify_stack, mailbox, dovecot, smtp_server, client
):
    source_id, user = mailbox(allowed_senders=())  # the mailbox lets anyone in: nobody is proven
    sender = f"dora-{uuid.uuid4().hex[:6]}@example.com"
    send_manuscript(dovecot, user, sender, "Who am I")

    [note] = drive(lambda: settled(notifications(source_id=source_id)), message="the reply to be decided")
    [run] = runs_of(source_id)
    assert run.state == "succeeded"
    assert (note.state, note.recipient) == ("skipped", sender) and "not a proven sender" in note.last_error
    assert smtp_server.messages(sender) == []
    assert [
        n["state"] for n in client.get(f"/runs/{run.id}").json()["notifications"] if n["channel"] == "email"
    ] == ["skipped"]


def test_a_retry_or_a_redelivery_sends_nothing_more(notify_stack, mailbox, dovecot, smtp_server):
    from sqlalchemy import update

    from app.core.db import session_scope
    from app.models import RunEvent
    from app.tasks.notify import dispatch, send_task

    source_id, user = mailbox()
    sender = f"emil-{uuid.uuid4().hex[:6]}@example.org"
    send_manuscript(dovecot, user, sender, "Twice told")
    [note] = drive(lambda: settled(notifications(source_id=source_id)), message="the reply to be sent")
    assert note.state == "sent"

    # the send task delivered again, and the event planned again (as by a second dispatcher)
    send_task.apply_async(args=[str(note.id)], queue="io").get(timeout=60)
    with session_scope() as session:
        session.execute(update(RunEvent).where(RunEvent.id == note.event_id).values(notified_at=None))
    dispatch()
    with session_scope() as session:
        assert session.get(RunEvent, note.event_id).notified_at is not None  # planned again: nothing new
    assert len(smtp_server.messages(sender)) == 1
    [again] = notifications(source_id=source_id)
    assert (again.id, again.state, again.attempts) == (note.id, "sent", 1)


def test_a_wrong_smtp_password_shows_on_the_mailbox_and_does_not_fail_the_run(
    notify_stack, mailbox, dovecot, smtp_server, client, admin_client
):
    source_id, user = mailbox()
    sender = f"fritz-{uuid.uuid4().hex[:6]}@example.org"
    right = smtp_server.password
    smtp_server.set_password("the-server-changed-it")  # Copydesk still logs in with SMTP_PASSWORD
    try:
        send_manuscript(dovecot, user, sender, "Locked out")
        [note] = drive(lambda: settled(notifications(source_id=source_id)), message="the reply to fail")
    finally:
        smtp_server.set_password(right)
    [run] = runs_of(source_id)
    assert run.state == "succeeded" and client.get(f"/runs/{run.id}").json()["state"] == "succeeded"
    assert (note.state, note.last_error_code, note.attempts) == ("failed", "auth_failed", 1)
    shown = admin_client.get(f"/sources/{source_id}").json()
    assert shown["reply_error"].startswith(f"reply to {sender}: the SMTP server 127.0.0.1 refused the login")
    assert right not in shown["reply_error"] and shown["reply_error_at"]
    assert admin_client.get(f"/sources/{source_id}/replies").json()["reply_error"] == shown["reply_error"]
    assert smtp_server.messages(sender) == []

    # once the password is right again, the next reply goes out and the mailbox's error clears
    send_manuscript(dovecot, user, sender, "Back in")
    drive(lambda: replies_to(smtp_server, sender), message="the next reply")
    drive(
        lambda: admin_client.get(f"/sources/{source_id}").json()["reply_error"] is None,
        message="the error to clear",
    )


def test_one_reply_when_the_worker_is_killed_after_sending_and_before_recording(
    notify_stack, mailbox, dovecot, smtp_server
):
    from app.tasks.notify import dispatch

    r = redis.Redis.from_url(notify_stack["env"]["REDIS_URL"], decode_responses=True)
    r.delete(CRASHED)
    source_id, user = mailbox()
    sender = f"gina-{uuid.uuid4().hex[:6]}@example.org"
    r.set(KEY.format(sender), "1")
    io_workers = [w for w in notify_stack["workers"] if w.name == "io" and w.process.poll() is None]
    send_manuscript(dovecot, user, sender, "Lost in the post")

    drive(
        lambda: all(w.process.poll() is not None for w in io_workers),
        message="the io worker to be killed after sending",
    )
    assert r.lrange(CRASHED, 0, -1) == [sender]
    assert len(smtp_server.messages(sender)) == 1
    [note] = notifications(source_id=source_id)
    assert note.state == "sending"  # the hand-over began, its end was never recorded

    replacement = WorkerProcess("io", "io", "threads", 4, notify_stack["env"], notify_stack["log_dir"])
    notify_stack["workers"].append(replacement.start())
    [note] = drive(lambda: settled(notifications(source_id=source_id)), message="the reply to be settled")
    assert note.state == "unconfirmed" and note.attempts == 1 and "not sent again" in note.last_error
    for _ in range(3):  # the dispatcher once more: nothing is sent again
        dispatch()
    [note] = notifications(source_id=source_id)
    assert note.state == "unconfirmed" and len(smtp_server.messages(sender)) == 1
    assert runs_of(source_id)[0].state == "succeeded"
