"""One e-mail, as bytes, becomes an `IncomingMessage`: who sent it, the title and directives, and the
documents it carries. Pure: no network, never raises on a bad message (see `parse_message`).

What becomes a document (the rules an editor can rely on):
- every Word attachment, recognised by its name (.doc, .docx), its declared type, or its bytes (a
  nameless part or one called "scan.bin" that is a Word file counts; an .xls is not a .doc even
  though both are OLE2 files). Attachments forwarded inside a forwarded message count too. The text
  of the message is then only the covering note (its directives still apply);
- otherwise the body of the message, when it has at least `min_body_words` words once directives,
  the signature and anything after `[end]` are removed: HTML when the message has an HTML part,
  plain text otherwise (turned into paragraphs). Inline images of an HTML body are not kept;
- otherwise nothing: the message is `ignored` with a reason ("no Word attachment and 4 words of text"),
  the usual case of a forgotten attachment or a "thanks!" reply;
- automatic mail (out-of-office replies, bounces: `Auto-Submitted`, `multipart/report`) is always
  `ignored`, even when it carries the original attachment back.
A file named .docx whose bytes are not a Word file is still passed on (flagged `verified=False`), so
the conversion fails with its clear error and the editor finds the message in the failed folder.

Broken mail is read as far as possible: undecodable or unlabelled 8-bit headers and file names are
decoded as UTF-8, else as the message's own charset, else Windows-1252; MIME defects become warnings.
"""

from __future__ import annotations

import email
import hashlib
import html
import io
import re
import zipfile
from dataclasses import dataclass, field
from datetime import datetime
from email.header import decode_header
from email.message import Message
from email.utils import getaddresses, parsedate_to_datetime

from bs4 import BeautifulSoup, NavigableString

from app.documents.words import word_count
from app.integrations.notify.language import detect_language

from .config import sender_allowed
from .directives import END_MARKER, Directives, extract_directives, parse_subject

ZIP_MAGIC = b"PK\x03\x04"
OLE2_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
WORD_EXTENSIONS = {".docx": "docx", ".doc": "doc"}
WORD_TYPES = {
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document": "docx",
    "application/msword": "doc",
}
BODY_FILENAME = "message.html"
FALLBACK_CHARSET = "cp1252"

# The signature separator is "-- " on a line of its own (RFC 3676); clients that trim trailing
# spaces send "--". Longer rules ("--------") are content and are kept.
_SIGNATURE = re.compile(r"(?:^|\n)[ \t]*--[ \t\xa0]?[ \t]*(?:\r?\n|$)")
_ENCODED_WORD = re.compile(r"=\?[^?\s]+\?[bBqQ]\?[^?\s]*\?=")
_ADJACENT_WORDS = re.compile(r"(\?=)\s+(=\?)")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_MESSAGE_ID = re.compile(r"<([^<>\s]+)>")


def content_hash(data: bytes) -> str:
    """The identity of a manuscript's bytes (hex SHA-256), the same for mail and API uploads."""
    return hashlib.sha256(data).hexdigest()


def dedupe_key(message_id: str, content_sha256: str) -> str:
    """One document of one message: the same Message-ID and the same bytes give the same key, whether
    the message is fetched again after a crash, after a UIDVALIDITY change, or delivered twice."""
    return hashlib.sha256(f"{message_id}\n{content_sha256}".encode()).hexdigest()


@dataclass
class IncomingDocument:
    filename: str
    kind: str  # "docx" | "doc" | "html"
    content_type: str
    data: bytes = field(repr=False)
    sha256: str
    dedupe_key: str
    origin: str  # "attachment" | "body"
    verified: bool  # the bytes are what the name says (Word magic found, or HTML we made)

    @property
    def size(self) -> int:
        return len(self.data)


@dataclass
class OtherAttachment:
    """An attachment that is not a manuscript (images, PDFs…): listed, not used."""

    filename: str
    content_type: str
    size: int


