"""SIGKILL runs: workers killed in the middle of a run, started again; does the run finish, once?

    .venv/bin/python -m bench.crashes [--repeat 20] [--images 8] [--case fan-out,answer-held]

A private stack (bench/harness.py: own PostgreSQL database, own Redis, real Celery workers) publishing
to a real local WordPress (tests/servers/wordpress.py) with images stored in the OSS-protocol test
server (in this process, 0.25 s added to each request so the fan-out lasts long enough to be hit).
Each repetition sends one manuscript of `--images` images through publish_document and:

- fan-out:     waits until the first image is stored in OSS, SIGKILLs every worker (cpu and io, the
               whole process groups), starts new ones;
- answer-held: WordPress writes the post and holds its answer 6 s (the test harness's delayed fault);
               once the post exists on the site, SIGKILLs the io worker — the commit of the post id
               never happens — and starts a new one.

The sweeper (app.tasks.ops.sweep, called every 0.5 s here as beat would, with heartbeats every 0.5 s
and a 3 s heartbeat timeout) re-queues the run. Reported per repetition: finished (the run's state),
posts carrying the document's marker on the site, duplicate image PUTs (successful PUTs beyond one
per media key, counted by the OSS server), duplicate media in the site's library, images stored at
the kill, recovery time (kill → run finished). Writes bench/results/crashes.json.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.harness import save, stack, summary, table  # noqa: E402

BUCKET = "copydesk"
SETTINGS = {
    "STEP_HEARTBEAT_INTERVAL": "0.5",
    "STEP_HEARTBEAT_TIMEOUT": "3",
    "CELERY_VISIBILITY_TIMEOUT": "3600",
    "INLINE_RETRY_MAX_WAIT": "2",
}


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def submit(data: bytes, filename: str) -> tuple[str, str]:
    from app.core.db import session_scope
    from app.workflows import engine, intake

    with session_scope() as session:
        submission = intake.submit(session, data, filename, payload={}, options={})
    engine.send(submission.run)
    return str(submission.run.id), str(submission.document.id)


def run_row(run_id: str):
    import uuid

    from app.core.db import session_scope
    from app.models import Run, Step

    with session_scope() as session:
        run = session.get(Run, uuid.UUID(run_id))
        steps = {s.name: s for s in session.query(Step).filter(Step.run_id == run.id)}
        publish = steps.get("publish")
        return run.state, run.error, (publish.result or {}) if publish else {}, run.launches


def wait_until(predicate, timeout: float, interval: float = 0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    return None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--images", type=int, default=8)
    parser.add_argument("--case", default="fan-out,answer-held")
    args = parser.parse_args()
    cases = [c for c in args.case.split(",") if c]

    from app.tasks.ops import sweep
    from tests.fixtures.stack import WorkerProcess, start_workers
    from tests.servers.oss_server import OssTestServer
    from tests.servers.wordpress import WordPressServer, missing
    from tests.wordpress.conftest import manuscript, picture, posts_of

    if missing():
        print(f"cannot run: {missing()} (python -m tests.servers.wordpress deps)", file=sys.stderr)
        return 2
    rows, per_case = [], {c: [] for c in cases}
    oss = OssTestServer(tempfile.mkdtemp(prefix="bench-oss-"), buckets=[BUCKET]).start()
    try:
        with WordPressServer() as wp:
            env = {
                **SETTINGS,
                "OSS_ENDPOINT": oss.endpoint, "OSS_BUCKET": BUCKET, "OSS_ACCESS_KEY_ID": oss.access_key_id,
                "OSS_ACCESS_KEY_SECRET": oss.access_key_secret, "OSS_REGION": oss.region,
                "OSS_PUBLIC_BASE_URL": f"{oss.endpoint}/{BUCKET}",
                "WP_URL": wp.url, "WP_USER": wp.user, "WP_APP_PASSWORD": wp.app_password,
                "WP_DEFAULT_STATUS": "publish",
            }  # fmt: skip
            with stack(env, cpu=1, io=4) as s:
                workers, log_dir = s["workers"], s["state_dir"]
                # warm-up: imports, connections, WordPress's first requests
                run_id, _ = submit(manuscript("warm-up", images=[picture(1)], seed=1), "warm-up.docx")
                wait_until(lambda: run_row(run_id)[0] in ("succeeded", "failed"), 120)
                oss.latency = 0.25
                for rep in range(1, args.repeat + 1):
                    for case in cases:
                        row = one(case, rep, args.images, workers, log_dir, s["env"], oss, wp,
                                  manuscript, picture, posts_of, sweep, start_workers, WorkerProcess)  # fmt: skip
                        rows.append(row)
                        per_case[case].append(row)
                        print(f"  {case} #{rep}: {row}", file=sys.stderr, flush=True)
    finally:
        oss.stop()

    headers = ["case", "rep", "finished", "posts on WordPress", "duplicate image PUTs", "duplicate media",
               "images stored at the kill", "recovery s"]  # fmt: skip
    print(table(headers, [[r["case"], r["rep"], r["state"], r["posts"], r["duplicate_puts"], r["duplicate_media"],
                           r["stored_at_kill"], f"{r['recovery_s']:.1f}"] for r in rows]))  # fmt: skip
    totals = {}
    summary_rows = []
    for case, case_rows in per_case.items():
        rec = summary([r["recovery_s"] for r in case_rows if r["state"] == "succeeded"] or [0.0])
        totals[case] = {
            "repetitions": len(case_rows),
            "finished": sum(r["state"] == "succeeded" for r in case_rows),
            "exactly_one_post": sum(r["posts"] == 1 for r in case_rows),
            "duplicate_image_puts": sum(r["duplicate_puts"] for r in case_rows),
            "duplicate_media": sum(r["duplicate_media"] for r in case_rows),
            "recovery_s": rec,
        }
        t = totals[case]
        summary_rows.append([case, t["repetitions"], t["finished"], t["exactly_one_post"], t["duplicate_image_puts"],
                             t["duplicate_media"], f"{rec['median']:.1f}", f"{rec['p90']:.1f}", f"{rec['max']:.1f}"])  # fmt: skip
    print()
    print(table(["case", "repetitions", "finished", "exactly one post", "duplicate image PUTs", "duplicate media",
                 "recovery median s", "p90 s", "max s"], summary_rows))  # fmt: skip
    path = save("crashes", {"settings": SETTINGS, "images": args.images, "summary": totals, "runs": rows})
    print(f"\nresults: {path}")
    ok = all(t["finished"] == t["exactly_one_post"] == t["repetitions"] and not t["duplicate_image_puts"]
             and not t["duplicate_media"] for t in totals.values())  # fmt: skip
    return 0 if ok else 1


def one(case, rep, count, workers, log_dir, env, oss, wp, manuscript, picture, posts_of, sweep, start_workers,
        WorkerProcess) -> dict:  # fmt: skip
    salt = f"{case}/{rep}/{time.time_ns()}"
    images = [picture(int(sha(f"{salt}/{i}".encode())[:8], 16)) for i in range(count)]
    oss.requests.clear()
    wp.reset()

    def media_puts() -> Counter:
        return Counter(r.key for r in list(oss.requests)
                       if r.method == "PUT" and r.key.startswith("media/") and r.status == 200)  # fmt: skip

    if case == "answer-held":
        wp.fail_next(1, status=0, method="POST", route="#^/wp/v2/posts$#", after=True, delay=6)
    run_id, doc_id = submit(manuscript(f"Crash {case} {rep}", images=images, seed=rep), f"crash-{rep}.docx")
    if case == "fan-out":
        hit = wait_until(lambda: len(media_puts()) >= 1, 60, 0.01)
        victims = list(workers)
    else:
        hit = wait_until(lambda: len(posts_of(wp, doc_id)) == 1, 120, 0.1)
        victims = [w for w in workers if w.name == "io"]
    if not hit:
        return {"case": case, "rep": rep, "state": "not reached", "posts": len(posts_of(wp, doc_id)),
                "duplicate_puts": 0, "duplicate_media": 0, "stored_at_kill": len(media_puts()), "recovery_s": 0.0}  # fmt: skip
    for w in victims:
        w.kill()
    killed = time.monotonic()
    stored_at_kill = len(media_puts())
    if case == "fan-out":
        workers[:] = start_workers(env, log_dir, cpu=1, io=4)
    else:
        io = victims[0]
        workers[workers.index(io)] = WorkerProcess("io", "io", "threads", 4, env, log_dir).start()
    wait_until(lambda: run_id in sweep(stuck_after=1)["requeued"], 60, 0.5)
    wait_until(lambda: run_row(run_id)[0] in ("succeeded", "failed", "cancelled"), 180, 0.05)
    recovery = time.monotonic() - killed
    state, error, result, launches = run_row(run_id)
    puts = media_puts()
    with wp.client() as c:
        slugs = ",".join(f"copydesk-{sha(i)[:32]}" for i in images)
        media = c.get("wp/v2/media", params={"slug": slugs, "per_page": 100, "context": "edit"}).json()
    per_image = Counter(m["slug"] for m in media)
    return {
        "case": case,
        "rep": rep,
        "state": state,
        "error": error,
        "posts": len(posts_of(wp, doc_id)),
        "recovered": result.get("recovered"),
        "launches": launches,
        "duplicate_puts": sum(v - 1 for v in puts.values() if v > 1),
        "missing_images": count - len(puts),
        "duplicate_media": sum(v - 1 for v in per_image.values() if v > 1),
        "stored_at_kill": stored_at_kill,
        "recovery_s": round(recovery, 2),
    }


if __name__ == "__main__":
    sys.exit(main())
