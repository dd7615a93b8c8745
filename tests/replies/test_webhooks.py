"""Webhooks end to end: endpoints made through the admin API, runs of the test workflows on real workers,
deliveries to the receiver (tests/servers/webhook_receiver.py), which checks every signature and
fails the first tries when told to."""

from __future__ import annotations

import uuid

import pytest

from tests.replies.helpers import drive, notifications, settled
from tests.support import free_port, wait_run

pytestmark = [pytest.mark.smtp, pytest.mark.worker, pytest.mark.postgres, pytest.mark.redis]


def start(client, workflow: str, **payload) -> str:
    response = client.post(f"/workflows/{workflow}/runs", json=payload)
    assert response.status_code == 201, response.text
    return response.json()["id"]


def deliveries(run_id, count: int, hook: dict):
    """The run's deliveries to this test's webhook once `count` of them have all ended, else None."""
    rows = notifications(run_id, webhook_id=uuid.UUID(hook["id"]))
    return settled(rows) if len(rows) >= count else None


def test_run_events_arrive_signed_and_are_retried_with_backoff(
    notify_stack, webhooks, webhook_receiver, client, admin_client
):
    name = uuid.uuid4().hex[:8]
    hook = webhooks(webhook_receiver.url(name), workflow="t_control", description="newsroom chat")
    webhook_receiver.expect(name, hook["secret"], fail_first=2)
    elsewhere = webhooks(webhook_receiver.url(f"{name}-other"), workflow="t_fanout")
    webhook_receiver.expect(f"{name}-other", elsewhere["secret"])
    assert "secret" not in admin_client.get(f"/webhooks/{hook['id']}").json()

    run_id = start(client, "t_control")
    wait_run(client, run_id, states=("awaiting_approval",))
    [waiting] = drive(lambda: deliveries(run_id, 1, hook), message="the awaiting_approval delivery")
    assert (waiting.event, waiting.state, waiting.attempts) == ("awaiting_approval", "sent", 3)
    assert [entry.get("next_wait") for entry in waiting.attempt_log] == [0.2, 0.4, None]  # backoff, then sent
    assert waiting.attempt_log[2]["ok"]

    assert client.post(f"/runs/{run_id}/approve").status_code == 200
    wait_run(client, run_id)
    first, done = drive(lambda: deliveries(run_id, 2, hook), message="the succeeded delivery")
    assert (done.event, done.state, done.attempts) == ("succeeded", "sent", 1)

    requests = webhook_receiver.requests(name)
    assert len(requests) == 4 and all(r["verified"] for r in requests)
    assert [r["status"] for r in requests] == [500, 500, 204, 204]
    assert {r["headers"]["webhook-id"] for r in requests[:3]} == {str(waiting.id)}  # one id per delivery
    assert requests[3]["headers"]["webhook-id"] == str(done.id)
    body = requests[3]["body"]
    assert body["type"] == "run.succeeded" and body["data"]["run_id"] == run_id
    assert body["data"]["workflow"] == "t_control" and body["data"]["run_url"].endswith(f"/runs/{run_id}")
    assert webhook_receiver.requests(f"{name}-other") == []  # another workflow's webhook

    listed = admin_client.get(f"/webhooks/{hook['id']}/deliveries").json()
    assert [(d["event"], d["state"], d["attempts"], d["recipient"]) for d in listed] == [
        ("succeeded", "sent", 1, hook["url"]), ("awaiting_approval", "sent", 3, hook["url"])
    ]  # fmt: skip
    # on the run, which editors read, the URL without its path (chat services keep a token there)
    on_run = [
        n for n in client.get(f"/runs/{run_id}").json()["notifications"] if n["webhook_id"] == hook["id"]
    ]
    shown = f"http://127.0.0.1:{webhook_receiver.port}/…"
    assert [(n["channel"], n["event"], n["recipient"]) for n in on_run] == [
        ("webhook", "awaiting_approval", shown), ("webhook", "succeeded", shown)
    ]  # fmt: skip
    assert waiting.attempt_log[0]["error"] == f"the webhook endpoint {shown} answered 500"


def test_a_failed_run_is_announced_with_its_error(notify_stack, webhooks, webhook_receiver, client):
    name = uuid.uuid4().hex[:8]
    hook = webhooks(webhook_receiver.url(name), workflow="t_control", events=["failed"])
    webhook_receiver.expect(name, hook["secret"])

    run_id = start(client, "t_control", fail_steps=["first"])
    assert wait_run(client, run_id)["state"] == "failed"
    [delivery] = drive(lambda: deliveries(run_id, 1, hook), message="the failed delivery")
    assert delivery.state == "sent"
    [request] = webhook_receiver.requests(name)
    data = request["body"]["data"]
    assert request["body"]["type"] == "run.failed" and data["error_step"] == "first"
    assert data["error"] == "first was told to fail"


def test_a_failing_endpoint_never_blocks_or_fails_a_run(notify_stack, webhooks, client):
    dead = f"http://127.0.0.1:{free_port()}/nobody-listens"
    hook = webhooks(dead, workflow="t_fanout")

    run_id = start(client, "t_fanout", count=2)
    run = wait_run(client, run_id)
    assert run["state"] == "succeeded" and run["warnings"] == []
    [delivery] = drive(lambda: deliveries(run_id, 1, hook), message="the delivery to give up")
    assert (delivery.state, delivery.attempts, delivery.last_error_code) == ("failed", 4, "connection")
    assert [entry.get("next_wait") for entry in delivery.attempt_log] == [
        0.2,
        0.4,
        0.8,
        None,
    ]  # NOTIFY_MAX_ATTEMPTS=4
    assert client.get(f"/runs/{run_id}").json()["state"] == "succeeded"


def test_webhook_endpoints_are_checked(notify_stack, webhooks, webhook_receiver, admin_client):
    url = webhook_receiver.url(uuid.uuid4().hex[:8])
    hook = webhooks(url)
    assert hook["secret"].startswith("whsec_") and hook["workflow"] is None
    assert hook["events"] == ["succeeded", "awaiting_approval", "failed"]
    assert admin_client.post("/webhooks", json={"url": url}).status_code == 409
    assert admin_client.post("/webhooks", json={"url": "ftp://example.org/x"}).status_code == 422
    assert admin_client.post("/webhooks", json={"url": url + "x", "workflow": "no_such"}).status_code == 404
    assert admin_client.post("/webhooks", json={"url": url + "y", "events": ["published"]}).status_code == 422
    changed = admin_client.patch(
        f"/webhooks/{hook['id']}", json={"enabled": False, "events": ["failed"]}
    ).json()
    assert changed["enabled"] is False and changed["events"] == ["failed"]
