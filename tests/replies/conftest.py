"""Replies and webhooks end to end: the session's PostgreSQL and API, Celery workers of the package's
own (a private broker) that send through the SMTP test server and load the crash point of
tests/replies/faults.py, the webhook receiver, and (for mailed manuscripts) the real Dovecot.

Beat is not running: tests drive the dispatchers by hand (tests/replies/helpers.py), as beat would."""

from __future__ import annotations

import uuid

import pytest

from tests.fixtures.stack import isolated_stack

SMTP_FROM = "desk@example.net"


@pytest.fixture(scope="package")
def notify_stack(stack_env, api, smtp_server, webhook_receiver, tmp_path_factory):
    overrides = {
        "STEP_MODULES": "tests.workflows.kinds,tests.replies.faults",
        "SMTP_HOST": smtp_server.host,
        "SMTP_PORT": str(smtp_server.port),
        "SMTP_TLS": "starttls",
        "SMTP_USER": smtp_server.user,
        "SMTP_PASSWORD": smtp_server.password,
        "SMTP_FROM": SMTP_FROM,
        "SMTP_CA_FILE": smtp_server.ca_file,
        "SMTP_TIMEOUT": "10",
        "NOTIFY_RETRY_WAIT": "0.2",
        "NOTIFY_RETRY_MAX_WAIT": "1",
        "NOTIFY_MAX_ATTEMPTS": "4",
        "NOTIFY_CLAIM_TIMEOUT": "3",
        "MAILBOX_DISPATCH_INTERVAL": "1",
    }
    log_dir = tmp_path_factory.mktemp("notify-workers")
    with isolated_stack(stack_env, log_dir, overrides, cpu=1, io=4) as stack:
        stack["log_dir"] = log_dir
        forget_earlier_events()
        yield stack


def forget_earlier_events() -> None:
    """Runs that ended before now (other tests' runs of the session) are not announced: only the
    runs a test starts reach its webhooks and mailboxes (as at deployment, see the migration)."""
    from sqlalchemy import update

    from app.core.db import session_scope
    from app.models import RunEvent

    with session_scope() as session:
        session.execute(
            update(RunEvent)
            .where(RunEvent.kind == "run", RunEvent.notified_at.is_(None))
            .values(notified_at=RunEvent.at)
        )


@pytest.fixture
def mailbox(notify_stack, dovecot):
    """make(replies=…, allowed_senders=…): a mailbox (a fresh Dovecot user, IMAPS) with its source;
    every source made is disabled when the test ends."""
    from app.core.db import session_scope
    from app.core.security import encrypt_secret
    from app.models import Source

    created: list[uuid.UUID] = []
    ca_pem = open(dovecot.ca_file).read()

    def make(
        *, replies: dict | None = None, allowed_senders=("@example.org",), **fields
    ) -> tuple[uuid.UUID, str]:
        user = dovecot.fresh_user()
        options = {"ca_cert": ca_pem, "timeout": 10, "replies": {"enabled": True, **(replies or {})}}
        with session_scope() as session:
            source = Source(
                id=uuid.uuid4(), name=f"desk-{user}", host=dovecot.host, port=dovecot.imaps_port, tls_mode="imaps",
                username=user, password_encrypted=encrypt_secret(dovecot.users[user]),
                allowed_senders=list(allowed_senders), poll_interval=1, enabled=True, defaults={}, options=options,
                consecutive_failures=0, **{"workflow": "publish_document", **fields},
            )  # fmt: skip
            session.add(source)
        created.append(source.id)
        return source.id, user

    yield make
    from sqlalchemy import update

    with session_scope() as session:
        session.execute(update(Source).where(Source.id.in_(created)).values(enabled=False))


@pytest.fixture
def webhooks(notify_stack, admin_client):
    """make(url, **fields) -> the created webhook (with its secret); all deleted when the test ends."""
    made = []
    forget_earlier_events()

    def make(url: str, **fields) -> dict:
        response = admin_client.post("/webhooks", json={"url": url, **fields})
        assert response.status_code == 201, response.text
        made.append(response.json()["id"])
        return response.json()

    yield make
    for webhook_id in made:
        admin_client.delete(f"/webhooks/{webhook_id}")
