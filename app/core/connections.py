"""Connections to PostgreSQL and Redis that notice a dead peer in seconds.

A peer that vanishes without closing its connections (a host cut off the network, a machine that
froze) leaves a client to the kernel: an idle connection is never checked (keepalive is off by
default, and its timer is two hours), one with unacknowledged data gives up after about fifteen
minutes of retransmissions. redis-py adds its own retries on top: ten per command, each reconnect
retried ten times, about ten minutes against a black hole. So every connection made here has

- CONNECT_TIMEOUT to open it;
- TCP keepalive and TCP_USER_TIMEOUT set so that, once open, it fails DEAD_PEER_TIMEOUT seconds after
  its peer stops answering, idle or not;
- for Redis, REDIS_SOCKET_TIMEOUT on every reply and REDIS_RETRIES tries of a failed command (the
  reconnect inside each try is tried as often: a command gives up after at most
  (REDIS_RETRIES + 1)² × max(CONNECT_TIMEOUT, REDIS_SOCKET_TIMEOUT) seconds).

The Celery broker and result backend get the same values (app/core/broker.py), the database
engines theirs in app/core/db.py.
"""

from __future__ import annotations

import socket
from typing import Any

from app.core.config import get_settings


def tcp_keepalive(dead_after: float) -> dict[int, int]:
    """TCP-level socket options that fail an open connection `dead_after` seconds after its peer went
    silent: keepalive probes start after half of it and go one a second until it is spent (an idle
    connection), and TCP_USER_TIMEOUT bounds data sent and never acknowledged (a busy one)."""
    idle = max(1, int(dead_after) // 2)
    return {
        socket.TCP_KEEPIDLE: idle,
        socket.TCP_KEEPINTVL: 1,
        socket.TCP_KEEPCNT: max(1, int(dead_after) - idle),
        socket.TCP_USER_TIMEOUT: int(dead_after * 1000),
    }


def set_tcp_options(sock) -> None:
    """Apply the settings' keepalive and user timeout to a connected TCP socket (asyncpg's)."""
    if sock is None or sock.family not in (socket.AF_INET, socket.AF_INET6):
        return  # a Unix socket has no peer to lose
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
    for option, value in tcp_keepalive(get_settings().dead_peer_timeout).items():
        sock.setsockopt(socket.IPPROTO_TCP, option, value)


def libpq_options() -> dict[str, int]:
    """Connection parameters for psycopg (libpq): the same keepalive, the user timeout in ms."""
    settings = get_settings()
    options = tcp_keepalive(settings.dead_peer_timeout)
    return {
        "connect_timeout": settings.connect_timeout,
        "keepalives": 1,
        "keepalives_idle": options[socket.TCP_KEEPIDLE],
        "keepalives_interval": options[socket.TCP_KEEPINTVL],
        "keepalives_count": options[socket.TCP_KEEPCNT],
        "tcp_user_timeout": options[socket.TCP_USER_TIMEOUT],
    }


def redis_options(url: str | None = None) -> dict[str, Any]:
    """Connection keyword arguments for redis-py, kombu's Redis transport and Celery's backend (for
    `url`: a Unix socket gets no TCP options)."""
    settings = get_settings()
    options = {
        "socket_timeout": settings.redis_socket_timeout,
        "health_check_interval": settings.redis_health_check_interval,
    }
    if not (url or "").startswith("unix:"):
        options.update(
            socket_connect_timeout=settings.connect_timeout,
            socket_keepalive=True,
            socket_keepalive_options=tcp_keepalive(settings.dead_peer_timeout),
        )
    return options


def _backoff(module):
    return module.ExponentialWithJitterBackoff(base=0.1, cap=1.0)


def redis_client(url: str):
    """A redis-py client with the settings' timeouts and retry budget."""
    import redis
    from redis import backoff
    from redis.retry import Retry

    return redis.Redis.from_url(
        url, retry=Retry(_backoff(backoff), get_settings().redis_retries), **redis_options(url)
    )


def async_redis_client(url: str):
    """The asyncio twin of redis_client (the API's checks and metrics)."""
    import redis.asyncio as aioredis
    from redis import backoff
    from redis.asyncio.retry import Retry

    return aioredis.from_url(
        url, retry=Retry(_backoff(backoff), get_settings().redis_retries), **redis_options(url)
    )
