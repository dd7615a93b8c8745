"""The workflow engine end to end: real worker processes, real Redis and PostgreSQL."""

from __future__ import annotations

import json

import httpx
import pytest
import redis

from tests.support import RUN_ENDED, wait_broker_drained, wait_requeued, wait_run, wait_until
from tests.workflows.kinds import release

pytestmark = [pytest.mark.worker, pytest.mark.postgres, pytest.mark.redis]


@pytest.fixture
def r(stack_env):
    return redis.Redis.from_url(stack_env["env"]["REDIS_URL"], decode_responses=True)


def start(client, name: str, **payload) -> str:
    response = client.post(f"/workflows/{name}/runs", json=payload)
    assert response.status_code == 201, response.text
    return response.json()["id"]



def steps_by_name(run: dict) -> dict:
    return {s["name"]: s for s in run["steps"]}


def count(r, run_id: str, label: str) -> int:
    return int(r.get(f"test:{run_id}:count:{label}") or 0)


@pytest.mark.parametrize("n", [0, 1, 50])
def test_fan_out_of_n_items(client, workers, r, n):
    run_id = start(client, "t_fanout", count=n)
    run = wait_run(client, run_id)
    assert run["state"] == "succeeded", run["error"]
    each = steps_by_name(run)["each"]
    assert each["state"] == "succeeded"
    assert each["items_total"] == n
    assert [i["state"] for i in each["items"]] == ["succeeded"] * n
    assert [i["index"] for i in each["items"]] == list(range(n))
    # every item ran exactly once, and the final step only after all of them
    assert all(count(r, run_id, f"each[{i}]") == 1 for i in range(n))
    order = r.lrange(f"test:{run_id}:order", 0, -1)
    assert order[-1] == "final" and order[0] == "produce"
    # progress counts the items once they are known: produce + n items (or the empty step) + final
    assert run["progress"]["done"] == run["progress"]["total"] == 2 + max(n, 1)


def test_failing_item_fails_the_run_and_resume_reruns_only_that_item(client, workers, r):
    run_id = start(client, "t_fanout", count=6, fail_items=[3])
    wait_run(client, run_id)

    def settled():  # the run fails at once; the other items of the fan-out still finish
        run = client.get(f"/runs/{run_id}").json()
        items = steps_by_name(run)["each"]["items"]
        return run if all(i["state"] in ("succeeded", "failed") for i in items) else None

    run = wait_until(settled, timeout=30, message="the other items to finish")
    assert run["state"] == "failed"
    assert run["error_step"] == "each"
    assert "item 3 (item-3)" in run["error"] and "item item-3 is broken" in run["error"]
    each = steps_by_name(run)["each"]
    assert each["state"] == "failed"
    states = {i["index"]: i["state"] for i in each["items"]}
    assert states[3] == "failed"
    assert all(states[i] == "succeeded" for i in (0, 1, 2, 4, 5))
    assert steps_by_name(run)["final"]["state"] == "pending"  # never ran

    r.set(f"test:{run_id}:heal", "1")  # the cause is fixed
    resumed = client.post(f"/runs/{run_id}/resume")
    assert resumed.status_code == 200, resumed.text
    run = wait_run(client, run_id)
    assert run["state"] == "succeeded", run["error"]
    assert count(r, run_id, "each[3]") == 2  # the failed item ran again
    assert all(count(r, run_id, f"each[{i}]") == 1 for i in (0, 1, 2, 4, 5))  # the others did not
    assert count(r, run_id, "produce") == 1
    assert count(r, run_id, "final") == 1