@dataclass
class IncomingMessage:
    uid: int
    message_id: str  # without <>; synthetic ("…@copydesk.invalid") when the message had none
    sender: str  # the From address, lower case
    sender_name: str
    subject: str  # as sent, decoded
    title: str  # the subject without directives nor Re:/Fwd:
    date: datetime | None
    status: str  # ready | ignored | unknown_sender | too_large | unreadable
    reason: str = ""  # why it is not ready, in an editor's words
    documents: list[IncomingDocument] = field(default_factory=list)
    other_attachments: list[OtherAttachment] = field(default_factory=list)
    directives: Directives = field(default_factory=Directives)
    html: str = field(default="", repr=False)  # the body as received, decoded
    text: str = field(default="", repr=False)
    size: int = 0  # bytes, as the server counts them (RFC822.SIZE)
    flags: tuple[str, ...] = ()
    warnings: list[str] = field(default_factory=list)
    language: str | None = None  # Content-Language, else guessed from the text (for replies)
    references: list[str] = field(default_factory=list)  # Message-IDs of its thread (References), no <>

    @property
    def ready(self) -> bool:
        return self.status == "ready"


def parse_message(
    raw: bytes,
    *,
    uid: int = 0,
    flags: tuple[str, ...] = (),
    size: int | None = None,
    allowed_senders: tuple[str, ...] = (),
    min_body_words: int = 25,
) -> IncomingMessage:
    """Read one message. Never raises: what cannot be read gives status "unreadable" with the reason."""
    try:
        parsed = email.message_from_bytes(raw)
        return parse_email(
            parsed,
            uid=uid,
            flags=flags,
            size=len(raw) if size is None else size,
            allowed_senders=allowed_senders,
            min_body_words=min_body_words,
        )
    except Exception as exc:  # a message must never stop the intake of the others
        return unreadable_message(uid, exc, raw, size=size, flags=flags)


def unreadable_message(
    uid: int, exc: BaseException, raw: bytes = b"", *, size: int | None = None, flags: tuple[str, ...] = ()
) -> IncomingMessage:
    return IncomingMessage(
        uid=uid,
        message_id=f"unreadable-{content_hash(raw or str(uid).encode())[:40]}@copydesk.invalid",
        sender="",
        sender_name="",
        subject="",
        title="",
        date=None,
        status="unreadable",
        reason=f"the message could not be read ({exc.__class__.__name__}: {exc})",
        size=len(raw) if size is None else size,
        flags=flags,
    )


def parse_email(
    msg: Message,
    *,
    uid: int = 0,
    flags: tuple[str, ...] = (),
    size: int = 0,
    allowed_senders: tuple[str, ...] = (),
    min_body_words: int = 25,
    headers_only: bool = False,
) -> IncomingMessage:
    warnings: list[str] = []
    fallback = _declared_charset(msg)
    subject = " ".join(header_text(msg, "Subject", fallback).split())
    sender_name, sender = _sender(header_text(msg, "From", fallback))
    subject_directives, title = parse_subject(subject)
    incoming = IncomingMessage(
        uid=uid,
        message_id=_message_id(header_text(msg, "Message-ID", fallback)),
        sender=sender,
        sender_name=sender_name,
        subject=subject,
        title=title,
        date=_date(header_text(msg, "Date", fallback), warnings),
        status="ready",
        size=size,
        flags=flags,
        warnings=warnings,
    )
    if headers_only:
        incoming.directives = subject_directives
        return _finish(incoming, msg, allowed_senders)

    texts, htmls = [], []
    for index, part in enumerate(msg.walk()):
        if part.is_multipart():
            continue
        content_type = part.get_content_type()
        filename = part.get_filename()
        is_body = (
            content_type in ("text/plain", "text/html")
            and not filename
            and part.get_content_disposition() != "attachment"
        )
        if is_body:
            (htmls if content_type == "text/html" else texts).append(_part_text(part, fallback))
        else:
            _add_attachment(incoming, part, index, fallback)
    incoming.text = "\n".join(texts)
    incoming.html = "\n".join(htmls)

    body_directives, body_html, words = _clean_body(incoming.text, incoming.html)
    incoming.directives = subject_directives.merge(body_directives)
    warnings.extend(w for w in incoming.directives.warnings if w not in warnings)
    if not incoming.documents and words >= min_body_words:
        data = body_html.encode("utf-8")
        incoming.documents.append(_document(incoming, BODY_FILENAME, "html", "text/html; charset=utf-8", data, "body", True))
    if not incoming.documents:
        incoming.status = "ignored"
        incoming.reason = (
            f"no Word attachment (.doc, .docx) and {words} word{'s' if words != 1 else ''} of text "
            f"(a message needs {min_body_words} to become a document)"
        )
    if _is_automatic(msg, fallback):
        incoming.status = "ignored"
        incoming.reason = "an automatic message (out-of-office reply, delivery report): never published"
    return _finish(incoming, msg, allowed_senders)


