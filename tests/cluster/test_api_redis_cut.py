"""The API host cut off from Redis while it accepts uploads (issue 19, test 3): an upload is either
refused with a clear 503 and nothing written, or accepted and its run started once Redis is back;
never a run left queued with no message.

What Copydesk does: the original, the document and the run are written first (PostgreSQL, storage);
when the canvas then cannot be sent, the API answers 202 (accepted, not started) after the bounded
publish retry, and marks the run unsent; the sweeper sends it at its first pass once beat and a
worker reach Redis again.
"""

from __future__ import annotations

import base64
import hashlib
import time

import pytest

from tests.cluster.harness import REDIS_PORT, setting
from tests.samples import docx

pytestmark = [pytest.mark.cluster, pytest.mark.postgres, pytest.mark.redis, pytest.mark.worker, pytest.mark.slow,
              pytest.mark.timeout(900)]


def test_uploads_while_the_api_is_cut_from_redis(cluster):
    tries = setting("REDIS_RETRIES") + 1
    publish_bound = tries * tries * max(setting("CONNECT_TIMEOUT"), setting("REDIS_SOCKET_TIMEOUT")) + tries
    manuscripts = {f"cut-{seed}.docx": docx(title=f"Written during a cut {seed}", seed=100 + seed) for seed in (1, 2)}
    with cluster.cut("api", "data", REDIS_PORT):
        started = time.monotonic()
        pending = {name: cluster.probe.submit("http", "POST", "/documents", token=cluster.token,
                                              file=(name, base64.b64encode(data).decode()),
                                              timeout=2 * publish_bound + 60)
                   for name, data in manuscripts.items()}
        answers = {name: future.result(timeout=4 * publish_bound + 120) for name, future in pending.items()}
        print(f"\nthe API answered {sorted(a['status'] for a in answers.values())} after "
              f"{time.monotonic() - started:.1f}s during the cut")
    healed = time.monotonic()
    accepted = []
    for name, answer in answers.items():
        written = cluster.probe.sql("SELECT count(*) FROM documents WHERE sha256 = %s",
                                    [hashlib.sha256(manuscripts[name]).hexdigest()])[0][0]
        if answer["status"] == 503:
            assert written == 0, f"{name}: refused, yet its document was written"
        else:
            assert answer["status"] in (201, 202), answer
            assert written == 1
            accepted.append(answer["body"]["run"]["id"])
    # Every accepted run starts once Redis answers: at the sweeper's first passes, not after
    # RUN_STUCK_AFTER of quiet.
    states = cluster.wait_runs(accepted, timeout=4 * setting("SWEEP_INTERVAL") + 180)
    assert set(states.values()) <= {"succeeded"}, states
    print(f"the accepted runs ended {time.monotonic() - healed:.1f}s after the link came back")
    reasons = cluster.probe.sql("SELECT message FROM run_events WHERE run_id = ANY(%s::uuid[])"
                                " AND message LIKE 're-queued by the sweeper%%'", [accepted])
    assert {m for (m,) in reasons} <= {"re-queued by the sweeper: recorded while the broker was unavailable"}
