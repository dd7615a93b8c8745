"""Step kinds for the engine benchmark: they only sleep, so what is measured is the engine."""

from __future__ import annotations

import time

from celery import chain, chord, group

from app.core.broker import celery_app
from app.workflows.registry import StepContext, step_kind


@step_kind("b_sleep", outputs={"slept": float})
def sleep_step(ctx: StepContext) -> dict:
    seconds = float(ctx.options.get("seconds", 0.05))
    time.sleep(seconds)
    return {"slept": seconds}


@step_kind("b_images", outputs={"images": list})
def images_step(ctx: StepContext) -> dict:
    time.sleep(float(ctx.options.get("seconds", 0.05)))
    return {"images": [f"image-{i}" for i in range(int(ctx.payload.get("count", 10)))]}


@step_kind("b_item", outputs={"slept": float}, queue="io")
def item_step(ctx: StepContext) -> dict:
    seconds = float(ctx.payload.get("item_seconds", 0.05))
    time.sleep(seconds)
    return {"slept": seconds}


# The same shapes as plain Celery tasks, without Copydesk's engine: the baseline that shows what
# Celery itself costs on the same workers (bench/engine.py runs both, interleaved).


@celery_app.task(name="bench.plain.sleep")
def plain_sleep(seconds: float) -> float:
    time.sleep(seconds)
    return seconds


@celery_app.task(name="bench.plain.noop")
def plain_noop() -> None:
    return None


@celery_app.task(name="bench.plain.fan_out", bind=True)
def plain_fan_out(self, count: int, seconds: float):
    # A run-time fan-out the way the engine makes one: the task replaces itself with a chord.
    items = [plain_sleep.si(seconds).set(queue="io") for _ in range(count)]
    raise self.replace(chord(items, plain_noop.si().set(queue="io")))


def plain_publish_shape(count: int, seconds: float):
    """store → convert → parse → {transform ‖ upload_image × count} → publish → finish, laid out as
    Copydesk's compiler lays out publish_document, on the same queues."""
    io, cpu = {"queue": "io"}, {"queue": "cpu"}
    return chain(
        plain_sleep.si(seconds).set(**io),
        plain_sleep.si(seconds).set(**cpu),
        plain_sleep.si(seconds).set(**cpu),
        group(plain_sleep.si(seconds).set(**io), plain_fan_out.si(count, seconds).set(**io)),
        plain_sleep.si(seconds).set(**io),
        plain_noop.si().set(**io),
    )


def plain_fan_out_shape(count: int, seconds: float):
    io = {"queue": "io"}
    return chain(plain_sleep.si(0).set(**io), plain_fan_out.si(count, seconds).set(**io), plain_noop.si().set(**io))
