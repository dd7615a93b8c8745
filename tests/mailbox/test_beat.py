"""One real `celery beat` process, as deployed: it creates the default mailbox from the environment
(IMAP_HOST, IMAP_USER, IMAP_PASSWORD) through its dispatcher, polls it, publishes what arrives and
files the message away, with nobody calling anything by hand."""

from __future__ import annotations

import subprocess
import sys

import pytest
from sqlalchemy import select

from tests.fixtures.dovecot import docx_message
from tests.mailbox.helpers import folder_counts, messages
from tests.support import wait_until

pytestmark = [pytest.mark.imap, pytest.mark.worker, pytest.mark.postgres, pytest.mark.redis, pytest.mark.slow]


def default_source():
    from app.core.db import session_scope
    from app.models import Source

    with session_scope() as session:
        return session.execute(select(Source).where(Source.name == "default")).scalar_one_or_none()


def test_beat_creates_polls_and_files_the_default_mailbox(mail_stack, dovecot, tmp_path):
    user = mail_stack["default_user"]
    dovecot.deliver(user, docx_message("Night shift", subject="[status draft] Night shift", sender="desk@example.org"))
    log_path = tmp_path / "beat.log"
    beat = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "app.tasks", "beat", "-s", str(tmp_path / "schedule"), "--loglevel=INFO"],
        env=mail_stack["env"], stdin=subprocess.DEVNULL, stdout=open(log_path, "ab"), stderr=subprocess.STDOUT,
        start_new_session=True,
    )  # fmt: skip
    try:
        source = wait_until(default_source, timeout=30, message="the dispatcher to create the default source")
        rows = wait_until(
            lambda: [m for m in messages(source.id) if m.state == "processed"] or None,
            timeout=90,
            interval=0.2,
            message="beat to poll the default mailbox and file the message",
        )
        assert beat.poll() is None, log_path.read_text()
    finally:
        beat.terminate()
        beat.wait(20)

    source = default_source()
    assert (source.host, source.port, source.tls_mode, source.username, source.folder) == (
        dovecot.host, dovecot.imap_port, "plain", user, "INBOX",
    )  # fmt: skip
    assert source.options["allow_plain"] is True and source.enabled and source.last_error is None
    [row] = rows
    assert row.title == "Night shift" and row.directives == {"status": "draft"}
    assert folder_counts(dovecot, user) == {"INBOX": 0, "Processed": 1, "Failed": 0}
    assert "copydesk.mailbox.dispatch" in log_path.read_text()
