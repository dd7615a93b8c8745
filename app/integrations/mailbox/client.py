"""Talking to the IMAP server (imap-tools): check, poll, move, mark.

Each call opens one session (connect, TLS, LOGIN), does its work and logs out, so the callers hold no
connection between polls. Every failure comes out as an `app.core.errors` type whose message names
the host, the user or the folder, never the password.
"""

from __future__ import annotations

import imaplib
import re
import ssl
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import lru_cache

from imap_tools import BaseMailBox, MailBox, MailBoxStartTls, MailBoxUnencrypted
from imap_tools.errors import (
    MailboxFolderSelectError,
    MailboxFolderStatusError,
    MailboxLoginError,
    MailboxStarttlsError,
    UnexpectedCommandStatusError,
)
from imap_tools.utils import encode_folder

from app.core.errors import (
    AuthenticationFailed,
    ConfigurationError,
    ConnectionFailed,
    CopydeskError,
    NotFound,
    RemoteError,
    ServiceUnavailable,
    TimedOut,
)

from .config import Cursor, MailboxConfig
from .message import IncomingMessage, parse_email, unreadable_message

# Keywords (IMAP user flags) Copydesk sets on messages it keeps in place.
KEYWORD_UNKNOWN_SENDER = "$CopydeskUnknownSender"
KEYWORD_IGNORED = "$CopydeskIgnored"
KEYWORD_PROCESSED = "$CopydeskProcessed"
KEYWORD_FAILED = "$CopydeskFailed"

FETCH_BATCH_MESSAGES = 50


class MailboxChanged(RemoteError):
    """The folder's UIDVALIDITY is not the one the UIDs came with: they may now name other messages.
    Poll again (the poll reports `uidvalidity_changed`) and act on the new UIDs."""


@dataclass
class PollResult:
    cursor: Cursor  # give it to the next poll once the messages are safely recorded
    messages: list[IncomingMessage] = field(default_factory=list)
    uidvalidity_changed: bool = False  # UIDs of the old cursor are void: dedupe by Message-ID + content hash
    more: bool = False  # max_messages_per_poll or max_bytes_per_poll was reached: poll again right away
    folder_messages: int = 0  # messages in the folder (STATUS), new or not
    downloaded_bytes: int = 0  # message bytes fetched (0 when nothing was new)
    elapsed: float = 0.0


@dataclass
class FolderReport:
    name: str
    exists: bool
    messages: int = 0
    unseen: int = 0
    uidvalidity: int = 0
    uidnext: int = 0


@dataclass
class MailboxReport:
    """What `copydesk mailbox test SOURCE` shows."""

    host: str
    port: int
    tls: str
    user: str
    ok: bool = False
    logged_in: bool = False
    error: CopydeskError | None = None
    capabilities: tuple[str, ...] = ()
    folders: list[FolderReport] = field(default_factory=list)
    created: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    elapsed: float = 0.0

    def lines(self) -> list[str]:
        out = [f"{self.user} on {self.host}:{self.port} ({self.tls})"]
        if self.error is not None:
            out.append(f"  error: {self.error.message}")
        if self.logged_in:
            out.append("  login: ok")
        for folder in self.folders:
            if folder.exists:
                out.append(
                    f"  {folder.name}: {folder.messages} messages, {folder.unseen} unseen, "
                    f"UIDVALIDITY {folder.uidvalidity}, next UID {folder.uidnext}"
                )
            else:
                out.append(f"  {folder.name}: missing")
        out += [f"  created: {name}" for name in self.created]
        out += [f"  warning: {w}" for w in self.warnings]
        out.append(f"  {'OK' if self.ok else 'NOT OK'} in {self.elapsed * 1000:.0f} ms")
        return out


# --- the public operations --------------------------------------------------------------------