def test_cancel_in_the_middle_of_a_fan_out(client, stack_env, workers, r):
    run_id = start(client, "t_fanout", count=40, hold=["each"])  # the items started wait for release()
    wait_until(lambda: sum(count(r, run_id, f"each[{i}]") for i in range(40)), timeout=30,
               message="the fan-out to start")
    response = client.post(f"/runs/{run_id}/cancel")
    assert response.status_code == 200
    assert response.json()["state"] == "cancelled"
    release(r, run_id)
    # The items already running finish; the queued ones are taken off the broker and not started.
    wait_broker_drained(stack_env["env"]["REDIS_URL"], message="the cancelled fan-out's tasks to be done with")
    run = client.get(f"/runs/{run_id}").json()
    assert run["state"] == "cancelled"
    items = steps_by_name(run)["each"]["items"]
    executed = sum(count(r, run_id, f"each[{i}]") for i in range(40))
    assert executed < 40  # queued items were not started
    assert {i["state"] for i in items} <= {"succeeded", "cancelled"}
    assert sum(i["state"] == "cancelled" for i in items) >= 40 - executed
    assert count(r, run_id, "final") == 0
    assert client.post(f"/runs/{run_id}/cancel").status_code == 409  # already ended


def test_when_false_skips_retries_are_recorded_then_approval(client, workers, r):
    run_id = start(client, "t_control", failures=2)
    run = wait_run(client, run_id, states=("awaiting_approval", *RUN_ENDED))
    assert run["state"] == "awaiting_approval", run["error"]
    steps = steps_by_name(run)
    assert steps["maybe"]["state"] == "skipped"
    assert "condition is false" in steps["maybe"]["summary"]
    flaky = steps["flaky"]
    assert flaky["state"] == "succeeded"
    assert flaky["attempts"] == 3
    assert [a["attempt"] for a in flaky["attempt_log"]] == [1, 2]
    assert all(a["code"] == "unavailable" and "transient failure" in a["error"] for a in flaky["attempt_log"])
    assert flaky["attempt_log"][1]["next_wait"] >= flaky["attempt_log"][0]["next_wait"]
    assert steps["gate"]["state"] == "awaiting_approval"
    assert count(r, run_id, "gate") == 0 and count(r, run_id, "last") == 0

    approved = client.post(f"/runs/{run_id}/approve")
    assert approved.status_code == 200, approved.text
    run = wait_run(client, run_id)
    assert run["state"] == "succeeded"
    assert steps_by_name(run)["gate"]["approved_at"] is not None
    assert count(r, run_id, "first") == 1 and count(r, run_id, "gate") == 1 and count(r, run_id, "last") == 1


def test_reject_ends_the_run_with_who_and_why(client, stack_env, workers, r):
    run_id = start(client, "t_control")
    wait_run(client, run_id, states=("awaiting_approval",))
    response = client.post(f"/runs/{run_id}/reject", json={"reason": "off topic"})
    assert response.status_code == 200
    run = response.json()
    assert run["state"] == "cancelled"
    assert "rejected by" in run["error"] and "off topic" in run["error"]
    # A rejection sends nothing: once every task on the broker is done, `last` still never ran.
    wait_broker_drained(stack_env["env"]["REDIS_URL"], message="the rejected run's tasks to be done with")
    assert count(r, run_id, "last") == 0
    assert client.post(f"/runs/{run_id}/approve").status_code == 409


def test_when_true_runs_the_step(client, workers, r):
    run_id = start(client, "t_control", skip=False)
    run = wait_run(client, run_id, states=("awaiting_approval", *RUN_ENDED))
    assert steps_by_name(run)["maybe"]["state"] == "succeeded"
    client.post(f"/runs/{run_id}/reject")


def test_nested_group_in_chain_in_chord(client, workers, r):
    run_id = start(client, "t_nested")
    run = wait_run(client, run_id)
    assert run["state"] == "succeeded", run["error"]
    order = r.lrange(f"test:{run_id}:order", 0, -1)
    assert sorted(order) == sorted("abcdefg")
    pos = {step: order.index(step) for step in order}
    for before, after in [("a", "b"), ("a", "f"), ("b", "c"), ("b", "d"), ("c", "e"), ("d", "e"), ("e", "g"), ("f", "g")]:
        assert pos[before] < pos[after], (before, after, order)
    assert all(count(r, run_id, s) == 1 for s in "abcdefg")


