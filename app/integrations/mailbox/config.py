"""How to reach one mailbox and what to accept from it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, NamedTuple

from app.core.errors import ConfigurationError

TlsMode = Literal["imaps", "starttls", "plain"]
TLS_MODES = ("imaps", "starttls", "plain")
DEFAULT_PORTS = {"imaps": 993, "starttls": 143, "plain": 143}


class Cursor(NamedTuple):
    """Where the last poll stopped: UIDs only mean something together with their UIDVALIDITY."""

    uidvalidity: int
    last_uid: int


@dataclass(frozen=True)
class MailboxConfig:
    host: str
    user: str
    password: str = field(repr=False)
    port: int | None = None  # None: 993 for imaps, 143 for starttls and plain
    tls: TlsMode = "imaps"
    allow_plain: bool = False  # plain IMAP sends the password in clear: local tests only
    folder: str = "INBOX"
    processed_folder: str = "Processed"
    failed_folder: str = "Failed"
    # "editor@example.org" or "@example.org" (that domain exactly). Empty: anyone may send.
    allowed_senders: tuple[str, ...] = ()
    # A CA to trust instead of the system's (self-signed servers): a file, or PEM text kept in memory.
    ca_file: str | None = None
    ca_cert: str | None = field(default=None, repr=False)
    timeout: float = 30.0  # seconds, for connecting and for every answer of the server
    max_message_bytes: int = 60 * 1024 * 1024  # larger messages are reported, not downloaded
    min_body_words: int = 25  # a message without a Word attachment needs this much text to become a document
    max_messages_per_poll: int = 200  # the rest waits for the next poll (PollResult.more)
    # and no more message bytes than this per poll (at least one message), so a backlog of large
    # attachments is taken in slices instead of all in memory at once
    max_bytes_per_poll: int = 256 * 1024 * 1024
    fetch_batch_bytes: int = 16 * 1024 * 1024  # how much one FETCH command may bring back

    def __post_init__(self) -> None:
        if self.tls not in TLS_MODES:
            raise ConfigurationError(f"unknown TLS mode {self.tls!r}: use one of {', '.join(TLS_MODES)}")
        if self.tls == "plain" and not self.allow_plain:
            raise ConfigurationError(
                "plain IMAP would send the mailbox password unencrypted: use imaps or starttls "
                "(plain is only accepted when explicitly allowed, for local tests)"
            )
        if not self.host or not self.user or not self.password:
            raise ConfigurationError("a mailbox needs a host, a user and a password")
        port = self.port or DEFAULT_PORTS[self.tls]
        if not 0 < port < 65536:
            raise ConfigurationError(f"port {port} is not a TCP port")
        object.__setattr__(self, "port", port)
        if self.timeout <= 0:
            raise ConfigurationError("the timeout must be a positive number of seconds")
        if self.processed_folder == self.folder or self.failed_folder == self.folder:
            raise ConfigurationError("the processed and failed folders must differ from the watched folder")
        senders = tuple(_normalise_sender(s) for s in self.allowed_senders if s and s.strip())
        object.__setattr__(self, "allowed_senders", senders)

    def sender_allowed(self, address: str) -> bool:
        return sender_allowed(self.allowed_senders, address)


def sender_allowed(allowed: tuple[str, ...], address: str) -> bool:
    """True when `address` is listed, or its domain is listed as "@domain"; everyone when the list is empty."""
    if not allowed:
        return True
    address = address.strip().lower()
    if "@" not in address:
        return False
    domain = "@" + address.rsplit("@", 1)[1]
    return address in allowed or domain in allowed


def _normalise_sender(entry: str) -> str:
    entry = entry.strip().lower()
    if "@" not in entry:  # "example.org" means the domain
        entry = "@" + entry
    if entry.endswith("@") or entry.count("@") > 1:
        raise ConfigurationError(f"{entry!r} is neither an address nor an @domain")
    return entry