def _is_automatic(msg: Message, fallback: str) -> bool:
    """Out-of-office replies and bounces (RFC 3834 Auto-Submitted, RFC 6522 reports): a bounce carries
    the original message, attachment included, and must not publish it a second time."""
    auto_submitted = header_text(msg, "Auto-Submitted", fallback).strip().lower()
    precedence = header_text(msg, "Precedence", fallback).strip().lower()
    return (
        (auto_submitted not in ("", "no"))
        or msg.get_content_type() == "multipart/report"
        or msg.get("X-Autoreply") is not None
        or precedence == "auto_reply"
    )


def _finish(incoming: IncomingMessage, msg: Message, allowed_senders: tuple[str, ...]) -> IncomingMessage:
    incoming.references = _MESSAGE_ID.findall(header_text(msg, "References") or header_text(msg, "In-Reply-To"))
    written = incoming.text or (BeautifulSoup(incoming.html, "lxml").get_text(" ") if incoming.html else "")
    incoming.language = detect_language(header_text(msg, "Content-Language"), f"{incoming.subject}\n{written}")
    defects = sorted({d.__class__.__name__ for part in msg.walk() for d in part.defects})
    if defects:
        incoming.warnings.append(f"the message is malformed ({', '.join(defects)}); read as far as possible")
    if not incoming.message_id:
        seed = "\n".join([incoming.sender, incoming.subject, str(incoming.date)] + [d.sha256 for d in incoming.documents])
        incoming.message_id = f"{content_hash(seed.encode())[:40]}@copydesk.invalid"
        incoming.warnings.append("the message has no Message-ID; one was derived from its sender, subject, date and content")
        for doc in incoming.documents:
            doc.dedupe_key = dedupe_key(incoming.message_id, doc.sha256)
    if not sender_allowed(allowed_senders, incoming.sender):
        incoming.status = "unknown_sender"
        incoming.reason = f"{incoming.sender or 'a message without a sender address'} is not an allowed sender"
    return incoming


# --- attachments ------------------------------------------------------------------------------


def sniff_word(data: bytes) -> str | None:
    """'docx' or 'doc' when the bytes are a Word file, else None (whatever the name says)."""
    if data.startswith(ZIP_MAGIC):
        try:
            with zipfile.ZipFile(io.BytesIO(data)) as archive:
                names = archive.namelist()
        except (zipfile.BadZipFile, ValueError, OSError):
            return None
        return "docx" if any(name.startswith("word/") for name in names) else None
    if data.startswith(OLE2_MAGIC):
        if "WordDocument".encode("utf-16-le") in data:
            return "doc"
        if "EncryptedPackage".encode("utf-16-le") in data:  # a password-protected .docx
            return "docx"
    return None


