"""Mailbox log lines name their mailbox as `source_id` (a log field means one thing: `run_id` is a run)."""

from __future__ import annotations

import uuid

import pytest

from tests.fixtures.dovecot import docx_message
from tests.observability.helpers import json_lines
from tests.support import wait_until

pytestmark = [pytest.mark.imap, pytest.mark.worker, pytest.mark.postgres, pytest.mark.redis]


def test_a_poll_logs_its_source_as_source_id(mail_stack, make_source, dovecot, imap_user):
    from app.tasks.mailbox.tasks import poll_task

    source_id = str(make_source(imap_user))
    dovecot.deliver(imap_user, docx_message(f"Logged {uuid.uuid4()}", filename="logged.docx"))
    task = poll_task.apply_async(args=[source_id], queue="io")
    assert task.get(timeout=60)["recorded"] == 1

    def task_lines():
        text = "".join(p.read_text(errors="replace") for p in mail_stack["log_dir"].glob("*.log"))
        lines = [r for r in json_lines(text) if r.get("task_id") == task.id]
        return lines if any("succeeded" in r["message"] for r in lines) else None

    lines = wait_until(task_lines, timeout=30, message="the poll's lines in the worker's log")
    assert any(r["logger"] == "copydesk.mailbox" and "1 new message(s)" in r["message"] for r in lines)
    assert all(r.get("source_id") == source_id for r in lines), lines
    assert not [r for r in lines if r.get("run_id") == source_id]
