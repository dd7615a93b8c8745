"""Mailbox intake end to end: a real Dovecot, real workers, the dispatcher as beat runs it.

Every test ends by counting the mail in INBOX + Processed + Failed: nothing is ever deleted."""

from __future__ import annotations

import pytest

from app.integrations.mailbox import KEYWORD_IGNORED, KEYWORD_UNKNOWN_SENDER
from tests.fixtures.dovecot import DOCX_TYPE, docx_message, make_docx, make_message
from tests.mailbox.helpers import (
    documents,
    drive,
    folder_counts,
    messages,
    runs,
    runs_ended,
    settled,
    source,
)
from tests.samples import broken_docx, docx
from tests.support import wait_run, wait_until

pytestmark = [pytest.mark.imap, pytest.mark.worker, pytest.mark.postgres, pytest.mark.redis]

LONG_TEXT = " ".join(f"The council met on Tuesday and word{n} was said." for n in range(8))


def manuscript(title: str, seed: int) -> bytes:
    return docx(title, paragraphs=3, seed=seed)


def test_new_mail_is_published_and_moved_to_processed(make_source, dovecot, imap_user, admin_client, client):
    source_id = make_source(imap_user, defaults={"site": None, "status": "pending"})
    data = manuscript("Harbour opens", seed=101)
    dovecot.deliver(
        imap_user,
        make_message(
            subject="[category News] [tags harbour, city] Harbour opens [status draft] [slug harbour-opens]",
            attachments=[("harbour.docx", data, DOCX_TYPE)],
            message_id="<harbour-1@example.org>",
        ),
    )

    rows = drive(lambda: settled(source_id), message="the message to be processed and moved")

    [row] = rows
    assert row.state == "processed", row.reason
    assert row.folder == "Processed" and row.moved_at is not None
    assert row.message_id == "harbour-1@example.org" and row.sender == "ann@example.org"
    assert row.title == "Harbour opens"
    [run] = runs(source_id)
    assert run.state == "succeeded", run.error
    assert run.mail_message_id == row.id and row.run_ids == [run.id]
    # directives beat the source's defaults; keys as publish_document's inputs
    assert run.payload == {
        "status": "draft",
        "category": "News",
        "tags": ["harbour", "city"],
        "slug": "harbour-opens",
    }
    [document] = documents(source_id)
    assert document.origin == "mail" and document.kind == "docx" and document.filename == "harbour.docx"
    assert document.mail_message_id == row.id and document.options == run.payload
    assert row.documents == [
        {
            "filename": "harbour.docx",
            "kind": "docx",
            "size": len(data),
            "sha256": document.sha256,
            "origin": "attachment",
            "document_id": str(document.id),
            "run_id": str(run.id),
            "duplicate": False,
        }
    ]
    # the run, its article and the manuscript as received, through the API an editor uses
    detail = client.get(f"/runs/{run.id}").json()
    assert detail["state"] == "succeeded" and detail["article_id"]
    article = client.get(f"/articles/{detail['article_id']}").json()
    # the directives reach the post (the local preview publishes whatever the status: it is in the payload)
    assert (article["categories"], article["tags"], article["slug"]) == (["News"], ["harbour", "city"], "harbour-opens")
    assert client.get(f"/documents/{document.id}/original").content == data
    # the mailbox: moved out of INBOX, read, nothing deleted
    assert folder_counts(dovecot, imap_user) == {"INBOX": 0, "Processed": 1, "Failed": 0}
    [moved] = dovecot.messages(imap_user, "Processed")
    assert "\\Seen" in moved["flags"] and moved["message_id"] == "<harbour-1@example.org>"
    # and the admin sees what became of it
    listed = admin_client.get(f"/sources/{source_id}/messages").json()
    assert [(m["state"], m["folder"], m["run_ids"]) for m in listed] == [("processed", "Processed", [str(run.id)])]
    assert admin_client.get(f"/sources/{source_id}").json()["messages"] == {"processed": 1}