def check_mailbox(config: MailboxConfig, *, create_missing: bool = False) -> MailboxReport:
    """Log in and look at the three folders. Never raises for a remote problem: the report says it."""
    started = time.perf_counter()
    report = MailboxReport(host=config.host, port=config.port, tls=config.tls, user=config.user)
    try:
        with session(config) as box:
            report.logged_in = True
            report.capabilities = tuple(sorted(_refresh_capabilities(box)))
            for name in (config.folder, config.processed_folder, config.failed_folder):
                if not box.folder.exists(name) and create_missing and name != config.folder:
                    box.folder.create(name)
                    report.created.append(name)
                report.folders.append(_folder_report(box, name))
    except CopydeskError as exc:
        report.error = exc
    missing = [f.name for f in report.folders if not f.exists]
    if missing:
        report.warnings.append(
            f"missing folder{'s' if len(missing) > 1 else ''}: {', '.join(missing)}"
            + ("" if config.folder in missing else " (create them, or check with create_missing)")
        )
    if report.logged_in and "MOVE" not in report.capabilities:
        report.warnings.append("the server has no MOVE: messages are copied, then removed from the watched folder")
    if not config.allowed_senders:
        report.warnings.append("no allowed senders: mail from anyone becomes a document")
    report.ok = report.error is None and not missing
    report.elapsed = time.perf_counter() - started
    return report


def ensure_folders(config: MailboxConfig) -> list[str]:
    """Create the processed and failed folders when missing; the names created."""
    created = []
    with session(config) as box:
        for name in (config.processed_folder, config.failed_folder):
            if not box.folder.exists(name):
                box.folder.create(name)
                created.append(name)
    return created


def poll(config: MailboxConfig, cursor: Cursor | tuple[int, int] | None = None) -> PollResult:
    """The messages that arrived in the watched folder after `cursor`, read without setting \\Seen.

    With no new mail this is LOGIN + STATUS + LOGOUT: no SELECT, no FETCH, no byte of any message.
    Otherwise the folder is EXAMINEd (read-only), the new UIDs and their sizes are fetched (no body),
    then the messages themselves with BODY.PEEK[], in batches of at most `fetch_batch_bytes`; messages
    above `max_message_bytes` are reported as `too_large` from their headers only.

    When the folder's UIDVALIDITY differs from the cursor's, every message in it is returned again and
    `uidvalidity_changed` is set: the caller must dedupe by Message-ID + content hash, not by UID.
    """
    started = time.perf_counter()
    previous = Cursor(*cursor) if cursor else None
    with session(config) as box:
        status = _status(box, config.folder)
        uidvalidity, uidnext = status["UIDVALIDITY"], status["UIDNEXT"]
        changed = previous is not None and previous.uidvalidity != uidvalidity
        last_uid = previous.last_uid if previous and not changed else 0
        result = PollResult(
            cursor=Cursor(uidvalidity, last_uid), uidvalidity_changed=changed, folder_messages=status["MESSAGES"]
        )
        if uidnext - 1 > last_uid:  # something arrived since the cursor (it may have gone again)
            _select(box, config.folder, readonly=True)
            sizes = _new_uids_and_sizes(box, last_uid)
            wanted = _within_budget(sorted(sizes)[: config.max_messages_per_poll], sizes, config)
            result.more = len(wanted) < len(sizes)
            result.messages = _fetch_messages(box, config, wanted, sizes)
            result.downloaded_bytes = sum(sizes[uid] for uid in wanted if sizes[uid] <= config.max_message_bytes)
            if result.more:
                result.cursor = Cursor(uidvalidity, wanted[-1])
            else:
                result.cursor = Cursor(uidvalidity, max([last_uid, uidnext - 1, *wanted]))
    result.elapsed = time.perf_counter() - started
    return result


def move(
    config: MailboxConfig,
    uids: int | Iterable[int],
    folder: str,
    *,
    uidvalidity: int | None = None,
    seen: bool | None = None,
) -> list[int]:
    """Move messages out of the watched folder into `folder` (MOVE; without it COPY, then \\Deleted and
    UID EXPUNGE of exactly those UIDs; without UIDPLUS the original stays, marked). Nothing else is ever
    expunged. Creates `folder` when missing. Returns the UIDs that were there (moving twice is harmless).
    With `uidvalidity`, refuses (MailboxChanged) when the UIDs no longer mean the same messages.
    `seen`: set \\Seen first; by default only for the processed folder (failures stay unread, to be noticed)."""
    if seen is None:
        seen = folder == config.processed_folder
    with session(config) as box:
        present = _present_uids(box, config.folder, uids, uidvalidity)
        if present:
            _move_selected(box, config, present, folder, seen=seen)
        return present


