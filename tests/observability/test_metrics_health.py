"""/metrics, /health and /ready against the real stack: they answer, and they change when runs happen
or a dependency goes away."""

from __future__ import annotations

import os

import pytest
import redis

from tests.observability.helpers import scrape, value
from tests.samples import docx
from tests.support import wait_run, wait_until

pytestmark = [pytest.mark.worker, pytest.mark.postgres, pytest.mark.redis]


def start(client, workflow: str, **payload) -> str:
    response = client.post(f"/workflows/{workflow}/runs", json=payload)
    assert response.status_code == 201, response.text
    return response.json()["id"]


def test_health_answers_without_login(anon):
    response = anon.get("/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_ready_when_everything_is_up(anon, workers):
    response = anon.get("/ready")
    assert response.status_code == 200, response.text
    assert response.json() == {"status": "ready", "checks": {"database": "ok", "redis": "ok", "worker": "ok"}}


def test_metrics_count_runs_retries_and_step_durations(anon, client, workers, stack_env):
    before = scrape(anon)

    # A run with two transient failures (retried) that then waits for approval.
    waiting = start(client, "t_control", failures=2)
    wait_run(client, waiting, states=("awaiting_approval", "failed"))
    wait_until(
        lambda: value(scrape(anon), "copydesk_runs", workflow="t_control", state="awaiting_approval") >= 1,
        timeout=20, message="the waiting run in copydesk_runs",
    )
    assert client.post(f"/runs/{waiting}/approve").status_code == 200
    # A fan-out of three items that succeeds, and one whose item 1 fails.
    fanned = start(client, "t_fanout", count=3)
    broken = start(client, "t_fanout", count=3, fail_items=[1])
    assert wait_run(client, waiting)["state"] == "succeeded"
    assert wait_run(client, fanned)["state"] == "succeeded"
    assert wait_run(client, broken)["state"] == "failed"

    def counted():
        now = scrape(anon)
        grew = {
            "control started": value(now, "copydesk_runs_started_total", workflow="t_control")
            - value(before, "copydesk_runs_started_total", workflow="t_control"),
            "control succeeded": value(now, "copydesk_runs_finished_total", workflow="t_control", state="succeeded")
            - value(before, "copydesk_runs_finished_total", workflow="t_control", state="succeeded"),
            "fanout started": value(now, "copydesk_runs_started_total", workflow="t_fanout")
            - value(before, "copydesk_runs_started_total", workflow="t_fanout"),
            "fanout succeeded": value(now, "copydesk_runs_finished_total", workflow="t_fanout", state="succeeded")
            - value(before, "copydesk_runs_finished_total", workflow="t_fanout", state="succeeded"),
            "fanout failed": value(now, "copydesk_runs_finished_total", workflow="t_fanout", state="failed")
            - value(before, "copydesk_runs_finished_total", workflow="t_fanout", state="failed"),
            "retries": value(now, "copydesk_step_retries_total", kind="t_flaky")
            - value(before, "copydesk_step_retries_total", kind="t_flaky"),
            # items: 3 + 2 succeeded, 1 failed (each one execution of the kind)
            "items ok": value(now, "copydesk_step_duration_seconds_count", kind="t_item", state="succeeded")
            - value(before, "copydesk_step_duration_seconds_count", kind="t_item", state="succeeded"),
            "items failed": value(now, "copydesk_step_duration_seconds_count", kind="t_item", state="failed")
            - value(before, "copydesk_step_duration_seconds_count", kind="t_item", state="failed"),
            "flaky steps": value(now, "copydesk_step_duration_seconds_count", kind="t_flaky", state="succeeded")
            - value(before, "copydesk_step_duration_seconds_count", kind="t_flaky", state="succeeded"),
        }
        expected = {
            "control started": 1, "control succeeded": 1, "fanout started": 2, "fanout succeeded": 1,
            "fanout failed": 1, "retries": 2, "items ok": 5, "items failed": 1, "flaky steps": 1,
        }
        return (grew, now) if all(grew[k] >= v for k, v in expected.items()) else None

    grew, now = wait_until(counted, timeout=30, interval=1, message="the counters to grow")
    # Exactly these runs happened in between (tests run one at a time): the counts are exact.
    assert grew["retries"] == 2 and grew["control started"] == 1 and grew["fanout failed"] == 1
    # The histogram is cumulative and consistent: the +Inf bucket is the count, buckets never decrease.
    labels = {"kind": "t_item", "state": "succeeded"}
    buckets = sorted(
        (float(dict(key)["le"]), n) for (name, key), n in now.items()
        if name == "copydesk_step_duration_seconds_bucket" and all(dict(key).get(k) == v for k, v in labels.items())
    )
    assert len(buckets) > 5
    assert buckets[-1] == (float("inf"), value(now, "copydesk_step_duration_seconds_count", **labels))
    assert [n for _, n in buckets] == sorted(n for _, n in buckets)
    assert value(now, "copydesk_dependency_up", dependency="database") == 1
    assert value(now, "copydesk_dependency_up", dependency="redis") == 1
    for queue in ("cpu", "io"):
        assert ("copydesk_queue_length", (("queue", queue),)) in now


def test_metrics_sum_the_llm_usage_runs_record(anon, client, workers, stack_env):
    """LLM tokens, requests and cost come from what each run recorded in runs.usage (the transform
    step adds every edit's spending there); runs of the offline editor record zero."""
    from sqlalchemy import update

    from app.core.db import session_scope
    from app.models import Run

    upload = client.post("/documents", files={"file": ("tokens.docx", docx("Token counting", seed=4242))})
    assert upload.status_code == 201, upload.text
    run = wait_run(client, upload.json()["run"]["id"])
    assert run["state"] == "succeeded", run["error"]
    assert run["usage"]["engine"] == "offline" and run["usage"]["prompt_tokens"] == 0
    wait_until(
        lambda: ("copydesk_llm_tokens_total", (("type", "prompt"), ("workflow", "publish_document"))) in scrape(anon),
        timeout=20, message="publish_document in copydesk_llm_tokens_total",
    )

    before = scrape(anon)
    first, second = start(client, "t_fanout", count=0), start(client, "t_fanout", count=0)
    wait_run(client, first), wait_run(client, second)
    with session_scope() as session:  # what an OpenAI edit records (see transform.add_run_usage)
        for run_id, tokens in ((first, (100, 40)), (second, (10, 4))):
            session.execute(update(Run).where(Run.id == run_id).values(usage={
                "prompt_tokens": tokens[0], "completion_tokens": tokens[1], "total_tokens": sum(tokens),
                "requests": 2, "cost_usd": 0.25, "engine": "openai:gpt-4o-mini", "cached_edits": 0,
            }))

    def grew(name, **labels):
        return value(scrape(anon), name, workflow="t_fanout", **labels) - value(before, name, workflow="t_fanout", **labels)

    wait_until(lambda: grew("copydesk_llm_tokens_total", type="prompt") == 110, timeout=20,
               message="the prompt tokens of t_fanout")
    assert grew("copydesk_llm_tokens_total", type="completion") == 44
    assert grew("copydesk_llm_requests_total") == 4
    assert grew("copydesk_llm_cost_usd_total") == pytest.approx(0.5)


def test_metrics_need_no_login_and_expose_no_secret_or_manuscript_data(anon, client, workers, stack_env):
    title = "Confidential merger plans of Example Corp"
    upload = client.post("/documents", files={"file": ("merger-secret-plans.docx", docx(title, seed=777))})
    assert upload.status_code == 201, upload.text
    run_id = upload.json()["run"]["id"]
    wait_run(client, run_id)
    wait_until(lambda: "publish_document" in anon.get("/metrics").text, timeout=20, message="publish_document metrics")
    body = anon.get("/metrics").text  # anonymous: no Authorization header at all
    env = stack_env["env"]
    for secret in (env["JWT_SECRET_KEY"], env["ENCRYPTION_KEY"], env["DATABASE_URL"], env["REDIS_URL"]):
        assert secret not in body
    for private in (title, "merger-secret-plans", run_id, upload.json()["document"]["id"]):
        assert private not in body


def _point_at(env: dict) -> None:
    from app.tasks.celery_app import celery_app
    from tests.fixtures.stack import configure_process

    configure_process(env)
    # configure() closes the app's connection pool but kombu keeps producer pools elsewhere: in its
    # global registry (by broker URL) and in celery_app.control's mailbox (a cached_property). Left
    # alone, every later ping in this process fails with "Acquire on closed pool".
    import kombu.pools

    kombu.pools.reset()
    celery_app.amqp._producer_pool = None
    celery_app.control.mailbox.__dict__.pop("producer_pool", None)


def test_queue_length_and_ready_without_a_worker_then_without_redis(anon, client, workers, stack_env):
    """A broker nobody consumes: the task waits in the queue (metrics show it) and /ready says no
    worker answered; then the broker dies: /ready and /metrics say Redis is down."""
    from tests.fixtures.stack import RedisServer

    lonely = RedisServer()
    _point_at({**stack_env["env"], "REDIS_URL": lonely.url})
    try:
        run_id = start(client, "t_control")
        r = redis.Redis.from_url(lonely.url)
        assert r.llen("cpu") == 1  # the first step's task, waiting
        wait_until(
            lambda: value(scrape(anon), "copydesk_queue_length", queue="cpu") == 1,
            timeout=20, message="queue length 1 in /metrics",
        )
        response = anon.get("/ready")
        assert response.status_code == 503
        body = response.json()
        assert body["status"] == "not ready"
        assert body["checks"]["database"] == "ok" and body["checks"]["redis"] == "ok"
        assert body["checks"]["worker"] == "unavailable: RuntimeError: no worker answered a ping"
        assert client.post(f"/runs/{run_id}/cancel").status_code == 200  # nothing will ever run it

        lonely.stop()
        response = anon.get("/ready")
        assert response.status_code == 503
        assert response.json()["checks"]["redis"].startswith("unavailable")
        wait_until(
            lambda: value(scrape(anon), "copydesk_dependency_up", dependency="redis") == 0,
            timeout=20, message="copydesk_dependency_up{dependency=redis} 0",
        )
        assert value(scrape(anon), "copydesk_dependency_up", dependency="database") == 1
    finally:
        os.environ["REDIS_URL"] = stack_env["env"]["REDIS_URL"]
        _point_at(stack_env["env"])
        lonely.stop()
    # Back on the session's broker, its workers answer again (the first ping may reconnect first).
    def recovered():
        response = anon.get("/ready")
        return True if response.status_code == 200 else response.json()["checks"]

    wait_until(lambda: recovered() is True, timeout=20, message="/ready to recover")