def test_the_same_mail_is_never_processed_twice(make_source, dovecot, imap_user, client):
    """Across polls, a lost cursor (the crash case: re-read before the cursor was stored), a second
    delivery of the same message, and an API upload of the same file. The run waits for approval
    (t_control's gate) until the re-reads are done: a poll files the message of an ended run away, and
    the re-read would find an empty folder."""
    from app.core.db import session_scope
    from app.models import Source
    from app.tasks.mailbox.polling import poll_source

    source_id = make_source(imap_user, workflow="t_control")
    data = manuscript("Budget vote", seed=202)
    message = make_message(attachments=[("vote.docx", data, DOCX_TYPE)], message_id="<vote-7@example.org>")
    dovecot.deliver(imap_user, message)

    first = poll_source(source_id)
    assert first["recorded"] == 1 and first["runs"] == 1
    [run] = runs(source_id)
    for _ in range(3):  # unchanged folder: nothing new
        again = poll_source(source_id)
        assert again.get("recorded", 0) == 0 and again.get("fetched", 0) == 0 and again.get("settled", 0) == 0
    with session_scope() as session:  # the cursor is lost: every message in the folder is read again
        row = session.get(Source, source_id)
        row.uidvalidity = row.last_uid = None
    reread = poll_source(source_id)
    assert reread["fetched"] == 1 and reread.get("recorded", 0) == 0 and reread.get("runs", 0) == 0
    # the same message delivered a second time (same Message-ID, same bytes): a duplicate
    dovecot.deliver(imap_user, message)
    second = poll_source(source_id)
    assert second["recorded"] == 1 and second.get("runs", 0) == 0 and second["duplicates"] == 1

    wait_run(client, str(run.id), states=("awaiting_approval",))  # held there all along
    assert client.post(f"/runs/{run.id}/approve").status_code == 200
    rows = drive(lambda: settled(source_id, 2), message="both copies to be moved")
    assert [r.state for r in rows] == ["processed", "processed"]
    assert "already received" in rows[1].reason
    assert rows[1].run_ids == rows[0].run_ids  # the copy waited for the first copy's run
    assert len(runs(source_id)) == 1 and len(documents(source_id)) == 1
    assert runs(source_id)[0].state == "succeeded"
    # the same file through the API: the existing document and run, no second post
    upload = client.post("/documents", files={"file": ("vote.docx", data)})
    assert upload.status_code == 200 and upload.json()["duplicate"] is True
    assert upload.json()["run"]["id"] == str(runs(source_id)[0].id)
    assert folder_counts(dovecot, imap_user) == {"INBOX": 0, "Processed": 2, "Failed": 0}


def test_a_resent_message_makes_no_second_post(make_source, dovecot, imap_user, client):
    source_id = make_source(imap_user)
    data = manuscript("Library reopens", seed=303)
    dovecot.deliver(imap_user, make_message(subject="Library", attachments=[("library.docx", data, DOCX_TYPE)]))
    drive(lambda: settled(source_id, 1), message="the first message to be processed")
    # the editor sends it again a day later: new Message-ID, new subject, same attachment under another name
    dovecot.deliver(
        imap_user,
        make_message(subject="Fwd: Library (again)", attachments=[("library-final.docx", data, DOCX_TYPE)]),
    )
    rows = drive(lambda: settled(source_id, 2), message="the re-sent message to be filed")

    assert [r.state for r in rows] == ["processed", "processed"]
    assert rows[1].documents[0]["duplicate"] is True
    assert rows[1].documents[0]["document_id"] == rows[0].documents[0]["document_id"]
    assert "library-final.docx was already received" in rows[1].reason
    assert len(runs(source_id)) == 1 and len(documents(source_id)) == 1
    articles = client.get("/articles").json()
    items = articles["items"] if isinstance(articles, dict) else articles
    assert sum(1 for a in items if a["document_id"] == rows[0].documents[0]["document_id"]) == 1
    assert folder_counts(dovecot, imap_user) == {"INBOX": 0, "Processed": 2, "Failed": 0}


