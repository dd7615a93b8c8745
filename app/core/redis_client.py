"""One Redis client per process and URL (REDIS_URL, the broker's Redis), for what Copydesk keeps
there beside Celery: the mailboxes' locks, the site terms cache."""

from __future__ import annotations

import functools

import redis

from app.core import connections
from app.core.config import get_settings
from app.core.errors import ConfigurationError


@functools.lru_cache(maxsize=4)
def _redis(url: str) -> redis.Redis:
    return connections.redis_client(url)  # timeouts and keepalive: a dead peer is noticed in seconds


def redis_client() -> redis.Redis:
    url = get_settings().redis_url
    if not url:
        raise ConfigurationError("REDIS_URL is not set: Copydesk keeps its locks and caches in Redis")
    return _redis(url)
