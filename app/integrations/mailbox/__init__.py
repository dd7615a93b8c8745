"""Mailbox intake over IMAP (imap-tools): pure code, no Celery, no ORM.

    config = MailboxConfig(host="mail.example.org", user="desk@example.org", password=…,
                           allowed_senders=("@example.org",))
    check_mailbox(config).lines()                 # copydesk mailbox test SOURCE
    result = poll(config, cursor)                 # cursor = (uidvalidity, last_uid) kept per source, or None
    for message in result.messages:               # IncomingMessage, oldest first
        message.status                            # ready | ignored | unknown_sender | too_large | unreadable
        message.documents                         # IncomingDocument: .data, .kind (docx|doc|html), .sha256, .dedupe_key
        message.title, message.directives         # subject without directives; categories, tags, status, date, slug, excerpt
    # … record them, then store result.cursor; when each run ends:
    move(config, uid, config.processed_folder, uidvalidity=result.cursor.uidvalidity)   # or failed_folder

What an editor gets (details in `message` and `directives`):
- each Word attachment (.doc, .docx, by name, type or bytes) becomes one document; the message text
  is then the covering note;
- a message without one becomes one document from its body (HTML preferred, plain text otherwise)
  when it has at least `min_body_words` (25) words once directives and the signature are removed;
  shorter ones ("see attached", with the attachment forgotten) are `ignored`, with the reason;
- `[category …] [tags …] [status …] [date …] [slug …] [excerpt …]` in the subject or body are applied
  and removed from the title; the signature after a `-- ` line, and anything after `[end]`, is dropped;
  `Re:`/`Fwd:` prefixes are dropped from the title;
- mail from a sender not in `allowed_senders` is `unknown_sender`: kept and marked, never processed;
  out-of-office replies and bounces are `ignored` (a bounce carries the original attachment back);
- `move(…, processed_folder)` marks the message read; the failed folder keeps it unread, to be noticed;
- nothing is ever deleted: messages are moved (or, on servers without MOVE, copied and then removed
  from the watched folder only by UID EXPUNGE of exactly their UIDs).

Exactly once (for the code that stores intake in PostgreSQL):
- `poll` reads with BODY.PEEK (no \\Seen) from a read-only EXAMINE, and only UIDs above the cursor: a
  poll of an unchanged folder is LOGIN + STATUS + LOGOUT and downloads no message. Store the returned
  cursor only after the messages are recorded: a crash in between re-reads them, and the dedupe key
  absorbs them. One poll takes at most `max_messages_per_poll` messages and `max_bytes_per_poll`
  bytes (at least one message); `result.more` says the rest waits for the next poll.
- dedupe key of a document = `dedupe_key(message_id, sha256 of its bytes)` (`IncomingDocument.dedupe_key`),
  unique in the database: the same message fetched twice (crash before the cursor was saved, a
  UIDVALIDITY change, the same message delivered twice) never makes a second document.
- `content_hash(bytes)` (hex SHA-256, `IncomingDocument.sha256`) is the manuscript's identity shared
  with API uploads: the same file re-sent in a new message, or also uploaded through the API, finds the
  existing document (and its post) instead of starting a second run.
- when `uidvalidity_changed` is set, the old cursor's UIDs are void: everything in the folder is
  returned again and only the dedupe key tells what is new. `move`/`mark` take the `uidvalidity` the
  UIDs came with and refuse (MailboxChanged) when it no longer holds; `find_by_message_id` finds the
  message's current UID again, and `refile` finds and moves any number of messages by Message-ID in
  one session.
"""

from .client import (
    KEYWORD_FAILED,
    KEYWORD_IGNORED,
    KEYWORD_PROCESSED,
    KEYWORD_UNKNOWN_SENDER,
    FolderReport,
    MailboxChanged,
    MailboxReport,
    PollResult,
    Refiled,
    check_mailbox,
    ensure_folders,
    find_by_message_id,
    mark,
    move,
    poll,
    refile,
    session,
)
from .config import Cursor, MailboxConfig, sender_allowed
from .directives import Directives, extract_directives, parse_subject
from .message import (
    IncomingDocument,
    IncomingMessage,
    OtherAttachment,
    content_hash,
    dedupe_key,
    parse_message,
    sniff_word,
)

__all__ = [
    "KEYWORD_FAILED",
    "KEYWORD_IGNORED",
    "KEYWORD_PROCESSED",
    "KEYWORD_UNKNOWN_SENDER",
    "Cursor",
    "Directives",
    "FolderReport",
    "IncomingDocument",
    "IncomingMessage",
    "MailboxChanged",
    "MailboxConfig",
    "MailboxReport",
    "OtherAttachment",
    "PollResult",
    "Refiled",
    "check_mailbox",
    "content_hash",
    "dedupe_key",
    "ensure_folders",
    "extract_directives",
    "find_by_message_id",
    "mark",
    "move",
    "parse_message",
    "parse_subject",
    "poll",
    "refile",
    "sender_allowed",
    "session",
    "sniff_word",
]