def test_uidvalidity_change(make_source, dovecot, imap_user):
    """The folder is rebuilt (a restored server): stored UIDs mean nothing. The message being processed
    is found again by its Message-ID to be moved; the one kept in place is not recorded twice; new
    mail is still picked up."""
    from app.tasks.mailbox.polling import poll_source
    from app.tasks.mailbox.settling import settle_source

    source_id = make_source(imap_user)
    dovecot.deliver(imap_user, docx_message("Ferry timetable", filename="ferry.docx", message_id="<ferry@example.org>"))
    spam = docx_message("Spam", sender="Mallory <m@spam.example>", message_id="<spam@spam.example>")
    dovecot.deliver(imap_user, spam)
    first = poll_source(source_id)
    assert first["runs"] == 1 and first["unauthorized"] == 1
    old = source(source_id).uidvalidity

    new = dovecot.change_uidvalidity(imap_user)
    assert new != old
    wait_until(lambda: runs_ended(source_id, 1), timeout=60, message="the run to end")
    assert settle_source(source_id)["settled"] == 1  # no poll in between: the stored UID is stale

    [ferry] = [r for r in messages(source_id) if r.message_id == "ferry@example.org"]
    assert ferry.state == "processed" and ferry.folder == "Processed" and ferry.error is None
    assert ferry.uidvalidity == new  # found again by its Message-ID
    assert source(source_id).uidvalidity == old  # the cursor still holds the old one
    # a new message after the change, and a poll that reads the whole folder again
    dovecot.deliver(imap_user, docx_message("Ferry strike", filename="strike.docx", message_id="<strike@example.org>"))
    rows = drive(lambda: settled(source_id, 2), message="the new message to be processed")
    assert source(source_id).uidvalidity == new
    by_id = {r.message_id: r for r in rows}
    assert set(by_id) == {"ferry@example.org", "spam@spam.example", "strike@example.org"}  # no second row
    assert by_id["spam@spam.example"].state == "unauthorized" and by_id["spam@spam.example"].uidvalidity == new
    assert by_id["strike@example.org"].state == "processed"
    assert len(runs(source_id)) == 2
    assert folder_counts(dovecot, imap_user) == {"INBOX": 1, "Processed": 2, "Failed": 0}


def test_allowed_and_unknown_senders(make_source, dovecot, imap_user):
    source_id = make_source(imap_user, allowed_senders=["@example.org", "chief@partner.example"])
    for subject, sender in [
        ("From the desk", "Ann <ann@example.org>"),
        ("From a partner", "Chief <Chief@Partner.example>"),
        ("Unsolicited", "Someone <someone@elsewhere.example>"),
        ("Lookalike", "Eve <eve@example.org.evil.example>"),
    ]:
        dovecot.deliver(imap_user, docx_message(subject, sender=sender, subject=subject))
    thanks = make_message(sender="ann@example.org", subject="Thanks!", text="Thanks, got it.\n-- \nAnn")
    dovecot.deliver(imap_user, thanks)

    rows = drive(lambda: settled(source_id, 2), message="the allowed messages to be processed")
    by_subject = {r.subject: r for r in rows}
    assert {s: r.state for s, r in by_subject.items()} == {
        "From the desk": "processed",
        "From a partner": "processed",
        "Unsolicited": "unauthorized",
        "Lookalike": "unauthorized",
        "Thanks!": "ignored",
    }
    assert by_subject["Lookalike"].reason == "eve@example.org.evil.example is not an allowed sender"
    assert "no Word attachment" in by_subject["Thanks!"].reason
    kept = [by_subject[s] for s in ("Unsolicited", "Lookalike", "Thanks!")]
    assert all(r.documents == [] and r.run_ids == [] and r.folder is None for r in kept)
    assert len(runs(source_id)) == 2 and len(documents(source_id)) == 2
    # kept in place, unread, marked with why
    inbox = {m["subject"]: m["flags"] for m in dovecot.messages(imap_user, "INBOX")}
    assert set(inbox) == {"Unsolicited", "Lookalike", "Thanks!"}
    assert KEYWORD_UNKNOWN_SENDER in inbox["Unsolicited"] and KEYWORD_UNKNOWN_SENDER in inbox["Lookalike"]
    assert KEYWORD_IGNORED in inbox["Thanks!"]
    assert all("\\Seen" not in flags for flags in inbox.values())
    # polled again and again, they stay as they are
    drive(lambda: source(source_id).last_poll_at > rows[-1].updated_at, message="another poll")
    assert len(messages(source_id)) == 5 and len(runs(source_id)) == 2
    assert folder_counts(dovecot, imap_user) == {"INBOX": 3, "Processed": 2, "Failed": 0}