def _add_attachment(incoming: IncomingMessage, part: Message, index: int, fallback: str) -> None:
    content_type = part.get_content_type()
    filename = _filename(part, fallback)
    try:
        payload = part.get_payload(decode=True) or b""
    except Exception:  # a part email cannot decode at all
        payload = b""
    sniffed = sniff_word(payload)
    extension = re.search(r"\.[^.]+$", filename.lower())
    named = WORD_EXTENSIONS.get(extension.group(0) if extension else "") or WORD_TYPES.get(content_type)
    if not sniffed and not named:
        incoming.other_attachments.append(OtherAttachment(filename or f"attachment-{index}", content_type, len(payload)))
        return
    kind = sniffed or named
    if not filename:
        filename = f"attachment-{index}.{kind}"
        incoming.warnings.append(f"a Word attachment had no file name; it is called {filename}")
    if not payload:
        incoming.warnings.append(f"{filename} is empty or could not be decoded")
    elif not sniffed:
        incoming.warnings.append(f"{filename} is named like a Word document but its content is not one")
    digest = content_hash(payload)
    if any(doc.sha256 == digest for doc in incoming.documents):
        incoming.warnings.append(f"{filename} is attached twice; it is used once")
        return
    incoming.documents.append(_document(incoming, filename, kind, _word_type(kind), payload, "attachment", bool(sniffed)))


def _document(
    incoming: IncomingMessage, filename: str, kind: str, content_type: str, data: bytes, origin: str, verified: bool
) -> IncomingDocument:
    digest = content_hash(data)
    return IncomingDocument(
        filename=filename,
        kind=kind,
        content_type=content_type,
        data=data,
        sha256=digest,
        dedupe_key=dedupe_key(incoming.message_id, digest),
        origin=origin,
        verified=verified,
    )


def _word_type(kind: str) -> str:
    return next(t for t, k in WORD_TYPES.items() if k == kind)


def _filename(part: Message, fallback: str) -> str:
    try:
        raw = part.get_filename() or ""
    except Exception:
        raw = ""
    name = decode_words(raw, fallback) if raw else ""
    if "\ufffd" in name:  # unlabelled 8-bit bytes in the parameter: decode the raw headers ourselves
        probe = Message()
        for header in ("Content-Disposition", "Content-Type"):
            if part.get(header) is not None:
                probe[header] = header_text(part, header, fallback)
        name = probe.get_filename() or name
    name = _CONTROL.sub("", name.replace("\\", "/").rsplit("/", 1)[-1]).strip()  # no path, no control characters
    if len(name) > 180:
        stem, dot, ext = name.rpartition(".")
        name = stem[: 170] + dot + ext[:9] if dot else name[:180]
    return name


# --- body -------------------------------------------------------------------------------------


def _clean_body(text: str, html_body: str) -> tuple[Directives, str, int]:
    """Directives of the body; the body as HTML without directives, signature and [end] tail; its words
    (by ICU's word boundaries: Japanese, Chinese and Thai write no spaces between words)."""
    text_directives, text_body = extract_directives(_cut_tail(text))
    if not html_body.strip():
        return text_directives, _paragraphs(text_body), word_count(text_body)
    html_directives, cleaned = extract_directives(html_body, is_html=True)
    soup = BeautifulSoup(cleaned, "lxml")
    for tag in soup(["script", "style", "head", "title", "meta"]):
        tag.decompose()
    for signature in soup.select(".moz-signature, .gmail_signature, [data-smartmail=gmail_signature]"):
        signature.decompose()
    _cut_tree(soup)
    root = soup.body or soup
    fragment = root.decode_contents().strip()
    return text_directives.merge(html_directives), fragment, word_count(root.get_text(" "))


def _cut_tail(text: str) -> str:
    """The text before the signature separator or [end], whichever comes first."""
    cuts = [m.start() for m in (_SIGNATURE.search(text), END_MARKER.search(text)) if m]
    return text[: min(cuts)] if cuts else text


