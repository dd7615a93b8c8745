"""A rolling restart of every worker under load (issue 19, test 6): each worker gets SIGTERM (Celery's
warm shutdown) while it runs items, finishes them itself and exits; the next one goes once it is
back. Nothing lost (every run succeeds), nothing done twice (every body started once)."""

from __future__ import annotations

import signal

import pytest

from tests.cluster.harness import WORKERS
from tests.support import wait_until

pytestmark = [pytest.mark.cluster, pytest.mark.postgres, pytest.mark.redis, pytest.mark.worker, pytest.mark.slow,
              pytest.mark.timeout(900)]

ITEM_SECONDS = 3
# The longest step here is one item; a warm shutdown waits for the running ones (loaded machine).
DRAIN = 10 * ITEM_SECONDS + 30


def item_states(cluster, run_ids: list[str], items: list[tuple[str, int]]) -> set[str]:
    rows = cluster.probe.sql(
        "SELECT s.run_id::text, i.index, i.state FROM step_items i JOIN steps s ON s.id = i.step_id"
        " WHERE s.run_id = ANY(%s::uuid[])", [run_ids])
    wanted = set(items)
    return {state for run_id, index, state in rows if (run_id, index) in wanted}


def warm_restart(cluster, host: str, runs: list[str]) -> None:
    """SIGTERM the host's worker while it runs items of `runs`; it must finish them and exit 0."""
    worker = cluster.worker(host)

    def busy():
        return [(run_id, index) for w, run_id, index in cluster.running_items(runs) if w == host]

    in_hand = wait_until(busy, timeout=120, interval=0.2, message=f"{host} to run items")
    mark = worker.mark()
    worker.send_signal(signal.SIGTERM)
    wait_until(lambda: not worker.alive, timeout=DRAIN, interval=0.2, message=f"{host} to drain and exit")
    log = worker.log(mark)
    assert worker.popen.returncode == 0, log[-3000:]
    assert "Warm shutdown" in log
    # what it was running when told to stop, it finished and recorded before exiting
    assert item_states(cluster, runs, in_hand) == {"succeeded"}, log[-3000:]
    cluster.start_worker(host)


def test_rolling_restart_under_load(cluster):
    runs: list[str] = []
    for host in WORKERS:
        runs += [cluster.probe.call("start_run", "t_fanout", {"count": 6, "item_seconds": ITEM_SECONDS})
                 for _ in range(3)]
        warm_restart(cluster, host, runs)
    states = cluster.wait_runs(runs, timeout=300)
    assert set(states.values()) == {"succeeded"}, states
    cluster.assert_done_once(runs)
