"""Engine overhead: the publish_document shape with steps that sleep 50 ms (wall ÷ critical path,
goal ≤ 1.25), and a fan-out of 20 items sleeping 100 ms on the io queue (wall ÷ 100 ms, goal ≤ 2).
Each is also run as plain Celery tasks of the same shape on the same workers, interleaved with
Copydesk's runs: what Celery alone costs here, and what the engine adds to it.

    .venv/bin/python -m bench.engine [--repeat 25]
"""

from __future__ import annotations

import argparse
import time
import uuid

from bench.harness import save, stack, summary, table, wait_run
from tests.support import start_run


def step_times(run_id: str) -> dict:
    from sqlalchemy import select

    from app.core.db import session_scope
    from app.models import Step

    with session_scope() as session:
        steps = session.execute(select(Step).where(Step.run_id == uuid.UUID(run_id))).scalars().all()
        return {s.name: (s.started_at, s.finished_at) for s in steps}


def plain_wall(canvas) -> float:
    """Seconds from sending a plain Celery canvas to its last task's result."""
    started = time.time()
    canvas.apply_async().get(timeout=120)
    return time.time() - started


def copydesk_wall(workflow: str, payload: dict) -> tuple[float, str]:
    run_id = start_run(workflow, payload)
    run = wait_run(run_id)
    assert run.state == "succeeded", run.error
    return (run.finished_at - run.created_at).total_seconds(), run_id


class WorkerCpu:
    """CPU seconds the worker processes (main processes and pool children) spend, per kind of run.
    Less sensitive than wall time to what else the machine is doing."""

    def __init__(self, workers) -> None:
        self.groups = {"workers": [w.process.pid for w in workers]}  # each worker leads its process group
        self.spent: dict[str, list[float]] = {}

    def measure(self, kind: str, fn, *args):
        from bench.throughput import cpu_by_group

        before = cpu_by_group(self.groups, {})["workers"]
        out = fn(*args)
        time.sleep(0.05)  # the last task's bookkeeping after the result is visible
        self.spent.setdefault(kind, []).append(cpu_by_group(self.groups, {})["workers"] - before)
        return out

    def median_ms(self, kind: str) -> float:
        return summary(self.spent[kind])["median"] * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=25)
    args = parser.parse_args()
    results = {}
    with stack(io=24) as env:
        from bench.kinds import plain_fan_out_shape, plain_publish_shape

        cpu = WorkerCpu(env["workers"])
        # Warm up: first tasks pay for imports and connections.
        for _ in range(2):
            copydesk_wall("b_publish_shape", {"count": 10})
            copydesk_wall("b_fanout", {"count": 20})
            plain_wall(plain_publish_shape(10, 0.05))
            plain_wall(plain_fan_out_shape(20, 0.1))

        critical = 5 * 0.05  # store, convert, parse, max(transform, upload), publish
        walls, plain = [], []
        for _ in range(args.repeat):
            walls.append(cpu.measure("shape", copydesk_wall, "b_publish_shape", {"count": 10, "item_seconds": 0.05})[0])
            plain.append(cpu.measure("shape plain", plain_wall, plain_publish_shape(10, 0.05)))
        shape, shape_plain = summary(walls), summary(plain)
        results["publish_shape"] = {"critical_path_s": critical, "wall_s": shape, "plain_celery_wall_s": shape_plain,
                                    "ratio_median": shape["median"] / critical,
                                    "plain_celery_ratio_median": shape_plain["median"] / critical,
                                    "worker_cpu_ms_median": cpu.median_ms("shape"),
                                    "plain_celery_worker_cpu_ms_median": cpu.median_ms("shape plain")}

        fan_walls, step_walls, plain = [], [], []
        for _ in range(args.repeat):
            wall, run_id = cpu.measure("fan", copydesk_wall, "b_fanout", {"count": 20, "item_seconds": 0.1})
            fan_walls.append(wall)
            started, finished = step_times(run_id)["each"]
            step_walls.append((finished - started).total_seconds())
            plain.append(cpu.measure("fan plain", plain_wall, plain_fan_out_shape(20, 0.1)))
        fan, fan_step, fan_plain = summary(fan_walls), summary(step_walls), summary(plain)
        results["fan_out_20x100ms"] = {"item_s": 0.1, "run_wall_s": fan, "fan_out_step_wall_s": fan_step,
                                       "plain_celery_wall_s": fan_plain,
                                       "ratio_run_median": fan["median"] / 0.1,
                                       "ratio_step_median": fan_step["median"] / 0.1,
                                       "plain_celery_ratio_median": fan_plain["median"] / 0.1,
                                       "worker_cpu_ms_median": cpu.median_ms("fan"),
                                       "plain_celery_worker_cpu_ms_median": cpu.median_ms("fan plain")}
    path = save("engine", results)

    def ms(s: dict) -> str:
        return f"{s['median'] * 1000:.0f} ms ({s['p90'] * 1000:.0f})"

    def cpu_ms(kind: str) -> str:
        return f"{cpu.median_ms(kind):.0f} ms"

    print(table(
        ["benchmark", "baseline", "wall median (p90)", "ratio", "goal", "plain Celery, same shape",
         "Copydesk ÷ Celery", "worker CPU: Copydesk, Celery"],
        [
            ["publish_document shape, 10 images, 50 ms steps", f"critical path {critical * 1000:.0f} ms", ms(shape),
             f"{shape['median'] / critical:.2f}", "≤ 1.25", f"{ms(shape_plain)} = {shape_plain['median'] / critical:.2f}",
             f"{shape['median'] / shape_plain['median']:.2f}", f"{cpu_ms('shape')}, {cpu_ms('shape plain')}"],
            ["fan-out 20 × 100 ms (io), whole run", "one item 100 ms", ms(fan), f"{fan['median'] / 0.1:.2f}", "≤ 2",
             f"{ms(fan_plain)} = {fan_plain['median'] / 0.1:.2f}", f"{fan['median'] / fan_plain['median']:.2f}",
             f"{cpu_ms('fan')}, {cpu_ms('fan plain')}"],
            ["fan-out 20 × 100 ms (io), fan-out step only", "one item 100 ms", ms(fan_step),
             f"{fan_step['median'] / 0.1:.2f}", "≤ 2", "", "", ""],
        ],
    ))
    print(f"\nresults: {path}")


if __name__ == "__main__":
    main()