def _cut_tree(soup: BeautifulSoup) -> None:
    """The same cut in an HTML tree: the text node holding the marker keeps what precedes it and
    everything after it in document order is removed."""
    for node in soup.find_all(string=True):
        if type(node) is not NavigableString:  # comments, CDATA, doctype
            continue
        kept = _cut_tail(str(node))
        if kept == str(node):
            continue
        for following in list(node.next_elements):
            following.extract()
        node.replace_with(kept)
        return


def _paragraphs(text: str) -> str:
    blocks = [b.strip() for b in re.split(r"\n[ \t]*\n", text.replace("\r\n", "\n")) if b.strip()]
    return "\n".join("<p>" + "<br>\n".join(html.escape(line.strip()) for line in b.split("\n")) + "</p>" for b in blocks)


def _part_text(part: Message, fallback: str) -> str:
    try:
        payload = part.get_payload(decode=True) or b""
    except Exception:
        return ""
    return decode_bytes(payload, part.get_content_charset(), fallback)


# --- headers ----------------------------------------------------------------------------------


def decode_bytes(data: bytes, charset: str | None, fallback: str = FALLBACK_CHARSET) -> str:
    """Text from bytes whatever the sender declared: the declared charset if it works, else UTF-8,
    else the fallback (a legacy charset), else Latin-1 (which cannot fail)."""
    for candidate in (charset, "utf-8", fallback):
        if not candidate or candidate.lower() in ("unknown-8bit", "x-unknown"):
            continue
        try:
            return data.decode(candidate)
        except (LookupError, UnicodeDecodeError):
            continue
    return data.decode("latin-1")


def decode_words(value: str, fallback: str = FALLBACK_CHARSET) -> str:
    """A header value or parameter with RFC 2047 encoded words, unlabelled 8-bit bytes (carried by the
    email package as surrogates), or both, as text."""
    if any("\udc80" <= ch <= "\udcff" for ch in value):
        value = decode_bytes(value.encode("utf-8", "surrogateescape"), None, fallback)
    if "=?" not in value:
        return value

    def word(match: re.Match[str]) -> str:
        try:
            return "".join(
                chunk if isinstance(chunk, str) else decode_bytes(chunk, charset, fallback)
                for chunk, charset in decode_header(match.group(0))
            )
        except Exception:
            return match.group(0)

    return _ENCODED_WORD.sub(word, _ADJACENT_WORDS.sub(r"\1\2", value))


def header_text(msg: Message, name: str, fallback: str = FALLBACK_CHARSET) -> str:
    try:
        raw = msg.get(name)
    except Exception:
        return ""
    if raw is None:
        return ""
    if isinstance(raw, str):
        return decode_words(raw, fallback)
    # a Header object: the email package met 8-bit bytes it could not label
    chunks = []
    for chunk, charset in decode_header(raw):
        chunks.append(decode_words(decode_bytes(chunk, charset, fallback) if isinstance(chunk, bytes) else chunk, fallback))
    return "".join(chunks)


def _declared_charset(msg: Message) -> str:
    """The charset the sender's client used for the text: our best guess for unlabelled headers."""
    for part in msg.walk():
        charset = part.get_content_charset()
        if charset and charset.lower() not in ("us-ascii", "utf-8", "unknown-8bit"):
            try:
                "".encode(charset)
            except LookupError:
                continue
            return charset
    return FALLBACK_CHARSET


def _sender(value: str) -> tuple[str, str]:
    try:
        addresses = [(name, addr) for name, addr in getaddresses([value]) if addr]
    except Exception:
        addresses = []
    if not addresses:
        return "", ""
    name, address = addresses[0]
    return " ".join(name.split()), address.strip().lower()


def _message_id(value: str) -> str:
    return "".join(value.split()).strip("<>")


def _date(value: str, warnings: list[str]) -> datetime | None:
    if not value:
        return None
    try:
        return parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        warnings.append(f"the Date header {value[:60]!r} could not be read")
        return None