def test_a_failing_document_sends_the_message_to_failed_with_the_reason(make_source, dovecot, imap_user):
    source_id = make_source(imap_user)
    dovecot.deliver(imap_user, make_message(subject="Broken", attachments=[("broken.docx", broken_docx(), DOCX_TYPE)]))
    dovecot.deliver(
        imap_user,
        make_message(subject="Not Word", attachments=[("notes.docx", b"just text pretending to be Word", DOCX_TYPE)]),
    )
    rows = drive(lambda: settled(source_id, 2), message="both messages to be filed as failed")

    by_subject = {r.subject: r for r in rows}
    broken, fake = by_subject["Broken"], by_subject["Not Word"]
    [run] = runs(source_id)
    assert run.state == "failed" and run.error_step == "parse"
    assert "damaged" in run.error
    assert broken.state == "failed" and broken.folder == "Failed"
    assert broken.reason.startswith("broken.docx: run ") and "damaged" in broken.reason
    # refused at intake (not a Word file whatever its name): no document, no run, the reason
    assert fake.state == "failed" and fake.run_ids == []
    assert "notes.docx: " in fake.reason and "not a Word document" in fake.reason
    assert fake.documents[0]["error"] and "document_id" not in fake.documents[0]
    failed = dovecot.messages(imap_user, "Failed")
    assert len(failed) == 2 and all("\\Seen" not in m["flags"] for m in failed)  # unread: to be noticed
    assert folder_counts(dovecot, imap_user) == {"INBOX": 0, "Processed": 0, "Failed": 2}


def fail_then_heal(make_source, mail_stack, dovecot, imap_user, seed: int):
    """A message whose run fails (t_fanout's item 1, until "the cause is fixed": a Redis key), filed
    under Failed; the cause is then fixed. Returns the source and the failed run."""
    import redis

    source_id = make_source(imap_user, workflow="t_fanout", defaults={"count": 3, "fail_items": [1]})
    dovecot.deliver(
        imap_user,
        make_message(
            subject="Three parts",
            attachments=[("parts.docx", manuscript("Three parts", seed=seed), DOCX_TYPE)],
            message_id=f"<three-parts-{seed}@example.org>",
        ),
    )
    [row] = drive(lambda: settled(source_id), message="the message to be filed as failed")
    assert row.state == "failed" and row.folder == "Failed" and "item 1" in row.reason
    assert folder_counts(dovecot, imap_user) == {"INBOX": 0, "Processed": 0, "Failed": 1}
    [run] = runs(source_id)
    redis.Redis.from_url(mail_stack["redis"].url).set(f"test:{run.id}:heal", "1")
    return source_id, run


def processed_message(source_id):
    return drive(
        lambda: [m for m in messages(source_id) if m.state == "processed"] or None,
        message="the message to be recorded as processed",
    )[0]


def test_a_failed_message_moves_on_to_processed_once_its_resumed_run_succeeds(
    make_source, mail_stack, dovecot, imap_user, admin_client
):
    source_id, run = fail_then_heal(make_source, mail_stack, dovecot, imap_user, seed=4100)
    assert admin_client.post(f"/runs/{run.id}/resume").status_code == 200
    row = processed_message(source_id)
    assert runs(source_id)[0].state == "succeeded"
    assert row.folder == "Processed" and row.reason is None and row.error is None
    assert folder_counts(dovecot, imap_user) == {"INBOX": 0, "Processed": 1, "Failed": 0}
    [moved] = dovecot.messages(imap_user, "Processed")
    assert "\\Seen" in moved["flags"]  # processed mail is marked read, as when filed directly
    # settled for good: more dispatches move nothing and record nothing new
    for _ in range(3):
        drive(lambda: source(source_id).last_poll_at > row.updated_at, message="another poll")
    assert [m.state for m in messages(source_id)] == ["processed"]
    assert folder_counts(dovecot, imap_user) == {"INBOX": 0, "Processed": 1, "Failed": 0}


