"""Prometheus metrics, computed at scrape time from the records that are the source of truth.

Workers run as separate processes, often on other machines, so counting in process memory would need
prometheus multiprocess mode (one machine only) or a push gateway. Instead every number here is read
from PostgreSQL (runs, steps, items, their append-only events) and from the broker (queue lengths)
when /metrics is scraped, and kept for `CACHE_SECONDS` so a burst of scrapes costs one set of queries.
Every API instance reports the same totals: scrape one of them (or aggregate with max()).

Counters come from rows that are only ever added (runs, run events), so they only grow. The step
duration histogram is built from the steps and items as recorded: a resumed step counts once, with
its last execution. Labels are workflow names, step kinds, queue names and states — never titles,
file names, addresses or anything else taken from a manuscript or the configuration's secrets.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from sqlalchemy import text

from app.core.config import get_settings
from app.core.connections import async_redis_client
from app.core.db import async_sessions

log = logging.getLogger("copydesk.metrics")

CACHE_SECONDS = 5.0
QUEUES = ("cpu", "io")
# Step durations range from milliseconds (store) to minutes (LLM edits of long articles, LibreOffice).
BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0)
TERMINAL = ("succeeded", "failed", "cancelled")


# --- queries ---------------------------------------------------------------------------------------

RUNS_STARTED = text("select workflow, count(*) from runs group by workflow")
RUNS_BY_STATE = text("select workflow, state, count(*) from runs group by workflow, state")
# Run events are append-only: a run that fails, is resumed and then succeeds counts one failure and
# one success, and the counters never go down.
RUNS_FINISHED = text(
    """
    select r.workflow, e.state, count(*)
    from run_events e join runs r on r.id = e.run_id
    where e.kind = 'run' and e.state in ('succeeded', 'failed', 'cancelled')
    group by r.workflow, e.state
    """
)
RETRIES = text(
    """
    select s.task, count(*)
    from run_events e join steps s on s.run_id = e.run_id and s.name = e.step
    where e.kind in ('step', 'item') and e.state = 'retrying'
    group by s.task
    """
)
# One execution of a step kind: a whole step, or one item of a fan-out (the fan-out step itself only
# waits for its items, so its own span is not an execution of its kind).
_EXECUTIONS = """
    select task as kind, state, extract(epoch from finished_at - started_at) as seconds
    from steps
    where items_total is null and started_at is not null and finished_at is not null
      and state in ('succeeded', 'failed')
    union all
    select s.task, i.state, extract(epoch from i.finished_at - i.started_at)
    from step_items i join steps s on s.id = i.step_id
    where i.started_at is not null and i.finished_at is not null and i.state in ('succeeded', 'failed')