def find_by_message_id(config: MailboxConfig, message_id: str, folder: str | None = None) -> tuple[int, list[int]]:
    """(UIDVALIDITY, UIDs) of the messages of a folder (the watched one by default) with this Message-ID:
    how to find a message again when its stored UID went stale (MailboxChanged)."""
    with session(config) as box:
        uidvalidity = _select(box, folder or config.folder, readonly=True)
        return uidvalidity, _uids_by_message_id(box, message_id)


@dataclass
class Refiled:
    """Where `refile` found a message: its UID in the folder it was moved out of (with that folder's
    UIDVALIDITY), or, when it was not there, whether it was already in the target folder."""

    uidvalidity: int = 0
    uid: int | None = None
    in_target: bool = False


def refile(
    config: MailboxConfig, message_ids: Iterable[str], folder: str, target: str, *, seen: bool | None = None
) -> dict[str, Refiled]:
    """Find messages by Message-ID in `folder` and move them to `target`, all in one session (one
    login, whatever their number): for messages whose stored UIDs went stale (MailboxChanged), or
    that were filed under the failed folder and belong with the processed one. A message no longer
    in `folder` is looked for in `target` (moved there by an earlier try whose record was lost).
    Keyed by the Message-IDs as given. `seen` as for `move`."""
    if seen is None:
        seen = target == config.processed_folder
    found: dict[str, Refiled] = {}
    with session(config) as box:
        uidvalidity = _select(box, folder, readonly=False)
        for message_id in dict.fromkeys(message_ids):
            uids = _uids_by_message_id(box, message_id)
            found[message_id] = Refiled(uidvalidity, uids[0] if uids else None)
        present = sorted({entry.uid for entry in found.values() if entry.uid is not None})
        if present:
            _move_selected(box, config, present, target, seen=seen)
        missing = [message_id for message_id, entry in found.items() if entry.uid is None]
        if missing and box.folder.exists(target):
            _select(box, target, readonly=True)
            for message_id in missing:
                found[message_id].in_target = bool(_uids_by_message_id(box, message_id))
    return found


def mark(
    config: MailboxConfig,
    uids: int | Iterable[int],
    flags: Iterable[str],
    *,
    value: bool = True,
    uidvalidity: int | None = None,
) -> list[int]:
    r"""Set (or clear) flags or keywords (e.g. KEYWORD_UNKNOWN_SENDER, \Seen) on messages of the watched
    folder; the UIDs that were there. Unlike imap-tools' flag(), never EXPUNGEs."""
    flags = list(flags)
    with session(config) as box:
        present = _present_uids(box, config.folder, uids, uidvalidity)
        if present:
            command = ("+" if value else "-") + "FLAGS.SILENT"
            _check(
                box.client.uid("STORE", ",".join(map(str, present)), command, f"({' '.join(flags)})"),
                "setting flags",
            )
        return present


# --- session and errors ------------------------------------------------------------------------


@contextmanager
def session(config: MailboxConfig) -> Iterator[BaseMailBox]:
    """A logged-in imap-tools mailbox with no folder selected; errors translated, always logged out."""
    box = None
    try:
        box = _connect(config)
        _login(box, config)
        yield box
    except CopydeskError:
        raise
    except Exception as exc:
        translated = _translate(exc, config)
        if translated is None:
            raise
        raise translated from None
    finally:
        if box is not None:
            _close(box)


def _connect(config: MailboxConfig) -> BaseMailBox:
    if config.tls == "plain":
        return MailBoxUnencrypted(config.host, config.port, timeout=config.timeout)
    context = _ssl_context(config.ca_file, config.ca_cert)
    if config.tls == "imaps":
        return MailBox(config.host, config.port, timeout=config.timeout, ssl_context=context)
    return MailBoxStartTls(config.host, config.port, timeout=config.timeout, ssl_context=context)


@lru_cache(maxsize=16)
def _ssl_context(ca_file: str | None, ca_cert: str | None) -> ssl.SSLContext:
    # Cached: loading the system's CA store costs more than a whole unchanged poll. A CA given as PEM
    # text is loaded from memory: never written to a file another process could replace.
    if ca_file or ca_cert:
        return ssl.create_default_context(cafile=ca_file, cadata=ca_cert)
    return ssl.create_default_context()