@pytest.mark.parametrize("moved_to", ["Processed", "Archive"])
def test_a_failed_message_a_person_moved_away_is_recorded_where_it_is(
    make_source, mail_stack, dovecot, imap_user, admin_client, moved_to
):
    # a manuscript of its own per case: the same one again would be a duplicate of the first
    seed = {"Processed": 4200, "Archive": 4300}[moved_to]
    source_id, run = fail_then_heal(make_source, mail_stack, dovecot, imap_user, seed=seed)
    with dovecot.connect(imap_user, folder="Failed") as box:
        if not box.folder.exists(moved_to):
            box.folder.create(moved_to)
        box.move(box.uids(), moved_to)
    assert admin_client.post(f"/runs/{run.id}/resume").status_code == 200
    row = processed_message(source_id)
    if moved_to == "Processed":
        assert row.folder == "Processed" and row.error is None
    else:  # left where the person put it, and said so
        assert row.folder == "Failed" and "no longer in Failed" in row.error
    assert dovecot.status(imap_user, moved_to)["messages"] == 1
    assert dovecot.status(imap_user, "Failed")["messages"] == 0


def test_ten_attachments_make_ten_runs_and_one_move(make_source, dovecot, imap_user):
    source_id = make_source(imap_user)
    attachments = [(f"part-{n}.docx", manuscript(f"Part {n}", seed=4000 + n), DOCX_TYPE) for n in range(10)]
    subject = "[tags series] [date next week] Ten parts"
    dovecot.deliver(imap_user, make_message(subject=subject, attachments=attachments))
    rows = drive(lambda: settled(source_id, 1), timeout=120, message="the message to be moved once all ten ran")

    [row] = rows
    found = runs(source_id)
    assert len(found) == 10 and all(r.state == "succeeded" for r in found), [r.error for r in found]
    assert row.state == "processed" and sorted(row.run_ids) == sorted(r.id for r in found)
    assert row.moved_at >= max(r.finished_at for r in found)  # moved only once all had ended
    assert [d["filename"] for d in row.documents] == [f"part-{n}.docx" for n in range(10)]
    assert all(r.payload == {"tags": ["series"]} for r in found)
    # a directive that could not be used is said on every run, not silently dropped
    assert all("[date next week] is not a date like 2026-12-01 09:00: ignored" in r.warnings for r in found)
    assert folder_counts(dovecot, imap_user) == {"INBOX": 0, "Processed": 1, "Failed": 0}


def test_body_only_message_becomes_an_html_document(make_source, dovecot, imap_user):
    from app.services import storage

    source_id = make_source(imap_user)
    html = f"<html><body><p>{LONG_TEXT}</p><p>[excerpt The council met.]</p></body></html>"
    dovecot.deliver(
        imap_user,
        make_message(subject="[category Local] Council meets", text=LONG_TEXT + "\n-- \nAnn\n", html=html),
    )
    drive(lambda: runs(source_id), message="the body to become a document and a run")

    [document] = documents(source_id)
    [run] = runs(source_id)
    assert document.kind == "html" and document.content_type.startswith("text/html")
    assert document.filename == "message.html"
    body = storage().get(document.original_key).decode()
    assert "word7 was said" in body and "[excerpt" not in body and "Ann" not in body
    assert run.payload == {"category": "Local", "excerpt": "The council met.", "title": "Council meets"}
    [row] = messages(source_id)
    assert row.documents[0]["origin"] == "body"