"""
STEP_DURATIONS = text(
    "select kind, state, count(*), coalesce(sum(greatest(seconds, 0)), 0), "
    + ", ".join(f"count(*) filter (where seconds <= {b!r})" for b in BUCKETS)
    + f" from ({_EXECUTIONS}) x group by kind, state"
)
# LLM usage: what each run spent, as the transform step adds it up in runs.usage (flat and cumulative
# per run: {"prompt_tokens", "completion_tokens", "requests", "cost_usd", "engine", …}).
LLM_USAGE = text(
    """
    select workflow,
        coalesce(sum(case when jsonb_typeof(usage -> 'prompt_tokens') = 'number'
                          then (usage ->> 'prompt_tokens')::numeric end), 0),
        coalesce(sum(case when jsonb_typeof(usage -> 'completion_tokens') = 'number'
                          then (usage ->> 'completion_tokens')::numeric end), 0),
        coalesce(sum(case when jsonb_typeof(usage -> 'requests') = 'number'
                          then (usage ->> 'requests')::numeric end), 0),
        coalesce(sum(case when jsonb_typeof(usage -> 'cost_usd') = 'number'
                          then (usage ->> 'cost_usd')::numeric end), 0)
    from runs
    where jsonb_typeof(usage) = 'object' and usage <> '{}'::jsonb
    group by workflow
    """
)


async def _database_families() -> list[Metric]:
    async with async_sessions()() as session:

        async def rows(query):
            return (await session.execute(query)).all()

        queries = (RUNS_STARTED, RUNS_BY_STATE, RUNS_FINISHED, RETRIES, STEP_DURATIONS, LLM_USAGE)
        started, by_state, finished, retries, durations, usage = [await rows(q) for q in queries]

    runs_started = _family(
        CounterMetricFamily, "copydesk_runs_started", "Runs created (submitted or started), by workflow.",
        ["workflow"], started,
    )  # fmt: skip
    runs_finished = _family(
        CounterMetricFamily,
        "copydesk_runs_finished",
        "Runs that ended, by workflow and outcome (succeeded, failed, cancelled); a resumed run that "
        "ends again counts again.",
        ["workflow", "state"],
        finished,
    )
    runs_now = _family(
        GaugeMetricFamily, "copydesk_runs", "Runs by current state (queued, running, awaiting_approval, …).",
        ["workflow", "state"], by_state,
    )  # fmt: skip
    retry_family = _family(
        CounterMetricFamily, "copydesk_step_retries", "Retries scheduled after a failed attempt, by step kind.",
        ["kind"], retries,
    )  # fmt: skip

    duration = HistogramMetricFamily(
        "copydesk_step_duration_seconds",
        "How long one execution of a step kind took (a step, or one item of a fan-out), by outcome.",
        labels=["kind", "state"],
    )
    for row in durations:
        kind, state, count, total, cumulative = row[0], row[1], row[2], float(row[3]), row[4:]
        buckets = [(_le(b), n) for b, n in zip(BUCKETS, cumulative, strict=True)] + [("+Inf", count)]
        duration.add_metric([kind, state], buckets, total)

    tokens = CounterMetricFamily(
        "copydesk_llm_tokens",
        "LLM tokens spent, by workflow and type (prompt, completion).",
        labels=["workflow", "type"],
    )
    requests = CounterMetricFamily(
        "copydesk_llm_requests", "Requests sent to the LLM, by workflow.", labels=["workflow"]
    )
    cost = CounterMetricFamily(
        "copydesk_llm_cost_usd", "Estimated LLM cost in US dollars, by workflow.", labels=["workflow"]
    )
    for workflow, prompt, completion, n_requests, usd in usage:
        tokens.add_metric([workflow, "prompt"], float(prompt))
        tokens.add_metric([workflow, "completion"], float(completion))
        requests.add_metric([workflow], float(n_requests))
        cost.add_metric([workflow], float(usd))
    return [runs_started, runs_finished, runs_now, retry_family, duration, tokens, requests, cost]


def _family(kind, name: str, documentation: str, labels: list[str], rows) -> Metric:
    """A counter or gauge from rows of (label values…, value)."""
    family = kind(name, documentation, labels=labels)
    for *values, n in rows:
        family.add_metric(values, n)
    return family


def _le(bound: float) -> str:
    return repr(float(bound))


async def _broker_families() -> list[Metric]:
    url = get_settings().redis_url or "redis://redis-url-not-configured.invalid"
    client = async_redis_client(url)
    try:
        async with client.pipeline(transaction=False) as pipe:
            for queue in QUEUES:
                pipe.llen(queue)
            # kombu: delivered, not yet acknowledged (running, or waiting for a retry countdown)
            pipe.hlen("unacked")
            values = await pipe.execute()
    finally:
        await client.aclose()
    lengths = GaugeMetricFamily(
        "copydesk_queue_length",
        "Tasks waiting in a broker queue (not yet taken by a worker).",
        labels=["queue"],
    )
    for queue, n in zip(QUEUES, values[: len(QUEUES)], strict=True):
        lengths.add_metric([queue], n)
    unacked = GaugeMetricFamily(
        "copydesk_queue_unacked",
        "Tasks taken by a worker and not yet acknowledged (running or scheduled for a retry).",
    )
    unacked.add_metric([], values[-1])
    return [lengths, unacked]


async def collect() -> list[Metric]:
    """Every family, plus copydesk_dependency_up telling which source answered (a scrape never fails
    because the database or the broker is down: it says so)."""
    up = GaugeMetricFamily(
        "copydesk_dependency_up",
        "1 when the source of these metrics answered this scrape.",
        labels=["dependency"],
    )
    families: list[Metric] = []
    for name, source in (("database", _database_families), ("redis", _broker_families)):
        try:
            families += await asyncio.wait_for(source(), timeout=10)
            up.add_metric([name], 1)
        except Exception as exc:  # reported as a metric; the message names the failure, not a secret
            log.warning("metrics: %s unavailable: %s: %s", name, type(exc).__name__, exc)
            up.add_metric([name], 0)
    return [up, *families]


class _Families:
    def __init__(self, families: Iterable[Metric]) -> None:
        self.families = list(families)

    def collect(self) -> Iterable[Metric]:
        return self.families


_cache: tuple[float, bytes] | None = None


async def render() -> bytes:
    """The Prometheus text exposition, at most CACHE_SECONDS old. (Two scrapes at the same moment
    may both compute it; that is harmless and cheaper than a lock shared across event loops.)"""
    global _cache
    if _cache is not None and time.monotonic() - _cache[0] < CACHE_SECONDS:
        return _cache[1]
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Families(await collect()))
    body = generate_latest(registry)
    _cache = (time.monotonic(), body)
    return body


def reset_cache() -> None:
    global _cache
    _cache = None
