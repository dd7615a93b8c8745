"""Mailbox intake against a real Dovecot (tests/servers/dovecot.py): polling with cursors, peeking,
UIDVALIDITY, senders, directives, hard messages, errors, TLS modes, moving without deleting."""

from __future__ import annotations

import dataclasses
import imaplib

import pytest

from app.core.errors import AuthenticationFailed, ConfigurationError, ConnectionFailed, NotFound
from app.integrations.mailbox import (
    KEYWORD_UNKNOWN_SENDER,
    Cursor,
    MailboxChanged,
    check_mailbox,
    content_hash,
    ensure_folders,
    find_by_message_id,
    mark,
    move,
    poll,
)
from tests.fixtures.dovecot import DOCX_TYPE, docx_message, make_doc_bytes, make_docx, make_message
from tests.support import wait_until

pytestmark = pytest.mark.imap

LONG_TEXT = " ".join(f"word{n}" for n in range(40))


@pytest.fixture
def imap_commands(monkeypatch):
    """The IMAP commands this process sends, as (name, arguments) — LOGIN's arguments are left out."""
    sent: list[tuple[str, str]] = []
    original = imaplib.IMAP4._command

    def record(self, name, *args):
        shown = "" if name.upper() in ("LOGIN", "AUTHENTICATE") else " ".join(
            a.decode(errors="replace") if isinstance(a, bytes) else str(a) for a in args if a is not None
        )
        sent.append((name.upper(), shown))
        return original(self, name, *args)

    monkeypatch.setattr(imaplib.IMAP4, "_command", record)
    return sent


def logged_session(dovecot, user, action):
    """Run action (one IMAP session of `user`); its result and Dovecot's logged stats of that session."""
    before = len(dovecot.wait_for_sessions(user))
    result = action()

    def logged():
        sessions = dovecot.wait_for_sessions(user)
        return sessions if len(sessions) > before else None

    sessions = wait_until(logged, timeout=30, interval=0.02, message=f"Dovecot to log the session of {user}")
    assert len(sessions) == before + 1, f"Dovecot logged {len(sessions) - before} sessions, not one"
    return result, sessions[-1]


def folder_total(dovecot, user) -> int:
    return sum(dovecot.status(user, folder)["messages"] for folder in ("INBOX", "Processed", "Failed"))


# --- polling ----------------------------------------------------------------------------------


def test_new_mail_is_picked_up_without_being_marked_seen(dovecot, imap_user, mailbox_config):
    docx = make_docx("The council voted.")
    message = make_message(
        subject="[category News] [tags council, budget] Budget vote [status draft]",
        attachments=[("vote.docx", docx, DOCX_TYPE)],
        message_id="<vote-1@example.org>",
    )
    uid = dovecot.deliver(imap_user, message)

    result = poll(mailbox_config, None)

    assert [m.uid for m in result.messages] == [uid]
    [msg] = result.messages
    assert (msg.status, msg.message_id, msg.sender, msg.title) == ("ready", "vote-1@example.org", "ann@example.org", "Budget vote")
    assert msg.directives.as_dict() == {"categories": ["News"], "tags": ["council", "budget"], "status": "draft"}
    [doc] = msg.documents
    assert doc.data == docx and doc.sha256 == content_hash(docx) and doc.filename == "vote.docx" and doc.verified
    assert result.cursor == Cursor(dovecot.status(imap_user)["uidvalidity"], uid)
    assert result.downloaded_bytes == msg.size > len(docx)
    # peeked: still unseen on the server, for the editor and for the next steps
    assert dovecot.status(imap_user)["unseen"] == 1
    assert "\\Seen" not in dovecot.messages(imap_user)[0]["flags"]


def test_a_poll_of_an_unchanged_mailbox_downloads_no_message(dovecot, imap_user, mailbox_config, imap_commands):
    dovecot.deliver_many(imap_user, [docx_message(f"Story {n}") for n in range(5)])
    first, first_session = logged_session(dovecot, imap_user, lambda: poll(mailbox_config, None))
    assert len(first.messages) == 5
    imap_commands.clear()

    second, last = logged_session(dovecot, imap_user, lambda: poll(mailbox_config, first.cursor))

    assert second.messages == [] and second.cursor == first.cursor and second.downloaded_bytes == 0
    assert second.folder_messages == 5
    # client side: no SELECT/EXAMINE, no FETCH, no SEARCH — a STATUS is all it takes (imaplib asks
    # for CAPABILITY itself right after connecting)
    assert [name for name, _ in imap_commands] == ["CAPABILITY", "LOGIN", "STATUS", "LOGOUT"]
    # server side: Dovecot's own account of the session fetched no header and no body
    assert (last.hdr_count, last.body_count, last.body_bytes) == (0, 0, 0)
    assert last.bytes_out < 1500  # greeting, capabilities, one STATUS line, bye
    # whereas the first poll fetched the five bodies
    assert first_session.body_count == 5


