"""A host cut off from PostgreSQL or Redis notices in seconds, not after the kernel's minutes or hours.

The cut drops packets in the switch: no reset, no "unreachable", as when a network partitions. Each
test waits for the host to report the dead peer within a deadline derived from the connection
settings (CONNECT_TIMEOUT, DEAD_PEER_TIMEOUT, REDIS_SOCKET_TIMEOUT, REDIS_RETRIES: their defaults),
doubled for a loaded machine; then heals the link and checks that nothing was lost. Without those
settings the same waits are about 15 minutes (a query in flight: the kernel's retransmissions), two
hours (an idle connection) or 10 minutes (redis-py's nested retries).
"""

from __future__ import annotations

import re
import time

import pytest

from tests.cluster.harness import PG_PORT, REDIS_PORT, setting
from tests.support import wait_until

pytestmark = [pytest.mark.cluster, pytest.mark.postgres, pytest.mark.redis, pytest.mark.worker, pytest.mark.slow,
              pytest.mark.timeout(900)]

# Generous for a loaded machine: the sweeper needs a stale heartbeat and a quiet run before it
# re-queues what a cut swallowed.
RECOVERY = 2 * (setting("STEP_HEARTBEAT_TIMEOUT") + setting("RUN_STUCK_AFTER") + setting("SWEEP_INTERVAL")) + 60


def loaded(bound: float) -> float:
    return 2 * bound + 10


def running_on(cluster, run_id: str, step: str) -> str:
    def found():
        return next((w for w, name, _ in cluster.running([run_id]) if name == step and w), None)

    return wait_until(found, timeout=120, interval=0.2, message=f"step {step} to run")


def test_worker_notices_database_cut(cluster):
    # The heartbeat's next round trip waits DEAD_PEER_TIMEOUT on its pooled connection, then the
    # pool's reconnect CONNECT_TIMEOUT; the failure is logged.
    bound = setting("STEP_HEARTBEAT_INTERVAL") + setting("DEAD_PEER_TIMEOUT") + setting("CONNECT_TIMEOUT")
    run_id = cluster.probe.call("start_run", "t_nested", {"durations": {"a": 60}})
    host = running_on(cluster, run_id, "a")
    worker = cluster.worker(host)
    mark = worker.mark()
    started = time.monotonic()
    with cluster.cut(host, "data", PG_PORT):
        worker.wait_log(re.compile(r"heartbeat failed.*OperationalError"), timeout=loaded(bound), since=mark,
                        message=f"{host} to report PostgreSQL unreachable")
        print(f"\n{host} noticed the database cut after {time.monotonic() - started:.1f}s (bound {bound:.0f}s)")
    assert cluster.wait_runs([run_id], timeout=RECOVERY) == {run_id: "succeeded"}


def test_worker_notices_redis_cut(cluster):
    # The item ends during the cut and its result goes to the result backend: each of the
    # REDIS_RETRIES + 1 tries waits for a reply or reconnects, and each connect is tried as often.
    tries = setting("REDIS_RETRIES") + 1
    bound = tries * tries * max(setting("CONNECT_TIMEOUT"), setting("REDIS_SOCKET_TIMEOUT")) + tries
    run_id = cluster.probe.call("start_run", "t_fanout", {"count": 1, "item_seconds": 10})
    host = running_on(cluster, run_id, "each")
    worker = cluster.worker(host)
    mark = worker.mark()
    started = time.monotonic()
    with cluster.cut(host, "data", REDIS_PORT):
        worker.wait_log(re.compile(r"network:(TimeoutError|ConnectionError)"),
                        timeout=10 + loaded(bound), since=mark, message=f"{host} to report Redis unreachable")
        print(f"\n{host} noticed the Redis cut after {time.monotonic() - started:.1f}s "
              f"(the item sleeps 10 s first; bound {bound:.0f}s)")
    assert cluster.wait_runs([run_id], timeout=RECOVERY) == {run_id: "succeeded"}


def test_api_notices_database_cut(cluster):
    # asyncpg has no keepalive parameters: the engine sets them on its sockets. A request on a
    # pooled connection to a vanished database answers 503 once the pre-ping gives up and the
    # reconnect times out.
    bound = setting("DEAD_PEER_TIMEOUT") + setting("CONNECT_TIMEOUT")
    auth = {"token": cluster.token}
    assert cluster.probe.call("http", "GET", "/runs?limit=1", **auth)["status"] == 200  # a pooled connection
    with cluster.cut("api", "data", PG_PORT):
        started = time.monotonic()
        answer = cluster.probe.call("http", "GET", "/runs?limit=1", timeout=loaded(bound), **auth)
        print(f"\nthe API answered {answer['status']} after {time.monotonic() - started:.1f}s (bound {bound:.0f}s)")
        assert answer["status"] == 503, answer
    wait_until(lambda: cluster.probe.call("http", "GET", "/runs?limit=1", **auth)["status"] == 200, timeout=60,
               message="the API to reach the database again")
