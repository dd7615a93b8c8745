"""A real SMTP server for the tests (aiosmtpd, in-process, on loopback): STARTTLS required before
anything else, AUTH (LOGIN, PLAIN) required and only over TLS, as a mail provider's submission port
has it. Or implicit TLS (`tls="ssl"`, port 465 style). Every accepted message is captured.

The certificate is made here (cryptography): self-signed for 127.0.0.1 and localhost; clients trust
it through `ca_file`. `set_password` changes what the server accepts, for wrong-password tests.

Traps (../shared/notes/smtp.md): Controller(port=0) does not work (a free port is picked first);
aiosmtpd logs a deprecation warning on every AUTH (filtered); the authenticator must return
auth_data or the session does not know who logged in.
"""

from __future__ import annotations

import datetime
import email
import email.policy
import ipaddress
import logging
import ssl
import tempfile
import threading
from email.message import EmailMessage
from pathlib import Path

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from tests.support import free_port

logging.getLogger("mail.log").setLevel(logging.WARNING)  # a line per SMTP command otherwise
logging.getLogger("mail.log").addFilter(lambda record: "login_data is deprecated" not in record.getMessage())


def make_certificate(directory: Path) -> tuple[Path, Path]:
    """A self-signed certificate (its own CA) for 127.0.0.1 and localhost: (cert.pem, key.pem)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "copydesk test smtp")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=2))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return cert_path, key_path


class Capture:
    """aiosmtpd handler: keeps every accepted message."""

    def __init__(self) -> None:
        self.messages: list[dict] = []
        self.lock = threading.Lock()

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server, session, envelope):
        parsed = email.message_from_bytes(envelope.content, policy=email.policy.default)
        login = getattr(session.auth_data, "login", None)
        with self.lock:
            self.messages.append(
                {
                    "mail_from": envelope.mail_from,
                    "rcpt_tos": list(envelope.rcpt_tos),
                    "login": login.decode() if isinstance(login, bytes) else login,
                    "data": envelope.content,
                    "message": parsed,
                }
            )
        return "250 2.0.0 Message accepted for delivery"


class SmtpServer:
    def __init__(
        self, *, tls: str = "starttls", user: str = "desk@example.net", password: str = "smtp-S3cret"
    ) -> None:
        self.tls = tls
        self.user = user
        self.users = {user: password}
        self.dir = Path(tempfile.mkdtemp(prefix="copydesk-smtp-"))
        self.cert, self.key = make_certificate(self.dir)
        self.handler = Capture()
        self.port = free_port()
        self.controller: Controller | None = None

    @property
    def host(self) -> str:
        return "127.0.0.1"

    @property
    def ca_file(self) -> str:
        return str(self.cert)

    @property
    def password(self) -> str:
        return self.users[self.user]

    def _authenticate(self, server, session, envelope, mechanism, auth_data) -> AuthResult:
        ok = (
            isinstance(auth_data, LoginPassword)
            and self.users.get(auth_data.login.decode()) == auth_data.password.decode()
        )
        return AuthResult(success=ok, handled=False, auth_data=auth_data)

    def start(self) -> SmtpServer:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.cert, self.key)
        # aiosmtpd 1.4.6 counts only STARTTLS as TLS for auth_require_tls: under implicit TLS the
        # whole connection is encrypted anyway, so AUTH is simply always offered there.
        if self.tls == "ssl":
            tls = {"ssl_context": context, "auth_require_tls": False}
        else:
            tls = {"tls_context": context, "require_starttls": True, "auth_require_tls": True}
        self.controller = Controller(
            self.handler, hostname=self.host, port=self.port, authenticator=self._authenticate, auth_required=True,
            **tls,
        )  # fmt: skip
        self.controller.start()
        return self

    def stop(self) -> None:
        if self.controller is not None:
            self.controller.stop()
            self.controller = None

    def set_password(self, password: str) -> None:
        self.users[self.user] = password

    def messages(self, to: str | None = None) -> list[EmailMessage]:
        """The messages accepted so far (to one recipient, when given), in order."""
        with self.handler.lock:
            found = list(self.handler.messages)
        return [m["message"] for m in found if to is None or to in m["rcpt_tos"]]

    def envelopes(self) -> list[dict]:
        with self.handler.lock:
            return list(self.handler.messages)
