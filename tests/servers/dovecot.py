"""A real Dovecot IMAP server for the tests, on loopback, with a config of its own.

    with DovecotServer(users={"editor": "secret"}) as server:
        uid = server.deliver("editor", message_bytes)
        server.status("editor", "INBOX")          # {'messages': 1, 'unseen': 1, 'uidvalidity': …, 'uidnext': 2}

Nothing from /etc/dovecot is read. One temporary directory holds the config, a self-signed certificate
(SAN IP:127.0.0.1 and DNS:localhost), the passwd-file, the Maildirs, the runtime sockets and the log.
IMAP (plain + STARTTLS) and IMAPS listen on free ports of 127.0.0.1; the folders `Processed` and
`Failed` are created automatically at each user's first login.

The traps of ../shared/notes/dovecot-libreoffice-postgres-redis.md §1 are handled here: mail owned by
uid 5000 (Dovecot refuses uid 0), the directory made traversable (755), the passwd-file readable by the
`dovecot` group, the anvil auth-penalty socket disabled (no 4 s delay after a failed login), and the
master run in the foreground (`-F`) as our own child with stdin/stdout away from our pipes, so that
stopping it is a SIGTERM + wait with no zombie and no inherited pipe.

Every IMAP session leaves a line in the log on logout with what it fetched (`imap_logout_format`):
`session_stats()` reads those lines, so a test can prove that a poll downloaded no message body.

`python -m tests.servers.dovecot deps` installs the Debian package (run `apt-get update` first);
`python -m tests.servers.dovecot run` starts a server and prints how to reach it, until Ctrl-C.
"""

from __future__ import annotations

import ctypes
import grp
import os
import re
import shutil
import signal
import ssl
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path

from imap_tools import MailBox, MailboxLoginError, MailBoxStartTls, MailBoxUnencrypted

from tests.support import free_port, wait_for_port

PACKAGE = "dovecot-imapd"
MAIL_UID = 5000  # any uid but 0 (Dovecot hard-refuses root); need not exist in /etc/passwd
FOLDERS = ("Processed", "Failed")
START_TIMEOUT = 15.0
STOP_TIMEOUT = 10.0

CONFIG = """\
protocols = imap
listen = 127.0.0.1
base_dir = {dir}/run
state_dir = {dir}/state
instance_name = copydesk-test-{imap_port}
log_path = {dir}/dovecot.log
info_log_path = {dir}/dovecot.log
ssl = yes
ssl_cert = <{dir}/ssl/cert.pem
ssl_key = <{dir}/ssl/key.pem
ssl_dh = </usr/share/dovecot/dh.pem
disable_plaintext_auth = no
auth_mechanisms = plain login
auth_failure_delay = 0
mail_max_userip_connections = 100
mail_fsync = never
mail_location = maildir:{dir}/mail/%n/Maildir
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%n {dir}/users
}}
userdb {{
  driver = static
  args = uid={uid} gid={uid} home={dir}/mail/%n
}}
namespace inbox {{
  inbox = yes
  separator = /
{folders}
}}
service anvil {{
  unix_listener anvil-auth-penalty {{
    mode = 0
  }}
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {imap_port}
  }}
  inet_listener imaps {{
    address = 127.0.0.1
    port = {imaps_port}
    ssl = yes
  }}
}}
"""

# e.g. "imap(editor)<18674><KeofjSphWMB/AAAB>: Info: Disconnected: Logged out in=34 out=800 … body_count=0 …"
_LOGOUT_LINE = re.compile(r"imap\((?P<user>[^)]*)\)<[^>]*><[^>]*>: \w+: Disconnected\b[^\n]*?(?P<stats>in=\d+[^\n]*)")


def dovecot_binary() -> str | None:
    return shutil.which("dovecot") or shutil.which("dovecot", path="/usr/sbin:/usr/local/sbin")


def doveadm_binary() -> str | None:
    return shutil.which("doveadm") or shutil.which("doveadm", path="/usr/bin:/usr/sbin")


def missing_reason() -> str | None:
    """Why a DovecotServer cannot start here, or None when it can."""
    if dovecot_binary() is None or doveadm_binary() is None:
        return f"install the Debian package {PACKAGE} (python -m tests.servers.dovecot deps)"
    if os.geteuid() != 0:
        return "Dovecot's test config runs its mail processes as uid 5000, which needs root"
    try:
        grp.getgrnam("dovecot")
    except KeyError:
        return f"the group 'dovecot' is missing: reinstall {PACKAGE}"
    if shutil.which("openssl") is None:
        return "install openssl (for the test certificate)"
    return None


