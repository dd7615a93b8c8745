"""Connection options: every PostgreSQL and Redis connection fails DEAD_PEER_TIMEOUT seconds after its
peer went silent, and a Redis command has a bounded number of tries (tests/cluster/test_dead_peers.py
proves the same on real cuts between hosts)."""

from __future__ import annotations

import socket

import pytest

from app.core import config
from app.core.connections import libpq_options, redis_client, tcp_keepalive


@pytest.fixture
def settings(monkeypatch):
    """Set connection settings for one test; the cached settings are dropped before and after."""
    monkeypatch.setenv("COPYDESK_ENV_FILE", "")

    def apply(**values):
        for name, value in values.items():
            monkeypatch.setenv(name, str(value))
        config.reset_settings_cache()

    yield apply
    monkeypatch.undo()
    config.reset_settings_cache()


@pytest.mark.parametrize("dead_after", [2, 3, 10, 61])
def test_keepalive_spends_exactly_the_dead_peer_timeout(dead_after):
    options = tcp_keepalive(dead_after)
    probes = options[socket.TCP_KEEPIDLE] + options[socket.TCP_KEEPINTVL] * options[socket.TCP_KEEPCNT]
    assert probes == dead_after
    assert options[socket.TCP_USER_TIMEOUT] == dead_after * 1000


def test_libpq_gets_the_connect_timeout_and_keepalive(settings):
    settings(CONNECT_TIMEOUT=3, DEAD_PEER_TIMEOUT=8)
    assert libpq_options() == {"connect_timeout": 3, "keepalives": 1, "keepalives_idle": 4,
                               "keepalives_interval": 1, "keepalives_count": 4, "tcp_user_timeout": 8000}


def test_redis_clients_carry_timeouts_keepalive_and_a_bounded_retry(settings):
    settings(REDIS_SOCKET_TIMEOUT=4, CONNECT_TIMEOUT=3, DEAD_PEER_TIMEOUT=6, REDIS_RETRIES=2)
    kwargs = redis_client("redis://127.0.0.1:6399/0").connection_pool.connection_kwargs
    assert (kwargs["socket_timeout"], kwargs["socket_connect_timeout"]) == (4, 3)
    assert kwargs["socket_keepalive"] and kwargs["socket_keepalive_options"] == tcp_keepalive(6)
    assert kwargs["retry"].get_retries() == 2  # redis-py's default is 10, each connect retried 10 times
    unix = redis_client("unix:///run/redis.sock").connection_pool.connection_kwargs
    assert "socket_keepalive_options" not in unix  # a local socket has no TCP to keep alive


def test_the_broker_and_result_backend_get_the_same(settings, monkeypatch):
    from app.core.broker import celery_app
    from tests.fixtures.stack import configure_process

    settings(REDIS_URL="redis://127.0.0.1:6399/0", REDIS_SOCKET_TIMEOUT=4, DEAD_PEER_TIMEOUT=6, REDIS_RETRIES=2)
    try:
        configure_process({})
        conf = celery_app.conf
        assert conf.broker_transport_options["socket_timeout"] == 4
        assert conf.broker_transport_options["socket_keepalive_options"] == tcp_keepalive(6)
        assert conf.task_publish_retry_policy["max_retries"] == 2
        assert conf.result_backend_transport_options["retry_policy"]["max_retries"] == 2
        assert celery_app.backend.connparams["socket_keepalive_options"] == tcp_keepalive(6)
    finally:  # the Celery app as it was: the session's settings
        monkeypatch.undo()
        configure_process({})