def test_a_second_poll_fetches_only_what_is_new(dovecot, imap_user, mailbox_config, imap_commands):
    dovecot.deliver_many(imap_user, [docx_message("old 1"), docx_message("old 2")])
    first = poll(mailbox_config)
    new_uid = dovecot.deliver(imap_user, docx_message("new"))
    imap_commands.clear()

    second, session = logged_session(dovecot, imap_user, lambda: poll(mailbox_config, first.cursor))

    assert [m.uid for m in second.messages] == [new_uid]
    assert second.cursor.last_uid == new_uid
    fetches = [args for name, args in imap_commands if name == "UID" and "FETCH" in args]
    assert all("BODY.PEEK[]" in args or "RFC822.SIZE)" in args for args in fetches), fetches
    assert not any(name == "SELECT" for name, _ in imap_commands)  # EXAMINE: read-only
    assert session.body_count == 1


def test_a_crash_before_the_cursor_is_saved_returns_the_same_messages_with_the_same_keys(mailbox_config, dovecot, imap_user):
    dovecot.deliver_many(imap_user, [docx_message("a"), docx_message("b")])
    first = poll(mailbox_config)
    # the worker dies before storing first.cursor: the next poll starts from the old cursor (None)
    again = poll(mailbox_config, None)
    keys = lambda result: [d.dedupe_key for m in result.messages for d in m.documents]  # noqa: E731
    assert keys(again) == keys(first) and len(set(keys(first))) == 2


def test_max_messages_per_poll_leaves_the_rest_for_the_next_poll(dovecot, imap_user, mailbox_config):
    uids = dovecot.deliver_many(imap_user, [docx_message(f"m{n}") for n in range(5)])
    config = dataclasses.replace(mailbox_config, max_messages_per_poll=3)
    first = poll(config)
    assert [m.uid for m in first.messages] == uids[:3] and first.more and first.cursor.last_uid == uids[2]
    second = poll(config, first.cursor)
    assert [m.uid for m in second.messages] == uids[3:] and not second.more


def test_messages_that_left_the_folder_move_the_cursor_on(dovecot, imap_user, mailbox_config):
    uids = dovecot.deliver_many(imap_user, [docx_message("x"), docx_message("y")])
    cursor = Cursor(dovecot.status(imap_user)["uidvalidity"], 0)
    move(mailbox_config, uids, "Processed")
    result = poll(mailbox_config, cursor)
    assert result.messages == [] and result.cursor.last_uid == uids[-1]


# --- UIDVALIDITY ------------------------------------------------------------------------------


def test_a_uidvalidity_change_is_detected_and_everything_is_returned_again(dovecot, imap_user, mailbox_config):
    dovecot.deliver_many(imap_user, [docx_message("a"), docx_message("b")])
    first = poll(mailbox_config)
    new_validity = dovecot.change_uidvalidity(imap_user)

    after = poll(mailbox_config, first.cursor)

    assert after.uidvalidity_changed is True
    assert after.cursor.uidvalidity == new_validity != first.cursor.uidvalidity
    # the caller dedupes by Message-ID + content: the same keys as before
    assert [d.dedupe_key for m in after.messages for d in m.documents] == [
        d.dedupe_key for m in first.messages for d in m.documents
    ]
    with pytest.raises(MailboxChanged, match="UIDVALIDITY"):
        move(mailbox_config, first.messages[0].uid, "Processed", uidvalidity=first.cursor.uidvalidity)
    # the stale UID is found again by Message-ID, then moved safely
    validity, uids = find_by_message_id(mailbox_config, "<" + first.messages[0].message_id + ">")
    assert validity == new_validity and uids == [after.messages[0].uid]
    assert move(mailbox_config, uids, "Processed", uidvalidity=validity) == uids
    assert poll(mailbox_config, after.cursor).uidvalidity_changed is False


