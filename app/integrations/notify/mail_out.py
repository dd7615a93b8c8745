"""Replies by e-mail: the message (stdlib `email`) and its submission over SMTP (stdlib `smtplib`:
STARTTLS or implicit TLS, then login). Pure: no database; errors from app.core.errors.

A reply is an automatic answer in the sender's thread: `In-Reply-To` and `References` name the
message it answers, `Auto-Submitted: auto-replied` (RFC 3834) keeps other robots, and Copydesk's own
intake, from answering it in turn.

`send` hands the message over in the order SMTP allows: connect, TLS, login, MAIL FROM, RCPT TO, and
only then DATA. Everything before DATA can fail and be tried again without a second message reaching
anyone; `before_data` lets the caller record, durably, that the hand-over starts. A failure during
DATA with an answer from the server is a refusal (nothing was delivered); a connection lost or timed
out during DATA leaves it unknown whether the server took the message (DeliveryUnknown).
"""

from __future__ import annotations

import smtplib
import ssl
from collections.abc import Callable
from dataclasses import dataclass, field
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import formataddr, formatdate
from ipaddress import ip_address
from pathlib import Path

from app.core.errors import (
    AuthenticationFailed,
    ConfigurationError,
    ConnectionFailed,
    CopydeskError,
    PermanentError,
    RemoteError,
    ServiceUnavailable,
    TimedOut,
)

TLS_MODES = ("starttls", "ssl", "plain")
DEFAULT_PORTS = {"starttls": 587, "ssl": 465, "plain": 25}


class DeliveryUnknown(PermanentError):
    """The connection ended while the server was taking the message: it may or may not have it."""

    code = "delivery_unknown"


@dataclass(frozen=True)
class SmtpConfig:
    host: str
    port: int | None = None  # None: 587 (starttls), 465 (ssl), 25 (plain)
    tls: str = "starttls"
    user: str | None = None
    password: str | None = field(default=None, repr=False)
    timeout: float = 30.0
    ca_file: str | None = None  # a CA bundle to trust instead of the system's (a private CA)

    def __post_init__(self) -> None:
        if self.tls not in TLS_MODES:
            raise ConfigurationError(f"unknown SMTP TLS mode {self.tls!r}: use one of {', '.join(TLS_MODES)}")
        object.__setattr__(self, "port", self.port or DEFAULT_PORTS[self.tls])
        if bool(self.user) != bool(self.password):
            raise ConfigurationError("an SMTP login needs both a user and a password")
        if self.tls == "plain" and self.user and not _is_loopback(self.host):
            raise ConfigurationError(
                "SMTP_TLS=plain would send the SMTP password unencrypted: use starttls or ssl "
                "(plain with a login is only accepted for a relay on this machine)"
            )

    @classmethod
    def from_settings(cls, settings) -> SmtpConfig | None:
        """The configured server (SMTP_*), or None when SMTP_HOST is not set."""
        if not settings.smtp_host:
            return None
        return cls(
            host=settings.smtp_host,
            port=settings.smtp_port,
            tls=settings.smtp_tls,
            user=settings.smtp_user,
            password=settings.smtp_password.get_secret_value() if settings.smtp_password else None,
            timeout=settings.smtp_timeout,
            ca_file=str(settings.smtp_ca_file) if settings.smtp_ca_file else None,
        )


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ip_address(host).is_loopback
    except ValueError:
        return False


def build_reply(
    *,
    from_address: str,
    from_name: str,
    to: str,
    subject: str,
    text: str,
    html: str,
    message_id: str,
    in_reply_to: str | None = None,
    references: list[str] | tuple[str, ...] = (),
    language: str | None = None,
) -> EmailMessage:
    """The reply: text and an HTML alternative, threaded under `in_reply_to` (Message-IDs with or
    without <>), marked as an automatic reply."""
    message = EmailMessage()
    message["From"] = formataddr((from_name, from_address)) if from_name else from_address
    message["To"] = to
    message["Subject"] = subject
    message["Date"] = formatdate(localtime=False, usegmt=True)
    message["Message-ID"] = _bracketed(message_id)
    if in_reply_to:
        message["In-Reply-To"] = _bracketed(in_reply_to)
        chain = [_bracketed(r) for r in references if r] + [_bracketed(in_reply_to)]
        message["References"] = " ".join(dict.fromkeys(chain))
    message["Auto-Submitted"] = "auto-replied"
    message["X-Auto-Response-Suppress"] = "All"  # Exchange: no out-of-office answers to this
    message.set_content(text)
    message.add_alternative(html, subtype="html")
    if language:  # after the content: setting the content clears every Content-* header
        message["Content-Language"] = language
    return message


def _bracketed(message_id: str) -> str:
    return f"<{message_id.strip().strip('<>')}>"


def domain_of(address: str) -> str:
    return address.rsplit("@", 1)[-1].strip().lower() or "localhost"