def _login(box: BaseMailBox, config: MailboxConfig) -> None:
    if (config.user + config.password).isascii():
        box.login(config.user, config.password, initial_folder=None)
    else:
        # LOGIN only takes ASCII; AUTHENTICATE PLAIN carries UTF-8 (RFC 4616)
        try:
            box.login_utf8(config.user, config.password, initial_folder=None)
        except imaplib.IMAP4.abort:
            raise
        except imaplib.IMAP4.error as exc:
            raise MailboxLoginError(command_result=("NO", [str(exc).encode()]), expected="OK") from None


def _refresh_capabilities(box: BaseMailBox) -> tuple[str, ...]:
    """imaplib keeps the capabilities announced before login, but servers announce more after it
    (Dovecot adds MOVE and UIDPLUS), in an answer imaplib drops: ask again (only where it matters)."""
    _, data = _check(box.client.capability(), "asking for capabilities")
    box.client.capabilities = tuple(data[-1].decode().upper().split())
    return box.client.capabilities


def _close(box: BaseMailBox) -> None:
    try:
        box.logout()
    except Exception:  # the connection may already be gone; nothing to save
        try:
            box.client.shutdown()
        except Exception:
            pass


def _translate(exc: BaseException, config: MailboxConfig) -> CopydeskError | None:
    where = f"{config.host}:{config.port}"
    if isinstance(exc, MailboxLoginError):
        said = _server_text(exc, config)
        if "UNAVAILABLE" in said.upper():
            return ServiceUnavailable(f"{where} cannot log {config.user} in right now: {said}", retry_after=60)
        if "PRIVACYREQUIRED" in said.upper() or "LOGINDISABLED" in said.upper():
            return ConfigurationError(f"{where} refuses a password over an unencrypted connection: use imaps or starttls")
        return AuthenticationFailed(f"{where} refused the user name or password of {config.user} ({said})")
    if isinstance(exc, MailboxStarttlsError):
        return ConfigurationError(f"{where} does not offer STARTTLS: use imaps (usually port 993)")
    if isinstance(exc, (MailboxFolderSelectError, MailboxFolderStatusError)):
        said = _server_text(exc, config)
        if "NONEXISTENT" in said.upper() or "doesn't exist" in said:
            return NotFound(f"the folder {_folder_of(exc)} does not exist for {config.user} on {config.host}")
        return RemoteError(f"{where} refused to open a folder: {said}")
    if isinstance(exc, UnexpectedCommandStatusError):
        return RemoteError(f"{where} refused a command: {_server_text(exc, config)}")
    if isinstance(exc, ssl.SSLCertVerificationError):
        return ConfigurationError(
            f"the TLS certificate of {config.host} could not be verified ({exc.verify_message}): "
            "fix the server's certificate or configure the CA that signed it"
        )
    if isinstance(exc, ssl.SSLError):
        return ConfigurationError(
            f"the TLS handshake with {where} failed ({exc.reason or exc}): is {config.port} the port for {config.tls}?"
        )
    if isinstance(exc, TimeoutError):
        return TimedOut(f"{where} did not answer within {config.timeout:g} s", retry_after=config.timeout)
    if isinstance(exc, imaplib.IMAP4.abort):
        return ConnectionFailed(f"the connection to {where} broke: {_scrub(str(exc), config)}")
    if isinstance(exc, imaplib.IMAP4.error):
        text = _scrub(str(exc), config)
        if "STARTTLS" in text.upper() or "TLS not supported" in text:
            return ConfigurationError(f"{where} does not offer STARTTLS: use imaps (usually port 993)")
        return RemoteError(f"{where}: {text}")
    if isinstance(exc, OSError):
        reason = exc.strerror or exc.__class__.__name__
        return ConnectionFailed(f"cannot reach the IMAP server {where}: {_scrub(str(reason), config)}")
    return None


def _server_text(exc: UnexpectedCommandStatusError, config: MailboxConfig) -> str:
    data = exc.command_result[1] if len(exc.command_result) > 1 else []
    parts = [item.decode(errors="replace") if isinstance(item, bytes) else str(item) for item in data or [] if item]
    return _scrub(" ".join(parts).strip() or str(exc.command_result[0]), config)


def _scrub(text: str, config: MailboxConfig) -> str:
    return text.replace(config.password, "***") if config.password else text