def test_a_recreated_folder_reuses_uids_and_is_not_mistaken_for_an_old_cursor(dovecot, imap_user, mailbox_config):
    config = dataclasses.replace(mailbox_config, folder="Intake")
    with dovecot.connect(imap_user, folder=None) as box:
        box.folder.create("Intake")
    dovecot.deliver_many(imap_user, [docx_message("1"), docx_message("2"), docx_message("3")], folder="Intake")
    first = poll(config)
    assert first.cursor.last_uid == 3

    dovecot.recreate_folder(imap_user, "Intake")
    uid = dovecot.deliver(imap_user, docx_message("after the rebuild", message_id="<rebuilt@example.org>"), folder="Intake")
    assert uid == 1  # below the old cursor: trusting UIDs would miss it

    after = poll(config, first.cursor)
    assert after.uidvalidity_changed and [m.message_id for m in after.messages] == ["rebuilt@example.org"]


# --- senders, directives, content -------------------------------------------------------------


def test_allowed_and_unknown_senders(dovecot, imap_user, mailbox_config):
    config = dataclasses.replace(mailbox_config, allowed_senders=("ann@example.org", "@press.example"))
    dovecot.deliver_many(
        imap_user,
        [
            docx_message("a", sender="Ann <ANN@example.org>"),
            docx_message("b", sender="Bob <bob@press.example>"),
            docx_message("c", sender="Eve <eve@evil.example>"),
            docx_message("d", sender="Mallory <ann@example.org.evil.example>"),
        ],
    )
    result = poll(config)
    assert [(m.sender, m.status) for m in result.messages] == [
        ("ann@example.org", "ready"),
        ("bob@press.example", "ready"),
        ("eve@evil.example", "unknown_sender"),
        ("ann@example.org.evil.example", "unknown_sender"),
    ]
    unknown = [m.uid for m in result.messages if m.status == "unknown_sender"]
    assert mark(config, unknown, [KEYWORD_UNKNOWN_SENDER]) == unknown
    flags = {m["uid"]: m["flags"] for m in dovecot.messages(imap_user)}
    assert all(KEYWORD_UNKNOWN_SENDER in flags[uid] for uid in unknown)
    assert dovecot.status(imap_user)["messages"] == 4  # kept


def test_directives_in_subject_and_body_and_a_body_only_message(dovecot, imap_user, mailbox_config):
    html = (
        f"<p>[excerpt]The short version.[/excerpt]</p><p>{LONG_TEXT}</p>"
        "<p>[slug budget-2027] [date 2026-12-01 09:00]</p><p>-- <br>Ann Editor</p>"
    )
    dovecot.deliver_many(
        imap_user,
        [
            make_message(subject="Fwd: [category Politics] Budget 2027 [status pending]", text=None, html=html),
            make_message(subject="Thanks!", text="Thanks, got it.\n-- \nAnn"),
        ],
    )
    body_message, thanks = poll(mailbox_config).messages
    assert body_message.status == "ready" and body_message.title == "Budget 2027"
    assert body_message.directives.as_dict() == {
        "categories": ["Politics"],
        "status": "pending",
        "slug": "budget-2027",
        "excerpt": "The short version.",
        "date": "2026-12-01T09:00:00",
    }
    [doc] = body_message.documents
    assert doc.kind == "html" and doc.origin == "body" and "Ann Editor" not in doc.data.decode() and "word39" in doc.data.decode()
    assert thanks.status == "ignored" and "3 words" in thanks.reason


def test_malformed_mime_does_not_stop_the_other_messages(dovecot, imap_user, mailbox_config):
    import base64

    docx = make_docx("Survivor")
    broken = (
        b"From: ann@example.org\r\nSubject: no closing boundary\r\nMessage-ID: <broken@example.org>\r\n"
        b"MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=B\r\n\r\n"
        b"--B\r\nContent-Type: application/octet-stream; name=story.docx\r\nContent-Transfer-Encoding: base64\r\n\r\n"
        + base64.encodebytes(docx)
        + b"\r\n--B\r\nContent-Type: text/plain\r\nContent-Transfer-Encoding: base64\r\n\r\n@@@ not base64 @@@\r\n"
    )
    garbage = b"Subject: =?utf-8?q?broken =?=\r\nFrom: <<<>>>\r\nDate: yesterday-ish\r\nContent-Type: text/plain; charset=x-no-such-charset\r\n\r\n\xff\xfe\x00 bytes"
    no_type = b"From: ann@example.org\r\nSubject: plain\r\nMessage-ID: <plain@example.org>\r\n\r\n" + LONG_TEXT.encode() + b"\r\n"
    dovecot.deliver_many(imap_user, [broken, garbage, no_type, docx_message("fine", message_id="<fine@example.org>")])

    messages = poll(mailbox_config).messages

    assert len(messages) == 4
    first, second, third, fourth = messages
    assert [d.data for d in first.documents] == [docx] and any("malformed" in w for w in first.warnings)
    assert second.status == "ignored" and second.date is None and any("Date header" in w for w in second.warnings)
    assert third.status == "ready" and third.documents[0].kind == "html"
    assert fourth.status == "ready" and fourth.message_id == "fine@example.org"


