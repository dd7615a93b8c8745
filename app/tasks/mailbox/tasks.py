"""The mailbox's Celery tasks: thin adapters over dispatch, polling and settling (see the package's
docstring). Their first argument is a source id, and their log lines say so (`source_id`)."""

from __future__ import annotations

from typing import Any

from app.core.config import get_settings
from app.services.mailboxes import DISPATCH_TASK, POLL_TASK, SETTLE_TASK
from app.tasks.celery_app import celery_app
from app.tasks.mailbox.dispatch import due_work
from app.tasks.mailbox.polling import poll_source
from app.tasks.mailbox.settling import settle_source


@celery_app.task(name=DISPATCH_TASK)
def dispatch_task() -> int:
    """Send the polls and settles that are due (beat sends this only when there are some)."""
    return dispatch()


def dispatch() -> int:
    """Send a poll for each enabled source that is due and a settle for each with messages to file;
    the number of tasks sent."""
    work = due_work()
    for source_id, expires in work.polls:
        poll_task.apply_async(args=[source_id], queue="io", expires=expires)
    expires = max(10.0, 2 * get_settings().mailbox_dispatch_interval)
    for source_id in work.settles:
        settle_task.apply_async(args=[source_id], queue="io", expires=expires)
    return len(work.polls) + len(work.settles)


@celery_app.task(name=POLL_TASK, log_field="source_id")
def poll_task(source_id: str) -> dict[str, Any]:
    """Poll one mailbox (sent by the dispatcher, `POST /sources/{id}/poll`, or a poll that found more)."""
    result = poll_source(source_id)
    if result.get("more") and not result.get("error"):  # the folder holds more than one poll takes
        poll_task.apply_async(args=[source_id], queue="io", expires=60)
    return result


@celery_app.task(name=SETTLE_TASK, log_field="source_id")
def settle_task(source_id: str) -> dict[str, Any]:
    """Move one mailbox's messages whose runs have ended to the processed or failed folder."""
    return settle_source(source_id)