def test_events_arrive_in_order_and_the_stream_closes(api, editor_token, client, workers):
    run_id = start(client, "t_fanout", count=5, item_seconds=0.05)
    events = []
    headers = {"Authorization": f"Bearer {editor_token}"}
    with httpx.stream("GET", f"{api}/runs/{run_id}/events", headers=headers, timeout=60) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        current = {}
        for line in response.iter_lines():
            if line.startswith("event:"):
                current["event"] = line.split(":", 1)[1].strip()
            elif line.startswith("data:"):
                current["data"] = json.loads(line.split(":", 1)[1])
            elif line.startswith("id:"):
                current["id"] = int(line.split(":", 1)[1])
            elif line == "" and current:
                events.append(current)
                current = {}
    assert events[-1]["event"] == "end" and events[-1]["data"]["state"] == "succeeded"
    ids = [e["id"] for e in events if "id" in e]
    assert ids == sorted(ids) and len(ids) == len(set(ids))
    run_events = [(e["data"]["kind"], e["data"]["state"]) for e in events if "id" in e]
    assert run_events[0] == ("run", "queued")
    assert ("run", "running") in run_events and run_events[-1] == ("run", "succeeded")
    item_done = [e for e in events if e.get("event") == "item" and e["data"]["state"] == "succeeded"]
    assert sorted(e["data"]["item"] for e in item_done) == [0, 1, 2, 3, 4]
    # Replay from the middle with Last-Event-ID gives exactly the rest.
    middle = ids[len(ids) // 2]
    with httpx.stream("GET", f"{api}/runs/{run_id}/events", headers={**headers, "Last-Event-ID": str(middle)},
                      timeout=30) as response:
        replayed = [int(line.split(":", 1)[1]) for line in response.iter_lines() if line.startswith("id:")]
    assert replayed == [i for i in ids if i > middle]


def test_run_records_its_definition_and_version(client, workers):
    run_id = start(client, "t_fanout", count=1)
    run = wait_run(client, run_id)
    assert run["workflow"] == "t_fanout" and run["workflow_version"] == 1
    assert [s["id"] for s in run["definition"]["steps"]] == ["produce", "each", "final"]


def test_payload_is_validated(client, workers):
    response = client.post("/workflows/t_fanout/runs", json={"count": "many"})
    assert response.status_code == 422
    assert "count" in response.json()["detail"]
    assert client.post("/workflows/no_such/runs", json={}).status_code == 404


@pytest.mark.slow
def test_worker_killed_mid_step_restarted_run_finishes_once(client, stack_env, tmp_path, r):
    """SIGKILL the whole worker while a step runs; a new worker (and the sweeper) finish the run,
    and no step that had succeeded runs again."""
    from tests.fixtures.stack import isolated_stack, start_workers

    # Workers of its own, on a broker of its own: no other worker may pick the step up.
    with isolated_stack(stack_env, tmp_path, {}) as stack:
        r = redis.Redis.from_url(stack["env"]["REDIS_URL"], decode_responses=True)
        run_id = start(client, "t_control", hold=["long"])  # `long` waits for release()
        wait_until(lambda: count(r, run_id, "long") >= 1, timeout=30, message="the long step to start")
        for w in stack["workers"]:
            w.kill()
        run = client.get(f"/runs/{run_id}").json()
        assert steps_by_name(run)["long"]["state"] == "running"
        release(r, run_id)  # the next try of `long` goes through
        stack["workers"][:] = start_workers(stack["env"], tmp_path)
        # The claim of the dead worker goes stale (heartbeat timeout 3 s); the sweeper re-queues.
        wait_requeued(run_id)
        run = wait_run(client, run_id, states=("awaiting_approval", *RUN_ENDED), timeout=60)
        assert run["state"] == "awaiting_approval", run["error"]
        client.post(f"/runs/{run_id}/approve")
        run = wait_run(client, run_id)
        assert run["state"] == "succeeded"
        assert count(r, run_id, "first") == 1 and count(r, run_id, "flaky") == 1
        assert count(r, run_id, "long") == 2  # interrupted once, finished once
        assert count(r, run_id, "last") == 1