def test_non_utf8_subjects_and_file_names(dovecot, imap_user, mailbox_config):
    doc = make_doc_bytes()
    raw = (
        b"From: =?windows-1252?q?Ren=E9_M=FCller?= <rene@example.org>\r\n"
        b"Subject: =?koi8-r?b?8NLJ18XU?= =?iso-8859-2?q?=BF=F3=B3w?= caf\xe9\r\n"
        b"Message-ID: <charsets@example.org>\r\nMIME-Version: 1.0\r\n"
        b"Content-Type: multipart/mixed; boundary=B\r\n\r\n"
        b"--B\r\nContent-Type: text/plain; charset=windows-1252\r\n\r\nCaf\xe9 \x93quoted\x94\r\n"
        b"--B\r\nContent-Type: application/msword\r\nContent-Disposition: attachment; filename*=iso-8859-1''r%E9sum%E9.doc\r\n"
        b"Content-Transfer-Encoding: base64\r\n\r\n" + __import__("base64").encodebytes(doc) + b"\r\n"
        b"--B\r\nContent-Type: application/octet-stream\r\nContent-Disposition: attachment; filename=\"Gr\xfc\xdfe.docx\"\r\n"
        b"Content-Transfer-Encoding: base64\r\n\r\n" + __import__("base64").encodebytes(make_docx("g")) + b"\r\n"
        b"--B\r\nContent-Type: " + DOCX_TYPE.encode() + b"; name=\"=?utf-8?b?5pel5pys6Kqe?=.docx\"\r\n"
        b"Content-Transfer-Encoding: base64\r\n\r\n" + __import__("base64").encodebytes(make_docx("j")) + b"\r\n--B--\r\n"
    )
    dovecot.deliver(imap_user, raw)
    [msg] = poll(mailbox_config).messages
    assert msg.sender_name == "René Müller"
    # a KOI8-R word, an ISO-8859-2 word (RFC 2047: no space between adjacent encoded words), raw
    # Windows-1252 bytes
    assert msg.subject == "Приветżółw café"
    assert msg.text.strip() == "Café “quoted”"
    assert [(d.filename, d.kind) for d in msg.documents] == [("résumé.doc", "doc"), ("Grüße.docx", "docx"), ("日本語.docx", "docx")]


@pytest.mark.slow
def test_a_25_mb_attachment(dovecot, imap_user, mailbox_config):
    big = make_docx("Big one", padding_bytes=25 * 1024 * 1024)
    dovecot.deliver(imap_user, make_message(attachments=[("big.docx", big, DOCX_TYPE)]))
    [msg] = poll(mailbox_config).messages
    [doc] = msg.documents
    assert doc.sha256 == content_hash(big) and doc.size == len(big) > 25 * 1024 * 1024 and doc.verified

    # a limit below the message's size: reported from its headers, not downloaded
    small_limit = dataclasses.replace(mailbox_config, max_message_bytes=10 * 1024 * 1024)
    result, session = logged_session(dovecot, imap_user, lambda: poll(small_limit))
    [too_large] = result.messages
    assert too_large.status == "too_large" and "MB" in too_large.reason and too_large.documents == []
    assert result.downloaded_bytes == 0
    assert session.body_count == 0 and session.bytes_out < 10_000


