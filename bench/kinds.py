"""Step kinds for the engine benchmark: they only sleep, so what is measured is the engine."""

from __future__ import annotations

import time

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
