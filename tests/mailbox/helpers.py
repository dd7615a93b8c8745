"""Looking at what mailbox intake did: rows in PostgreSQL, folders in Dovecot, the dispatcher driven
by hand (what beat does every MAILBOX_DISPATCH_INTERVAL seconds)."""

from __future__ import annotations

import contextlib
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

from sqlalchemy import select

from tests.support import wait_until

FOLDERS = ("INBOX", "Processed", "Failed")


def drive(until, *, timeout: float = 60, message: str = "the mailbox to settle"):
    """Run the dispatcher (as beat would) until `until()` is truthy; its value."""
    from app.tasks.mailbox.tasks import dispatch

    def step():
        value = until()
        if not value:
            dispatch()
        return value

    return wait_until(step, timeout=timeout, interval=0.25, message=message)


def poll_in_worker(source_id, timeout: float = 60) -> dict:
    """One poll, run by a worker (the task beat's dispatcher sends), and its summary."""
    from app.tasks.mailbox.tasks import poll_task

    return poll_task.apply_async(args=[str(source_id)], queue="io").get(timeout=timeout)


def source(source_id):
    from app.core.db import session_scope
    from app.models import Source

    with session_scope() as session:
        return session.get(Source, uuid.UUID(str(source_id)))


def messages(source_id) -> list:
    from app.core.db import session_scope
    from app.models import MailMessage

    with session_scope() as session:
        return list(
            session.execute(
                select(MailMessage).where(MailMessage.source_id == source_id).order_by(MailMessage.created_at)
            ).scalars()
        )


def runs(source_id) -> list:
    from app.core.db import session_scope
    from app.models import Run

    with session_scope() as session:
        return list(session.execute(select(Run).where(Run.source_id == source_id).order_by(Run.created_at)).scalars())


def documents(source_id) -> list:
    from app.core.db import session_scope
    from app.models import Document

    with session_scope() as session:
        return list(
            session.execute(
                select(Document).where(Document.source_id == source_id).order_by(Document.created_at)
            ).scalars()
        )


def settled(source_id, count: int = 1):
    """The source's messages once `count` of them were moved (processed or failed), else None."""
    rows = messages(source_id)
    done = [m for m in rows if m.state in ("processed", "failed")]
    return rows if len(done) >= count else None


def folder_counts(dovecot, user: str) -> dict[str, int]:
    return {folder: dovecot.status(user, folder)["messages"] for folder in FOLDERS}


def runs_ended(source_id, count: int = 1):
    found = runs(source_id)
    ended = [r for r in found if r.state in ("succeeded", "failed", "cancelled")]
    return found if len(found) >= count and len(ended) == len(found) else None


@contextlib.contextmanager
def beat(env: dict, folder: Path) -> Iterator[Path]:
    """A real `celery beat` process for the block; the path of its log."""
    log_path = folder / "beat.log"
    process = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "app.tasks", "beat", "-s", str(folder / "schedule"), "--loglevel=INFO"],
        env=env, stdin=subprocess.DEVNULL, stdout=open(log_path, "ab"), stderr=subprocess.STDOUT,
        start_new_session=True,
    )  # fmt: skip
    try:
        yield log_path
        assert process.poll() is None, log_path.read_text()
    finally:
        process.terminate()
        process.wait(20)
