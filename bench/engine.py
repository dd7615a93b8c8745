"""Engine overhead: the publish_document shape with steps that sleep 50 ms (wall ÷ critical path,
goal ≤ 1.25), and a fan-out of 20 items sleeping 100 ms on the io queue (wall ÷ 100 ms, goal ≤ 2).

    .venv/bin/python -m bench.engine [--repeat 10]
"""

from __future__ import annotations

import argparse
import uuid

from bench.harness import save, stack, start_run, summary, table, wait_run


def step_times(run_id: str) -> dict:
    from sqlalchemy import select

    from app.core.db import session_scope
    from app.models import Step

    with session_scope() as session:
        steps = session.execute(select(Step).where(Step.run_id == uuid.UUID(run_id))).scalars().all()
        return {s.name: (s.started_at, s.finished_at) for s in steps}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=10)
    args = parser.parse_args()
    results = {}
    with stack(io=24):
        # Warm up: first tasks pay for imports and connections.
        for _ in range(2):
            wait_run(start_run("b_publish_shape", {"count": 10}))
            wait_run(start_run("b_fanout", {"count": 20}))

        critical = 5 * 0.05  # store, convert, parse, max(transform, upload), publish
        walls = []
        for _ in range(args.repeat):
            run = wait_run(start_run("b_publish_shape", {"count": 10, "item_seconds": 0.05}))
            assert run.state == "succeeded", run.error
            walls.append((run.finished_at - run.created_at).total_seconds())
        shape = summary(walls)
        results["publish_shape"] = {"critical_path_s": critical, "wall_s": shape,
                                    "ratio_median": shape["median"] / critical}

        fan_walls, step_walls = [], []
        for _ in range(args.repeat):
            run_id = start_run("b_fanout", {"count": 20, "item_seconds": 0.1})
            run = wait_run(run_id)
            assert run.state == "succeeded", run.error
            fan_walls.append((run.finished_at - run.created_at).total_seconds())
            started, finished = step_times(run_id)["each"]
            step_walls.append((finished - started).total_seconds())
        fan = summary(fan_walls)
        fan_step = summary(step_walls)
        results["fan_out_20x100ms"] = {"item_s": 0.1, "run_wall_s": fan, "fan_out_step_wall_s": fan_step,
                                       "ratio_run_median": fan["median"] / 0.1,
                                       "ratio_step_median": fan_step["median"] / 0.1}
    path = save("engine", results)
    print(table(
        ["benchmark", "baseline", "wall median (p90)", "ratio", "goal"],
        [
            ["publish_document shape, 10 images, 50 ms steps", f"critical path {critical * 1000:.0f} ms",
             f"{shape['median'] * 1000:.0f} ms ({shape['p90'] * 1000:.0f})", f"{shape['median'] / critical:.2f}", "≤ 1.25"],
            ["fan-out 20 × 100 ms (io), whole run", "one item 100 ms",
             f"{fan['median'] * 1000:.0f} ms ({fan['p90'] * 1000:.0f})", f"{fan['median'] / 0.1:.2f}", "≤ 2"],
            ["fan-out 20 × 100 ms (io), fan-out step only", "one item 100 ms",
             f"{fan_step['median'] * 1000:.0f} ms ({fan_step['p90'] * 1000:.0f})", f"{fan_step['median'] / 0.1:.2f}", "≤ 2"],
        ],
    ))
    print(f"\nresults: {path}")


if __name__ == "__main__":
    main()
