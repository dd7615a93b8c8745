"""The mailbox intake stack: the session's PostgreSQL and API, a real Dovecot, and Celery workers of
the package's own (a private broker) that also load the crash points of tests/mailbox/faults.py.

The environment defines a default mailbox (IMAP_HOST, IMAP_USER, IMAP_PASSWORD, plain IMAP on
loopback) for a Dovecot user of its own, as an operator would; the other tests add sources of their
own (IMAPS, trusting the test CA) through the database or the API and disable them when done.
"""

from __future__ import annotations

import subprocess
import sys
import uuid

import pytest

from tests.fixtures.stack import Database, isolated_stack
from tests.support import starts


@pytest.fixture(scope="package")
@starts("worker")
def mail_stack(stack_env, api, dovecot, tmp_path_factory):
    default_user = dovecot.fresh_user()
    overrides = {
        "STEP_MODULES": "tests.workflows.kinds,tests.mailbox.faults",
        "MAILBOX_DISPATCH_INTERVAL": "1",
        "IMAP_HOST": dovecot.host,
        "IMAP_PORT": str(dovecot.imap_port),
        "IMAP_TLS": "plain",
        "IMAP_USER": default_user,
        "IMAP_PASSWORD": dovecot.users[default_user],
    }
    log_dir = tmp_path_factory.mktemp("mailbox-workers")
    with isolated_stack(stack_env, log_dir, overrides, cpu=1, io=4) as stack:
        stack["log_dir"] = log_dir
        stack["default_user"] = default_user
        yield stack


@pytest.fixture
def make_source(mail_stack, dovecot):
    """Create a source (IMAPS to the test Dovecot) straight in the database; all of them are disabled
    when the test ends, so later dispatches leave their mailboxes alone."""
    from app.core.db import session_scope
    from app.core.security import encrypt_secret
    from app.models import Source

    created: list[uuid.UUID] = []
    ca_pem = open(dovecot.ca_file).read()

    def make(user: str, *, password: str | None = None, **fields) -> uuid.UUID:
        values = {
            "name": f"box-{user}-{uuid.uuid4().hex[:6]}",
            "host": dovecot.host,
            "port": dovecot.imaps_port,
            "tls_mode": "imaps",
            "username": user,
            "allowed_senders": ["@example.org"],
            "poll_interval": 1,
            "enabled": True,
            "workflow": "publish_document",
            "defaults": {},
            "options": {"ca_cert": ca_pem, "timeout": 10},
            "consecutive_failures": 0,
            **fields,
        }
        with session_scope() as session:
            source = Source(id=uuid.uuid4(), password_encrypted=encrypt_secret(password or dovecot.users[user]), **values)
            session.add(source)
        created.append(source.id)
        return source.id

    yield make
    from sqlalchemy import update

    with session_scope() as session:
        session.execute(update(Source).where(Source.id.in_(created)).values(enabled=False))


@pytest.fixture
def fresh_database(stack_env):
    """The URL of a migrated database of the test's own (dropped after it), for a test whose default
    mailbox or dispatcher must see no other test's sources."""
    database = Database()
    try:
        migrated = subprocess.run(
            [sys.executable, "-c", "from app.cli.dev import migrate; migrate()"],
            env={**stack_env["env"], "DATABASE_URL": database.url}, capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert migrated.returncode == 0, migrated.stderr
        yield database.url
    finally:
        database.drop()
