"""Driving the dispatchers as beat would, and looking at what was recorded."""

from __future__ import annotations

import time
import uuid

from sqlalchemy import select

from tests.support import wait_until


def drive(until, *, timeout: float = 120, message: str = "the replies to be sent"):
    """Run the mailbox and notification dispatchers (what beat runs every few seconds) until
    `until()` is truthy; its value."""
    from app.tasks.mailbox.tasks import dispatch as dispatch_mail
    from app.tasks.notify import dispatch as dispatch_notifications

    def step():
        value = until()
        if value:
            return value
        dispatch_mail()
        dispatch_notifications()
        time.sleep(0.25)
        return until()

    return wait_until(step, timeout=timeout, interval=0.05, message=message)


def notifications(run_id=None, **where) -> list:
    from app.core.db import session_scope
    from app.models import Notification

    query = select(Notification).order_by(Notification.created_at)
    if run_id is not None:
        query = query.where(Notification.run_id == uuid.UUID(str(run_id)))
    for name, value in where.items():
        query = query.where(getattr(Notification, name) == value)
    with session_scope() as session:
        return list(session.execute(query).scalars())


def settled(rows, states=("sent", "failed", "skipped", "unconfirmed")):
    """The rows when every one has reached a final state, else None."""
    return rows if rows and all(n.state in states for n in rows) else None


def runs_of(source_id) -> list:
    from app.core.db import session_scope
    from app.models import Run

    with session_scope() as session:
        return list(
            session.execute(select(Run).where(Run.source_id == source_id).order_by(Run.created_at)).scalars()
        )


def mail_message(source_id):
    from app.core.db import session_scope
    from app.models import MailMessage

    with session_scope() as session:
        return session.execute(select(MailMessage).where(MailMessage.source_id == source_id)).scalar_one()