def _folder_of(exc: UnexpectedCommandStatusError) -> str:
    return str(getattr(exc, "folder", "")) or "asked for"


def _check(result: tuple, doing: str) -> tuple:
    if result[0] != "OK":
        raise UnexpectedCommandStatusError(command_result=result, expected=f"OK while {doing}")
    return result


# --- helpers ----------------------------------------------------------------------------------


def _status(box: BaseMailBox, folder: str) -> dict[str, int]:
    try:
        return box.folder.status(folder, ["MESSAGES", "UIDNEXT", "UIDVALIDITY"])
    except MailboxFolderStatusError as exc:
        exc.folder = folder
        raise


def _select(box: BaseMailBox, folder: str, *, readonly: bool) -> int:
    """SELECT (or EXAMINE) a folder; its UIDVALIDITY, from the server's answer."""
    try:
        box.folder.set(folder, readonly=readonly)
    except MailboxFolderSelectError as exc:
        exc.folder = folder
        raise
    _, data = box.client.response("UIDVALIDITY")
    return int(data[0]) if data and data[0] else 0


def _folder_report(box: BaseMailBox, name: str) -> FolderReport:
    try:
        status = box.folder.status(name, ["MESSAGES", "UNSEEN", "UIDVALIDITY", "UIDNEXT"])
    except MailboxFolderStatusError:
        return FolderReport(name=name, exists=False)
    return FolderReport(
        name=name,
        exists=True,
        messages=status.get("MESSAGES", 0),
        unseen=status.get("UNSEEN", 0),
        uidvalidity=status.get("UIDVALIDITY", 0),
        uidnext=status.get("UIDNEXT", 0),
    )


def _present_uids(
    box: BaseMailBox, folder: str, uids: int | Iterable[int], uidvalidity: int | None
) -> list[int]:
    wanted = sorted({int(uids)} if isinstance(uids, (int, str)) else {int(u) for u in uids})
    current = _select(box, folder, readonly=False)
    if uidvalidity is not None and current != uidvalidity:
        raise MailboxChanged(
            f"the folder {folder} was rebuilt (UIDVALIDITY {uidvalidity} is now {current}): "
            "its messages must be found again by a new poll"
        )
    if not wanted:
        return []
    found = box.uids("UID " + ",".join(map(str, wanted)))
    return sorted(int(uid) for uid in found if int(uid) in wanted)


def _move_selected(box: BaseMailBox, config: MailboxConfig, uids: list[int], folder: str, *, seen: bool) -> None:
    """Move these UIDs of the selected folder (selected read-write) to `folder`; see `move`."""
    if not box.folder.exists(folder):
        box.folder.create(folder)
    uid_set = ",".join(map(str, uids))
    if seen:
        _check(box.client.uid("STORE", uid_set, "+FLAGS.SILENT", r"(\Seen)"), "marking messages read")
    capabilities = _refresh_capabilities(box)
    if "MOVE" in capabilities:
        _check(box.client.uid("MOVE", uid_set, encode_folder(folder)), f"moving messages to {folder}")
    else:
        _check(box.client.uid("COPY", uid_set, encode_folder(folder)), f"copying messages to {folder}")
        if "UIDPLUS" in capabilities:
            _check(box.client.uid("STORE", uid_set, "+FLAGS.SILENT", r"(\Deleted)"), "flagging moved messages")
            _check(box.client.uid("EXPUNGE", uid_set), "removing moved messages")
        else:
            keyword = KEYWORD_FAILED if folder == config.failed_folder else KEYWORD_PROCESSED
            _check(box.client.uid("STORE", uid_set, "+FLAGS.SILENT", f"(\\Seen {keyword})"), "marking copied messages")


def _uids_by_message_id(box: BaseMailBox, message_id: str) -> list[int]:
    """The UIDs in the selected folder of the messages with exactly this Message-ID."""
    wanted = "".join(message_id.split()).strip("<>")
    # SEARCH HEADER matches substrings: confirm each candidate's exact Message-ID
    quoted = wanted.replace("\\", "\\\\").replace('"', '\\"')
    candidates = box.uids(f'HEADER Message-ID "{quoted}"'.encode(), charset=None)
    uids = []
    for mail in box.fetch(uid_list=candidates, mark_seen=False, headers_only=True, bulk=True) if candidates else ():
        found = "".join(str(mail.headers.get("message-id", ("",))[0]).split()).strip("<>")
        if found == wanted and mail.uid:
            uids.append(int(mail.uid))
    return sorted(uids)