def test_a_message_with_ten_attachments(dovecot, imap_user, mailbox_config):
    docs = [(f"chapter-{n:02d}.docx", make_docx(f"Chapter {n}"), DOCX_TYPE) for n in range(1, 9)]
    others = [("photo.jpg", b"\xff\xd8\xff\xe0" + b"\0" * 5000, "image/jpeg"), ("brief.pdf", b"%PDF-1.7\n" * 100, "application/pdf")]
    dovecot.deliver(imap_user, make_message(attachments=docs + others))
    [msg] = poll(mailbox_config).messages
    assert [d.filename for d in msg.documents] == [name for name, _, _ in docs]
    assert len({d.sha256 for d in msg.documents}) == 8
    assert [(a.filename, a.content_type) for a in msg.other_attachments] == [("photo.jpg", "image/jpeg"), ("brief.pdf", "application/pdf")]


# --- errors and TLS ---------------------------------------------------------------------------


def test_a_wrong_password_fails_fast_and_clearly(mailbox_config, imap_commands):
    config = dataclasses.replace(mailbox_config, password="Wr0ng-Secret-123")
    with pytest.raises(AuthenticationFailed) as caught:
        poll(config)
    assert [name for name, _ in imap_commands].count("LOGIN") == 1  # at once: no second try
    error = caught.value
    assert error.code == "auth_failed" and error.transient is False
    assert f"refused the user name or password of {config.user}" in error.message
    for text in (str(error), repr(error), str(error.to_dict())):
        assert "Wr0ng-Secret-123" not in text
    report = check_mailbox(config)
    assert not report.ok and isinstance(report.error, AuthenticationFailed)
    assert not any("Wr0ng-Secret-123" in line for line in report.lines())


def test_a_changed_password(dovecot, imap_user, mailbox_config):
    poll(mailbox_config)
    dovecot.set_password(imap_user, "rotated-password")
    with pytest.raises(AuthenticationFailed):
        poll(mailbox_config)
    assert poll(dataclasses.replace(mailbox_config, password="rotated-password")).messages == []
    dovecot.set_password(imap_user, mailbox_config.password)


@pytest.mark.parametrize("tls", ["imaps", "starttls", "plain"])
def test_imaps_starttls_and_explicitly_allowed_plain(dovecot, imap_user, mailbox_config, tls):
    dovecot.deliver(imap_user, docx_message("over " + tls, message_id=f"<{tls}@example.org>"))
    port = dovecot.imaps_port if tls == "imaps" else dovecot.imap_port
    config = dataclasses.replace(mailbox_config, tls=tls, port=port, allow_plain=tls == "plain")
    [msg] = poll(config).messages
    assert msg.message_id == f"{tls}@example.org"


def test_tls_problems_are_configuration_errors(dovecot, mailbox_config):
    untrusted = dataclasses.replace(mailbox_config, ca_file=None)
    with pytest.raises(ConfigurationError, match="certificate of 127.0.0.1 could not be verified"):
        poll(untrusted)
    wrong_port = dataclasses.replace(mailbox_config, port=dovecot.imap_port)  # IMAPS spoken to the plain port
    with pytest.raises(ConfigurationError, match="TLS handshake"):
        poll(wrong_port)


def test_unreachable_server_and_missing_folder(mailbox_config, monkeypatch):
    import socket

    from tests.support import free_port

    attempts = []
    connect = socket.create_connection
    monkeypatch.setattr(socket, "create_connection", lambda address, *a, **k: attempts.append(address) or connect(address, *a, **k))
    with pytest.raises(ConnectionFailed, match="cannot reach the IMAP server"):
        poll(dataclasses.replace(mailbox_config, port=free_port()))
    assert len(attempts) == 1  # at once: no second try
    with pytest.raises(NotFound, match="the folder Nowhere does not exist"):
        poll(dataclasses.replace(mailbox_config, folder="Nowhere"))


def test_check_mailbox_reports_folders_and_creates_missing_ones(dovecot, imap_user, mailbox_config):
    dovecot.deliver_many(imap_user, [docx_message("a"), docx_message("b")])
    report = check_mailbox(mailbox_config)
    assert report.ok and report.logged_in and "MOVE" in report.capabilities
    inbox = report.folders[0]
    assert (inbox.name, inbox.messages, inbox.unseen) == ("INBOX", 2, 2)
    assert inbox.uidvalidity == dovecot.status(imap_user)["uidvalidity"]
    assert "no allowed senders: mail from anyone becomes a document" in report.warnings

    config = dataclasses.replace(mailbox_config, processed_folder="Copydesk/Done", failed_folder="Copydesk/Failed")
    missing = check_mailbox(config)
    assert not missing.ok and "missing folders: Copydesk/Done, Copydesk/Failed" in missing.warnings[0]
    assert ensure_folders(config) == ["Copydesk/Done", "Copydesk/Failed"]
    assert check_mailbox(config).ok


