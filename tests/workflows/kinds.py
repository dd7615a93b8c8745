"""Step kinds used only by the engine tests (registered in the worker through STEP_MODULES).

Each records what it did in Redis, so tests can count executions across real worker processes. A step
named in payload.hold waits, once noted, until the test releases the run (`release(redis, run_id)`):
the test holds it where it needs it instead of racing the worker."""

from __future__ import annotations

import time

from app.core.config import get_settings
from app.core.connections import redis_client
from app.core.errors import InvalidDocument, ServiceUnavailable
from app.workflows.registry import StepContext, step_kind


def _redis():
    return redis_client(get_settings().redis_url)


HOLD_LIMIT = 300  # seconds a held step waits for its release before it fails


def release(r, run_id: str) -> None:
    """Let the held steps of a run go on (r: a Redis client on the workers' Redis)."""
    r.set(f"test:{run_id}:release", "1")


def _note(ctx: StepContext) -> None:
    r = _redis()
    label = ctx.step if ctx.index is None else f"{ctx.step}[{ctx.index}]"
    r.rpush(f"test:{ctx.run_id}:order", label)
    r.incr(f"test:{ctx.run_id}:count:{label}")
    if ctx.step in (ctx.payload.get("hold") or []):
        deadline = time.monotonic() + HOLD_LIMIT
        while not r.exists(f"test:{ctx.run_id}:release"):
            if time.monotonic() > deadline:
                raise InvalidDocument(f"{label} was held {HOLD_LIMIT} s and never released")
            time.sleep(0.05)


@step_kind("t_work", outputs={"n": int})
def work(ctx: StepContext) -> dict:
    """Sleep `options.seconds` (or payload.durations[step]), note the execution, optionally fail."""
    _note(ctx)
    seconds = float(ctx.options.get("seconds", (ctx.payload.get("durations") or {}).get(ctx.step, 0)))
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        time.sleep(min(0.05, max(0.0, deadline - time.monotonic())))
    if ctx.step in (ctx.payload.get("fail_steps") or []):
        raise InvalidDocument(f"{ctx.step} was told to fail")
    return {"n": 1}


@step_kind("t_list", outputs={"items": list})
def make_list(ctx: StepContext) -> dict:
    """Produce `payload.count` items for a fan-out."""
    _note(ctx)
    return {"items": [f"item-{i}" for i in range(int(ctx.payload.get("count", 0)))]}


@step_kind("t_item", outputs={"value": str}, queue="io")
def item(ctx: StepContext) -> dict:
    """One fan-out item: sleep, fail when listed in payload.fail_items (unless the run was resumed
    with payload flag cleared through Redis), note the execution."""
    _note(ctx)
    time.sleep(float(ctx.payload.get("item_seconds", 0)))
    r = _redis()
    if ctx.index in (ctx.payload.get("fail_items") or []) and not r.get(f"test:{ctx.run_id}:heal"):
        raise InvalidDocument(f"item {ctx.item} is broken")
    return {"value": str(ctx.item)}


@step_kind("t_flaky", outputs={"attempts": int})
def flaky(ctx: StepContext) -> dict:
    """Fail with a transient error `payload.failures` times, then succeed."""
    _note(ctx)
    r = _redis()
    n = r.incr(f"test:{ctx.run_id}:flaky:{ctx.step}")
    if n <= int(ctx.payload.get("failures", 0)):
        raise ServiceUnavailable(f"transient failure #{n}", retry_after=ctx.payload.get("retry_after"))
    return {"attempts": n}