def test_body_only_message_is_published(make_source, dovecot, imap_user):
    from sqlalchemy import select

    from app.core.db import session_scope
    from app.models import Article

    source_id = make_source(imap_user)
    dovecot.deliver(imap_user, make_message(subject="Council meets", text=LONG_TEXT))
    rows = drive(lambda: settled(source_id, 1), message="the body-only message to be filed")
    run = runs(source_id)[0]
    assert run.state == "succeeded", run.error
    assert rows[0].state == "processed"
    with session_scope() as session:
        article = session.execute(select(Article).where(Article.document_id == run.document_id)).scalar_one()
        assert article.title == "Council meets"
        assert "<p>" in article.html and "word7" in article.text


def test_non_utf8_subject_and_file_name(make_source, dovecot, imap_user):
    import base64

    source_id = make_source(imap_user)
    data = manuscript("Café Müller", seed=505)
    raw = (
        b"From: =?iso-8859-1?q?Ren=E9?= <rene@example.org>\r\nTo: desk@example.org\r\n"
        b"Subject: [tags caf\xe9] Caf\xe9 M\xfcller\r\nMessage-ID: <cafe@example.org>\r\n"
        b"Date: Fri, 20 Nov 2026 09:30:00 +0100\r\nMIME-Version: 1.0\r\n"
        b'Content-Type: multipart/mixed; boundary="B"\r\n\r\n'
        b"--B\r\nContent-Type: text/plain; charset=iso-8859-1\r\nContent-Transfer-Encoding: 8bit\r\n\r\nCaf\xe9\r\n"
        b"--B\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n"
        b"Content-Disposition: attachment; filename*=iso-8859-1''M%FCller%20Bericht.docx\r\n\r\n"
        + base64.encodebytes(data).replace(b"\n", b"\r\n")
        + b"--B--\r\n"
    )
    dovecot.deliver(imap_user, raw)
    [row] = drive(lambda: settled(source_id, 1), message="the message to be processed")

    assert row.state == "processed", row.reason
    assert row.subject == "[tags café] Café Müller" and row.title == "Café Müller"
    [document] = documents(source_id)
    assert document.filename == "Müller Bericht.docx"
    assert runs(source_id)[0].payload == {"tags": ["café"]}


def test_an_attachment_above_the_upload_limit_fails_the_message(make_source, dovecot, imap_user):
    source_id = make_source(imap_user)
    big = make_docx("Big one", padding_bytes=6 * 1024 * 1024)  # MAX_UPLOAD_MB is 5 in the tests
    dovecot.deliver(imap_user, make_message(subject="Big", attachments=[("big.docx", big, DOCX_TYPE)]))
    [row] = drive(lambda: settled(source_id, 1), message="the message to be filed as failed")

    assert row.state == "failed" and row.folder == "Failed" and row.run_ids == []
    assert row.reason == f"big.docx: big.docx is {len(big) / 1048576:.1f} MB, above the limit of 5 MB (MAX_UPLOAD_MB)"
    assert documents(source_id) == []
    assert folder_counts(dovecot, imap_user) == {"INBOX": 0, "Processed": 0, "Failed": 1}


def test_a_backlog_is_taken_in_slices(make_source, dovecot, imap_user, mail_stack):
    """max_bytes_per_poll (and max_messages_per_poll) bound what one poll holds in memory; a poll that
    stops short says so and the next one follows at once."""
    from app.tasks.mailbox.polling import poll_source

    source_id = make_source(imap_user, options={"ca_cert": open(dovecot.ca_file).read(), "max_bytes_per_poll": 1})
    dovecot.deliver_many(imap_user, [docx_message(f"Slice {n}", filename=f"slice-{n}.docx") for n in range(3)])
    first = poll_source(source_id)  # takes one message, then hands over to the worker for the rest
    assert first["recorded"] == 1 and first["more"] is True
    rows = drive(lambda: settled(source_id, 3), message="the whole backlog to be processed")
    assert sorted(r.documents[0]["filename"] for r in rows) == [f"slice-{n}.docx" for n in range(3)]
    assert folder_counts(dovecot, imap_user) == {"INBOX": 0, "Processed": 3, "Failed": 0}