# --- moving and marking -----------------------------------------------------------------------


def test_move_to_processed_and_failed_never_deletes(dovecot, imap_user, mailbox_config, imap_commands):
    uids = dovecot.deliver_many(imap_user, [docx_message(f"m{n}", message_id=f"<m{n}@example.org>") for n in range(4)])
    result = poll(mailbox_config)
    validity = result.cursor.uidvalidity

    assert move(mailbox_config, uids[0], "Processed", uidvalidity=validity) == [uids[0]]
    assert move(mailbox_config, [uids[1], uids[2]], "Failed", uidvalidity=validity) == [uids[1], uids[2]]
    assert move(mailbox_config, uids[0], "Processed", uidvalidity=validity) == []  # already there: harmless

    [processed] = dovecot.messages(imap_user, "Processed")
    assert processed["message_id"] == "<m0@example.org>" and "\\Seen" in processed["flags"]
    failed = dovecot.messages(imap_user, "Failed")
    assert [m["message_id"] for m in failed] == ["<m1@example.org>", "<m2@example.org>"]
    assert not any("\\Seen" in m["flags"] for m in failed)  # failures stay unread, to be noticed
    assert [m["message_id"] for m in dovecot.messages(imap_user, "INBOX")] == ["<m3@example.org>"]
    assert folder_total(dovecot, imap_user) == 4
    names = {name for name, _ in imap_commands}
    assert "EXPUNGE" not in names and "DELETE" not in names
    assert any(name == "UID" and args.startswith("MOVE") for name, args in imap_commands)


def test_move_creates_a_missing_target_folder(dovecot, imap_user, mailbox_config):
    uid = dovecot.deliver(imap_user, docx_message("x"))
    assert move(mailbox_config, uid, "Archive/2026") == [uid]
    assert dovecot.status(imap_user, "Archive/2026")["messages"] == 1


def mark_seen(config, uids, *, seen: bool = True) -> list[int]:
    return mark(config, uids, [r"\Seen"], value=seen)


def test_mark_seen_and_unseen(dovecot, imap_user, mailbox_config):
    uid = dovecot.deliver(imap_user, docx_message("x"))
    assert mark_seen(mailbox_config, [uid]) == [uid]
    assert dovecot.status(imap_user)["unseen"] == 0
    assert mark_seen(mailbox_config, [uid], seen=False) == [uid]
    assert dovecot.status(imap_user)["unseen"] == 1
    assert mark_seen(mailbox_config, [uid + 100]) == []


def test_a_server_without_move_gets_copy_and_uid_expunge_of_exactly_those_uids(dovecot, imap_user, mailbox_config, monkeypatch):
    from app.integrations.mailbox import client

    original = client._refresh_capabilities

    def without_move(box):
        box.client.capabilities = tuple(c for c in original(box) if c != "MOVE")
        return box.client.capabilities

    monkeypatch.setattr(client, "_refresh_capabilities", without_move)
    uids = dovecot.deliver_many(imap_user, [docx_message("keep"), docx_message("move")])
    # another client marked the first one \Deleted and has not expunged it: it must survive our move
    with dovecot.connect(imap_user) as box:
        box.client.uid("STORE", str(uids[0]), "+FLAGS", r"(\Deleted)")
    assert move(mailbox_config, uids[1], "Processed") == [uids[1]]
    assert dovecot.status(imap_user)["messages"] == 1 and dovecot.status(imap_user, "Processed")["messages"] == 1



def test_a_message_missing_from_a_bulk_answer_is_fetched_alone(dovecot, imap_user, mailbox_config, monkeypatch):
    from imap_tools import BaseMailBox

    uids = dovecot.deliver_many(imap_user, [docx_message(f"m{n}") for n in range(3)])
    original = BaseMailBox.fetch

    def lossy(self, *args, **kwargs):  # as if imap-tools could not pair one response of a bulk FETCH
        for n, mail in enumerate(original(self, *args, **kwargs)):
            if not (len(kwargs.get("uid_list") or []) > 1 and n == 1):
                yield mail

    monkeypatch.setattr(BaseMailBox, "fetch", lossy)
    assert [m.uid for m in poll(mailbox_config).messages] == uids
