"""Crash points for the mailbox tests, loaded into the test workers through STEP_MODULES.

A test arms a point by setting the Redis key `test:mailbox:crash:<point>`; the next worker that
passes that point inside a Celery task takes the key and SIGKILLs its own process — a machine lost
at the worst moment, with no chance to clean up (the Redis lock is not released, the transaction
not committed, the IMAP session not logged out). Nothing happens outside a worker's task, so the
test process never kills itself.

Points: `after_fetch` (the messages are read, nothing is recorded), `after_record` (recorded and
committed, the runs not sent yet), `before_move` (the runs ended, the message not moved yet).

The points wrap the functions where the mailbox modules look them up (polling, settling).
"""

from __future__ import annotations

import os
import signal

import redis
from celery import current_task

from app.tasks.mailbox import polling, settling
from app.core.config import get_settings

KEY = "test:mailbox:crash:{}"


def _crash_if_armed(point: str) -> None:
    task = current_task._get_current_object()
    if task is None or not task.request.id:
        return
    client = redis.Redis.from_url(get_settings().redis_url)
    if client.delete(KEY.format(point)):
        client.rpush("test:mailbox:crashed", point)
        os.kill(os.getpid(), signal.SIGKILL)


_fetch = polling.fetch
_record_poll = polling.record_poll
_move = settling.move


def fetch(config, cursor):
    result = _fetch(config, cursor)
    if result.messages:
        _crash_if_armed("after_fetch")
    return result


def record_poll(source_id, config, result, summary):
    _record_poll(source_id, config, result, summary)
    if summary.recorded:
        _crash_if_armed("after_record")


def move(config, uids, folder, **kwargs):
    _crash_if_armed("before_move")
    return _move(config, uids, folder, **kwargs)


polling.fetch = fetch
polling.record_poll = record_poll
settling.move = move