def send(config: SmtpConfig, message: EmailMessage, *, before_data: Callable[[], None] | None = None) -> str:
    """Submit `message` to its one recipient (To) from its From address. Returns the server's answer
    to DATA. Transient errors (connection, timeout, 4xx) may be tried again; permanent ones
    (login refused, 5xx, TLS) not; DeliveryUnknown when the connection ended during DATA."""
    sender = _address(message["From"])
    recipient = _address(message["To"])
    try:
        smtp = _connect(config)
        try:
            return _submit(smtp, config, message, sender, recipient, before_data)
        finally:
            _close(smtp)
    except CopydeskError:
        raise
    except smtplib.SMTPAuthenticationError as exc:
        raise AuthenticationFailed(
            f"the SMTP server {config.host} refused the login of {config.user}: {_answer(exc)}"
        ) from None
    except smtplib.SMTPNotSupportedError as exc:
        raise ConfigurationError(f"the SMTP server {config.host} does not support this: {exc}") from None
    except smtplib.SMTPRecipientsRefused as exc:
        code, answer = next(iter(exc.recipients.values()))
        raise _refusal(config, code, answer, f"refused the recipient {recipient}") from None
    except smtplib.SMTPResponseException as exc:  # sender refused, DATA refused, other answers
        raise _refusal(config, exc.smtp_code, exc.smtp_error, "refused the message") from None
    except ssl.SSLCertVerificationError as exc:
        raise ConfigurationError(
            f"the certificate of the SMTP server {config.host} is not trusted: {exc.verify_message or exc} "
            "(SMTP_CA_FILE names a CA to trust)"
        ) from None
    except TimeoutError:
        raise TimedOut(
            f"the SMTP server {config.host}:{config.port} did not answer in {config.timeout:g} s"
        ) from None
    except (smtplib.SMTPServerDisconnected, smtplib.SMTPConnectError, OSError) as exc:
        raise ConnectionFailed(
            f"could not talk to the SMTP server {config.host}:{config.port}: {exc}"
        ) from None


def _submit(
    smtp: smtplib.SMTP,
    config: SmtpConfig,
    message: EmailMessage,
    sender: str,
    recipient: str,
    before_data: Callable[[], None] | None,
) -> str:
    if config.user:
        smtp.login(config.user, config.password or "")
    options = _mail_options(smtp, sender, recipient)
    code, answer = smtp.mail(sender, options)
    if code != 250:
        raise smtplib.SMTPSenderRefused(code, answer, sender)
    code, answer = smtp.rcpt(recipient)
    if code not in (250, 251):
        raise smtplib.SMTPRecipientsRefused({recipient: (code, answer)})
    if before_data is not None:
        before_data()
    data = message.as_bytes(policy=message.policy.clone(linesep="\r\n", utf8="SMTPUTF8" in options))
    try:
        code, answer = smtp.data(data)
    except smtplib.SMTPResponseException:
        raise  # the server answered: it refused the message
    except OSError as exc:  # disconnected, timed out, TLS broken: the server may have the message
        raise DeliveryUnknown(
            f"the connection to the SMTP server {config.host} ended while it was taking the message "
            f"({exc.__class__.__name__}); it may have been delivered"
        ) from None
    return answer.decode(errors="replace") if isinstance(answer, bytes) else str(answer)


def _close(smtp: smtplib.SMTP) -> None:
    """QUIT, best effort: once DATA was answered, nothing after it may turn a sent reply into an error."""
    try:
        smtp.quit()
    except (smtplib.SMTPException, OSError):
        smtp.close()


def _connect(config: SmtpConfig) -> smtplib.SMTP:
    if config.ca_file and not Path(config.ca_file).is_file():
        raise ConfigurationError(f"SMTP_CA_FILE {config.ca_file} does not exist")
    context = ssl.create_default_context(cafile=config.ca_file) if config.tls != "plain" else None
    if config.tls == "ssl":
        smtp: smtplib.SMTP = smtplib.SMTP_SSL(
            config.host, config.port, timeout=config.timeout, context=context
        )
    else:
        smtp = smtplib.SMTP(config.host, config.port, timeout=config.timeout)
    try:
        smtp.ehlo()
        if config.tls == "starttls":
            smtp.starttls(context=context)
            smtp.ehlo()
    except BaseException:
        smtp.close()
        raise
    return smtp


def _mail_options(smtp: smtplib.SMTP, sender: str, recipient: str) -> list[str]:
    if sender.isascii() and recipient.isascii():
        return []
    if not smtp.has_extn("smtputf8"):
        raise RemoteError(f"the SMTP server cannot send to or from a non-ASCII address ({recipient})")
    return ["SMTPUTF8", "BODY=8BITMIME"]


def _address(header) -> str:
    addresses: tuple[Address, ...] = getattr(header, "addresses", ())
    if len(addresses) != 1 or not addresses[0].addr_spec:
        raise ConfigurationError(f"a reply needs exactly one address, not {str(header)!r}")
    return addresses[0].addr_spec


def _answer(exc: smtplib.SMTPResponseException) -> str:
    text = (
        exc.smtp_error.decode(errors="replace") if isinstance(exc.smtp_error, bytes) else str(exc.smtp_error)
    )
    return f"{exc.smtp_code} {text}".strip()


def _refusal(config: SmtpConfig, code: int, answer, what: str) -> CopydeskError:
    text = answer.decode(errors="replace") if isinstance(answer, bytes) else str(answer)
    message = f"the SMTP server {config.host} {what}: {code} {text}".strip()
    return ServiceUnavailable(message) if 400 <= code < 500 else RemoteError(message)
