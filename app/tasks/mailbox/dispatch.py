"""What beat's dispatcher sends, and when beat sends the dispatcher at all.

`due_work()` claims each enabled source that is due for a poll (next_poll_at pushed out in
PostgreSQL, FOR UPDATE SKIP LOCKED, so no other dispatcher sends it too) and lists the sources with
messages to file; sources being worked on (their lock is held) are left for the next dispatch.
`WhenDue` is beat's schedule for the dispatcher: every MAILBOX_DISPATCH_INTERVAL seconds, but only
when there is such work, so an idle system sends no task at all (and Flower lists none).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import timedelta

from celery.schedules import schedstate, schedule
from sqlalchemy import select

from app.core.config import get_settings
from app.core.db import session_scope
from app.models import Source
from app.models.base import utcnow
from app.services.mailboxes import is_due, settle_candidates, sync_default_source, work_pending
from app.tasks.mailbox.lock import held

log = logging.getLogger("copydesk.mailbox")


@dataclass
class DueWork:
    polls: list[tuple[str, float]] = field(default_factory=list)  # (source id, seconds the poll task may wait)
    settles: list[str] = field(default_factory=list)


def poll_expiry(source: Source) -> float:
    """How long a poll task may wait in the queue before it is dropped; the dispatcher sends no other
    poll of the source meanwhile (a poll lost with its worker is sent again after this long)."""
    return max(2 * get_settings().mailbox_dispatch_interval, float(min(source.poll_interval, 300)))


def due_work() -> DueWork:
    """Claim the sources to poll now and list those to settle (none twice, none being worked on).
    The default mailbox is created or updated from its variables first."""
    sync_default_source()
    moment = utcnow()
    work = DueWork()
    with session_scope() as session:
        due = session.execute(select(Source.id).where(is_due(moment))).scalars().all()
    busy = held(due)
    free = [source_id for source_id in due if str(source_id) not in busy]
    if free:
        with session_scope() as session:
            claimed = session.execute(
                select(Source)
                .where(Source.id.in_(free), is_due(moment))
                .order_by(Source.next_poll_at.asc().nulls_first())
                .with_for_update(skip_locked=True)
            ).scalars().all()
            for source in claimed:
                expires = poll_expiry(source)
                source.next_poll_at = moment + timedelta(seconds=expires)  # provisional: the poll sets the real one
                work.polls.append((str(source.id), expires))
    with session_scope() as session:
        to_settle = {str(source_id) for source_id in session.execute(settle_candidates()).scalars()}
    to_settle -= {source_id for source_id, _ in work.polls}  # a poll files what has ended first
    work.settles = sorted(to_settle - held(to_settle))
    return work


class WhenDue(schedule):
    """Beat's schedule for the dispatcher: its interval, and only when a mailbox is due or has mail
    to file. When that cannot be told (the database is down) the dispatcher is sent, to report it."""

    def is_due(self, last_run_at):
        state = super().is_due(last_run_at)
        if not state.is_due:
            return state
        try:
            pending = work_pending()
        except Exception as exc:
            log.warning("mailbox: cannot tell whether a mailbox is due, dispatching anyway: %s", exc)
            pending = True
        return state if pending else schedstate(is_due=False, next=self.seconds)