def _terminate_with_parent() -> None:
    """In the child before exec: SIGTERM it when the test process dies, however it dies, so a killed
    test run leaves no Dovecot behind (Linux prctl PR_SET_PDEATHSIG)."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)
    except (OSError, AttributeError):
        pass


@dataclass(frozen=True)
class SessionStats:
    """One IMAP session as Dovecot logged it on logout."""

    user: str
    bytes_in: int
    bytes_out: int
    hdr_count: int  # FETCHes of a header (BODY[HEADER], …)
    body_count: int  # FETCHes of a body or of the whole message (BODY[], RFC822, BODY[TEXT])
    body_bytes: int


class DovecotServer:
    host = "127.0.0.1"

    def __init__(
        self, users: dict[str, str] | None = None, folders: tuple[str, ...] = FOLDERS, spare_users: int = 0
    ) -> None:
        """`spare_users` accounts (user001, …) are created up front for `fresh_user()`: adding one later
        costs a second (Dovecot re-reads its passwd-file at most once per second)."""
        self.users = dict(users or {"editor": "editor-password"})
        self._spare = [f"user{n:03d}" for n in range(1, spare_users + 1)]
        self.users.update({name: f"{name}-password" for name in self._spare})
        self._added = 0
        self.folders = folders
        self.dir: Path | None = None
        self.imap_port = 0
        self.imaps_port = 0
        self._process: subprocess.Popen | None = None

    # --- lifecycle ------------------------------------------------------------------------

    def start(self) -> DovecotServer:
        reason = missing_reason()
        if reason:
            raise RuntimeError(f"Dovecot cannot run here: {reason}")
        self.dir = Path(tempfile.mkdtemp(prefix="copydesk-dovecot-"))
        os.chmod(self.dir, 0o755)  # mail processes (uid 5000) must traverse it
        try:
            self._write_files()
            self._launch()
        except BaseException:
            self.stop()
            raise
        return self

    def _write_files(self) -> None:
        d = self.dir
        for sub in ("run", "state", "ssl", "mail"):
            (d / sub).mkdir()
        subprocess.run(
            ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "3650",
             "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
             "-keyout", str(d / "ssl/key.pem"), "-out", str(d / "ssl/cert.pem")],
            check=True, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        )  # fmt: skip
        self._write_users()
        for user in self.users:
            for sub in ("cur", "new", "tmp"):
                (d / "mail" / user / "Maildir" / sub).mkdir(parents=True)
        self._chown_tree(d / "mail")
        self.imap_port, self.imaps_port = free_port(), free_port()
        folders = "\n".join(f"  mailbox {name} {{\n    auto = create\n  }}" for name in self.folders)
        self.config_path.write_text(
            CONFIG.format(dir=d, uid=MAIL_UID, imap_port=self.imap_port, imaps_port=self.imaps_port, folders=folders)
        )

    def _write_users(self) -> None:
        path = self.dir / "users"
        tmp = path.with_suffix(".tmp")
        tmp.write_text("".join(f"{user}:{{PLAIN}}{password}\n" for user, password in self.users.items()))
        os.chown(tmp, 0, grp.getgrnam("dovecot").gr_gid)  # read by the auth process as user dovecot
        os.chmod(tmp, 0o640)
        os.replace(tmp, path)  # atomic: a login never sees a half-written file

    def _chown_tree(self, root: Path) -> None:
        for dirpath, dirnames, filenames in os.walk(root):
            os.chown(dirpath, MAIL_UID, MAIL_UID)
            for name in dirnames + filenames:
                os.chown(os.path.join(dirpath, name), MAIL_UID, MAIL_UID)

    def _launch(self) -> None:
        with open(self.dir / "startup.log", "wb") as out:
            # -F: stay in the foreground as our child, so stop() can wait() on it (no zombie, no daemon
            # holding our stdout open).
            self._process = subprocess.Popen(
                [dovecot_binary(), "-F", "-c", str(self.config_path)],
                stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
                preexec_fn=_terminate_with_parent,
            )  # fmt: skip
        try:
            wait_for_port(self.imap_port, timeout=START_TIMEOUT)
            wait_for_port(self.imaps_port, timeout=START_TIMEOUT)
        except TimeoutError:
            code = self._process.poll()
            raise RuntimeError(
                f"Dovecot did not start (exit code {code}): {self.startup_log()}\n{self.log_text()[-2000:]}"
            ) from None

    def stop(self) -> None:
        if self._process is not None:
            if self._process.poll() is None:
                self._process.send_signal(signal.SIGTERM)
                try:
                    self._process.wait(timeout=STOP_TIMEOUT)
                except subprocess.TimeoutExpired:
                    os.killpg(self._process.pid, signal.SIGKILL)
                    self._process.wait(timeout=STOP_TIMEOUT)
            self._process = None
        if self.dir is not None:
            shutil.rmtree(self.dir, ignore_errors=True)
            self.dir = None

    def __enter__(self) -> DovecotServer:
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    # --- where things are -----------------------------------------------------------------

    @property
    def config_path(self) -> Path:
        return self.dir / "dovecot.conf"

    @property
    def ca_file(self) -> str:
        """The self-signed certificate, to give to clients as their CA."""
        return str(self.dir / "ssl/cert.pem")

    def ssl_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=self.ca_file)

    def startup_log(self) -> str:
        path = self.dir / "startup.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def log_text(self) -> str:
        path = self.dir / "dovecot.log"
        return path.read_text(errors="replace") if path.exists() else ""

    # --- clients --------------------------------------------------------------------------

    def connect(self, user: str, *, tls: str = "imaps", folder: str | None = "INBOX", timeout: float = 10):
        """An imap-tools mailbox logged in as `user` (tls: imaps, starttls or plain)."""
        if tls == "imaps":
            box = MailBox(self.host, self.imaps_port, timeout=timeout, ssl_context=self.ssl_context())
        elif tls == "starttls":
            box = MailBoxStartTls(self.host, self.imap_port, timeout=timeout, ssl_context=self.ssl_context())
        elif tls == "plain":
            box = MailBoxUnencrypted(self.host, self.imap_port, timeout=timeout)
        else:
            raise ValueError(f"unknown tls mode {tls!r}")
        return box.login(user, self.users[user], initial_folder=folder)

    def deliver(self, user: str, message: bytes | EmailMessage, folder: str = "INBOX", flags: tuple[str, ...] = ()) -> int:
        """Put one message into a folder (IMAP APPEND); its UID."""
        return self.deliver_many(user, [message], folder, flags)[0]

    def deliver_many(
        self, user: str, messages, folder: str = "INBOX", flags: tuple[str, ...] = ()
    ) -> list[int]:
        """APPEND messages over one connection; their UIDs (from Dovecot's APPENDUID answers)."""
        uids = []
        with self.connect(user, folder=None) as box:
            for message in messages:
                raw = message.as_bytes() if isinstance(message, EmailMessage) else message
                _, data = box.append(raw, folder, flag_set=flags or None)
                match = re.search(rb"APPENDUID \d+ (\d+)", data[0] or b"")
                uids.append(int(match.group(1)) if match else 0)
        return uids

    def messages(self, user: str, folder: str = "INBOX") -> list[dict]:
        """What a folder holds, read-only: uid, flags, Message-ID, subject of each message."""
        with self.connect(user, folder=None) as box:
            box.folder.set(folder, readonly=True)
            return [
                {
                    "uid": int(msg.uid),
                    "flags": set(msg.flags),
                    "message_id": (msg.headers.get("message-id") or ("",))[0].strip(),
                    "subject": msg.subject,
                }
                for msg in box.fetch(headers_only=True, mark_seen=False, bulk=True)
            ]

    # --- doveadm --------------------------------------------------------------------------

    def doveadm(self, *args: str) -> str:
        result = subprocess.run(
            [doveadm_binary(), "-c", str(self.config_path), *args],
            stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=30,
        )  # fmt: skip
        if result.returncode != 0:
            raise RuntimeError(f"doveadm {' '.join(args)} failed: {result.stderr.strip()}")
        return result.stdout

    def status(self, user: str, folder: str = "INBOX") -> dict[str, int]:
        """messages, unseen, uidvalidity, uidnext of a folder, straight from the mail storage."""
        out = self.doveadm("-f", "flow", "mailbox", "status", "-u", user, "messages unseen uidvalidity uidnext", folder)
        return {key: int(value) for key, value in re.findall(r"(\w+)=(\d+)", out)}

    def folders_of(self, user: str) -> list[str]:
        return self.doveadm("mailbox", "list", "-u", user).split()

    def change_uidvalidity(self, user: str, folder: str = "INBOX") -> int:
        """Give a folder a new UIDVALIDITY (as a restored or rebuilt server would); the new value.
        The messages stay, with their UIDs now meaning nothing to a client that kept the old ones."""
        new = self.status(user, folder)["uidvalidity"] + 1
        self.doveadm("mailbox", "update", "-u", user, "--uid-validity", str(new), folder)
        return new

    def recreate_folder(self, user: str, folder: str) -> int:
        """Delete a (non-INBOX) folder with its mail and create it again, empty; its new UIDVALIDITY."""
        with self.connect(user, folder=None) as box:
            box.folder.delete(folder)
            box.folder.create(folder)
        return self.status(user, folder)["uidvalidity"]

    # --- users ----------------------------------------------------------------------------

    def fresh_user(self) -> str:
        """A user whose mailbox nobody has touched yet (its password is in `users`)."""
        if self._spare:
            return self._spare.pop(0)
        self._added += 1
        name = f"extra{self._added:03d}"
        self.set_password(name, f"{name}-password")
        return name

    def set_password(self, user: str, password: str) -> None:
        """Change (or add) a user's password; the next login sees it (passwd-file is re-read on change)."""
        path = self.dir / "users"
        previous = path.stat().st_mtime
        self.users[user] = password
        self._write_users()
        # Dovecot notices a changed passwd-file by its mtime (whole seconds) and size, and looks at most
        # once per second: make the rewrite look changed, then wait until a login with it works.
        stamp = max(time.time(), int(previous) + 1)
        os.utime(path, (stamp, stamp))
        from tests.support import wait_until

        wait_until(lambda: self._logs_in(user), timeout=30, interval=0.1,
                   message=f"Dovecot to accept the new password of {user}")

    def _logs_in(self, user: str) -> bool:
        try:
            with self.connect(user, folder=None):
                return True
        except MailboxLoginError:
            return False

    # --- what the server saw --------------------------------------------------------------

    def session_stats(self, user: str | None = None) -> list[SessionStats]:
        """The logged-out IMAP sessions, oldest first (each line says how much was fetched)."""
        out = []
        for match in _LOGOUT_LINE.finditer(self.log_text()):
            if user is not None and match.group("user") != user:
                continue
            fields = dict(re.findall(r"(\w+)=(\d+)", match.group("stats")))
            out.append(
                SessionStats(
                    user=match.group("user"),
                    bytes_in=int(fields.get("in", 0)),
                    bytes_out=int(fields.get("out", 0)),
                    hdr_count=int(fields.get("hdr_count", 0)),
                    body_count=int(fields.get("body_count", 0)),
                    body_bytes=int(fields.get("body_bytes", 0)),
                )
            )
        return out

    def wait_for_sessions(self, user: str, timeout: float = 10.0) -> list[SessionStats]:
        """All of `user`'s sessions, once every login of that user has its logout line in the log (the
        log process writes it a moment after the client's LOGOUT)."""
        login = re.compile(rf"imap-login: \w+: Login: user=<{re.escape(user)}>")
        deadline = time.monotonic() + timeout
        while True:
            sessions = self.session_stats(user)
            logins = len(login.findall(self.log_text()))
            if len(sessions) >= logins or time.monotonic() > deadline:
                return sessions
            time.sleep(0.02)


def install_deps() -> int:
    """Install Dovecot from the Debian archive (the caller has run `apt-get update`)."""
    if dovecot_binary() and doveadm_binary():
        print(f"{PACKAGE}: already installed ({dovecot_binary()})")
        return 0
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    command = ["apt-get", "-o", "DPkg::Lock::Timeout=900", "install", "-y", PACKAGE]
    print("+", " ".join(command), flush=True)
    return subprocess.call(command, env=env, stdin=subprocess.DEVNULL)


def main(argv: list[str]) -> int:
    command = argv[0] if argv else "help"
    if command == "deps":
        return install_deps()
    if command == "run":
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))  # clean stop on kill as on Ctrl-C
        with DovecotServer() as server:
            print(f"Dovecot {server.dir}: IMAP/STARTTLS 127.0.0.1:{server.imap_port}, "
                  f"IMAPS 127.0.0.1:{server.imaps_port}, CA {server.ca_file}, users {server.users}", flush=True)  # fmt: skip
            try:
                signal.pause()
            except KeyboardInterrupt:
                pass
        return 0
    print("usage: python -m tests.servers.dovecot deps|run")
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
