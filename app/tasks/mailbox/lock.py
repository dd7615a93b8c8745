"""One poll or settle of a source at a time: a Redis lock per source (redis-py's Lock), kept alive by
a thread while the work lasts, so a dead holder's lock expires after STEP_HEARTBEAT_TIMEOUT seconds."""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager

import redis
from redis.exceptions import LockError

from app.core.config import get_settings
from app.core.redis_client import redis_client

log = logging.getLogger("copydesk.mailbox")

LOCK_PREFIX = "copydesk:mailbox:lock:"


def lock_key(source_id: uuid.UUID | str) -> str:
    return f"{LOCK_PREFIX}{source_id}"


def held(source_ids: Iterable[uuid.UUID | str]) -> set[str]:
    """The sources among these whose lock is held by someone (one round trip)."""
    ids = [str(source_id) for source_id in source_ids]
    if not ids:
        return set()
    pipe = redis_client().pipeline(transaction=False)
    for source_id in ids:
        pipe.exists(lock_key(source_id))
    return {source_id for source_id, found in zip(ids, pipe.execute()) if found}


@contextmanager
def source_lock(source_id: uuid.UUID | str) -> Iterator[bool]:
    """`with source_lock(id) as mine:` — True when this process holds the source's lock for the
    block, False (at once, without waiting) when someone else does."""
    settings = get_settings()
    lock = redis_client().lock(
        lock_key(source_id), timeout=settings.heartbeat_timeout, blocking=False, thread_local=False
    )
    if not lock.acquire():
        yield False
        return
    stop = threading.Event()
    every = max(0.2, min(settings.heartbeat_interval, settings.heartbeat_timeout / 3))
    keeper = threading.Thread(target=_keep_alive, args=(lock, stop, every), name="mailbox-lock", daemon=True)
    keeper.start()
    try:
        yield True
    finally:
        stop.set()
        keeper.join(5)
        try:
            lock.release()
        except LockError:  # it expired (a long outage) and may be someone else's now: theirs to release
            log.warning("mailbox: the lock %s had expired before it was released", lock.name)
        except redis.RedisError as exc:  # it expires by itself
            log.warning("mailbox: could not release the lock %s: %s", lock.name, exc)


def _keep_alive(lock, stop: threading.Event, every: float) -> None:
    while not stop.wait(every):
        try:
            lock.reacquire()
        except LockError:
            log.warning("mailbox: lost the lock %s while working", lock.name)
            return
        except redis.RedisError as exc:  # keep trying: the timeout covers a short outage
            log.warning("mailbox: could not renew the lock %s: %s", lock.name, exc)