_UID = re.compile(rb"\bUID (\d+)")
_SIZE = re.compile(rb"\bRFC822\.SIZE (\d+)")


def _new_uids_and_sizes(box: BaseMailBox, last_uid: int) -> dict[int, int]:
    """UID -> size of the messages above last_uid, without any of their content."""
    result = _check(box.client.uid("FETCH", f"{last_uid + 1}:*", "(UID RFC822.SIZE)"), "listing new messages")
    sizes = {}
    for line in result[1]:
        line = line[0] if isinstance(line, tuple) else line
        uid, size = _UID.search(line or b""), _SIZE.search(line or b"")
        # "n:*" always names the last message, even when its UID is below n
        if uid and size and int(uid.group(1)) > last_uid:
            sizes[int(uid.group(1))] = int(size.group(1))
    return sizes


def _fetch_messages(
    box: BaseMailBox, config: MailboxConfig, uids: list[int], sizes: dict[int, int]
) -> list[IncomingMessage]:
    small = [uid for uid in uids if sizes[uid] <= config.max_message_bytes]
    large = [uid for uid in uids if sizes[uid] > config.max_message_bytes]
    by_uid: dict[int, IncomingMessage] = {}
    rules = {"allowed_senders": config.allowed_senders, "min_body_words": config.min_body_words}
    for batch in _batches(small, sizes, config.fetch_batch_bytes):
        _fetch_into(by_uid, box, batch, sizes, rules)
        # A message missing from a bulk answer (a response imap-tools could not pair, e.g. beside an
        # unsolicited FLAGS update) is asked for alone; one still missing was expunged meanwhile.
        for uid in [uid for uid in batch if uid not in by_uid]:
            _fetch_into(by_uid, box, [uid], sizes, rules)
    if large:
        for mail in box.fetch(uid_list=[str(uid) for uid in large], mark_seen=False, headers_only=True, bulk=True):
            uid = int(mail.uid or 0)
            if uid in by_uid or uid not in sizes:
                continue
            incoming = parse_email(mail.obj, uid=uid, flags=mail.flags, size=sizes[uid], headers_only=True, **rules)
            if incoming.status == "ready":
                incoming.status = "too_large"
                incoming.reason = (
                    f"the message is {sizes[uid] / 1048576:.1f} MB; messages above "
                    f"{config.max_message_bytes / 1048576:.0f} MB are not downloaded"
                )
            by_uid[uid] = incoming
    return [by_uid[uid] for uid in sorted(by_uid)]


def _fetch_into(by_uid: dict, box: BaseMailBox, uids: list[int], sizes: dict[int, int], rules: dict) -> None:
    for mail in box.fetch(uid_list=[str(uid) for uid in uids], mark_seen=False, bulk=True):
        uid = int(mail.uid or 0)
        if uid in by_uid or uid not in uids:  # some servers repeat FETCH responses
            continue
        try:
            by_uid[uid] = parse_email(mail.obj, uid=uid, flags=mail.flags, size=sizes[uid], **rules)
        except Exception as exc:  # never let one message stop the others
            by_uid[uid] = unreadable_message(uid, exc, size=sizes[uid], flags=mail.flags)


def _within_budget(uids: list[int], sizes: dict[int, int], config: MailboxConfig) -> list[int]:
    """The first UIDs whose bytes fit in max_bytes_per_poll (always at least one); messages above
    max_message_bytes cost nothing (only their headers are read)."""
    kept, total = [], 0
    for uid in uids:
        cost = sizes[uid] if sizes[uid] <= config.max_message_bytes else 0
        if kept and total + cost > config.max_bytes_per_poll:
            break
        kept.append(uid)
        total += cost
    return kept


def _batches(uids: list[int], sizes: dict[int, int], max_bytes: int) -> Iterator[list[int]]:
    batch: list[int] = []
    total = 0
    for uid in uids:
        if batch and (total + sizes[uid] > max_bytes or len(batch) >= FETCH_BATCH_MESSAGES):
            yield batch
            batch, total = [], 0
        batch.append(uid)
        total += sizes[uid]
    if batch:
        yield batch
