"""Documents per minute end to end: N manuscripts of M images each, submitted at once, through
store → parse → {transform (LLM) ‖ upload_image × M} → publish, with the local test servers: the
OSS-protocol server (storage), the OpenAI-compatible server with 50 ms of latency (the edit) and a
real WordPress (php -S + MariaDB, tests/servers/wordpress.py), on this machine. Goal: ≥ 600/min for
200 documents of 5 images.

    .venv/bin/python -m bench.throughput [--documents 200] [--images 5] [--image-size 800x600]
                                         [--io 24] [--cpu 2] [--php-workers 4] [--submitters 8]

Measured in the same run, in this order, on the same servers:
1. WordPress's own ceiling for the same work: a bare httpx loop doing what one article needs at the
   least (M media uploads as raw bodies + one POST /posts), from as many threads as the io worker
   has, for --baseline articles: the most documents a minute this WordPress can take here, Copydesk
   or not;
2. Copydesk without WordPress: the same workflow, published to the local preview (site=preview), for
   --documents other manuscripts: what the engine, storage, the edit and the uploads cost;
3. Copydesk with WordPress: the figure the goal is about.
For 2 and 3: documents per minute from the first submission to the last run's end, each stage's
duration and wait (step rows), and CPU seconds per document by component (read from /proc: the
workers, PHP, the test servers, this process, PostgreSQL's backends of the bench database), which is
where the time goes on a 2-core machine. Writes bench/results/throughput.json.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.harness import machine, save, stack, table  # noqa: E402

AK, SK, BUCKET, REGION = "bench-ak", "bench-sk", "copydesk", "cn-bench"
LLM_KEY = "sk-bench-0123456789abcdef"
TICKS = os.sysconf("SC_CLK_TCK")


# --- manuscripts ------------------------------------------------------------------------------------


def jpeg(seed: int, size: tuple[int, int]) -> bytes:
    from PIL import Image, ImageDraw

    rng = random.Random(seed)
    image = Image.new("RGB", size, tuple(rng.randrange(256) for _ in range(3)))
    draw = ImageDraw.Draw(image)
    for _ in range(30):  # shapes, so the JPEG is photo-sized rather than a flat colour
        x, y = rng.randrange(size[0]), rng.randrange(size[1])
        draw.ellipse((x, y, x + rng.randrange(20, 200), y + rng.randrange(20, 200)),
                     fill=tuple(rng.randrange(256) for _ in range(3)))  # fmt: skip
    out = io.BytesIO()
    image.save(out, "JPEG", quality=80)
    return out.getvalue()


def manuscript(title: str, images: list[bytes], seed: int) -> bytes:
    from docx import Document
    from docx.shared import Inches

    doc = Document()
    doc.core_properties.title = title
    doc.add_heading(title, level=1)
    rng = random.Random(seed)
    words = "the council said water plant budget report city residents engineers plan new year".split()
    for p in range(6):
        doc.add_paragraph(" ".join(rng.choice(words) for _ in range(60)).capitalize() + f". Paragraph {p}.")
        if p < len(images):
            doc.add_picture(io.BytesIO(images[p]), width=Inches(3))
            doc.add_paragraph(f"Picture {p} of {title}", style="Caption")
    for data in images[6:]:
        doc.add_picture(io.BytesIO(data), width=Inches(3))
    out = io.BytesIO()
    doc.save(out)
    return out.getvalue()


def batch(label: str, count: int, images: int, size: tuple[int, int]) -> list[tuple[bytes, list[bytes]]]:
    out = []
    for n in range(count):
        seed = int(hashlib.sha256(f"{label}/{n}/{uuid.uuid4()}".encode()).hexdigest()[:8], 16)
        pictures = [jpeg(seed + i, size) for i in range(images)]
        out.append((manuscript(f"{label} {n}", pictures, seed), pictures))
    return out


# --- CPU accounting ----------------------------------------------------------------------------------


def _stat(pid: int) -> tuple[int, float] | None:
    """(process group, CPU seconds) of a live process."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2 :].split()
    return int(fields[2]), (int(fields[11]) + int(fields[12])) / TICKS


def _comm(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""


def cpu_by_group(groups: dict[str, list[int]], pids: dict[str, list[int]]) -> dict[str, float]:
    """CPU seconds so far of every live process in each named process group (or of named pids)."""
    wanted = {pgid: name for name, ids in groups.items() for pgid in ids}
    out = {name: 0.0 for name in [*groups, *pids]}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            stat = _stat(int(entry))
            if stat and stat[0] in wanted:
                out[wanted[stat[0]]] += stat[1]
    for name, ids in pids.items():
        out[name] += sum((_stat(pid) or (0, 0.0))[1] for pid in ids)
    return out


def postgres_backends(database: str) -> list[int]:
    from sqlalchemy import text

    from app.core.db import session_scope

    with session_scope() as session:
        return list(session.execute(text("select pid from pg_stat_activity where datname = :d"), {"d": database})
                    .scalars())  # fmt: skip


# --- the servers -------------------------------------------------------------------------------------


def start(cmd: list[str], marker: str) -> subprocess.Popen:
    process = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               start_new_session=True)  # fmt: skip
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if marker in line:
            return process
        if process.poll() is not None:
            break
    process.kill()
    raise RuntimeError(f"{cmd[2]} did not start")


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --- the runs ----------------------------------------------------------------------------------------


def wordpress_ceiling(wp, articles: list[tuple[bytes, list[bytes]]], threads: int) -> dict:
    """Articles a minute this WordPress takes for the least an article needs: its uploads + the post."""
    import httpx

    client = httpx.Client(base_url=wp.rest_url, auth=(wp.user, wp.app_password), timeout=300,
                          limits=httpx.Limits(max_connections=threads * 2))  # fmt: skip

    def one(item) -> None:
        _, pictures = item
        featured = None
        for i, data in enumerate(pictures):
            media = client.post(
                "wp/v2/media", content=data, params={"alt_text": f"alt {i}", "caption": f"Caption {i}"},
                headers={"Content-Type": "image/jpeg",
                         "Content-Disposition": f'attachment; filename="ceiling-{uuid.uuid4().hex[:8]}.jpg"'},
            )  # fmt: skip
            media.raise_for_status()
            featured = featured or media.json()["id"]
        client.post("wp/v2/posts", json={"title": "ceiling", "content": "<p>x</p>" * 40, "status": "publish",
                                         "featured_media": featured}).raise_for_status()  # fmt: skip

    started = time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(one, articles))
    seconds = time.perf_counter() - started
    client.close()
    return {"articles": len(articles), "threads": threads, "seconds": round(seconds, 2),
            "per_minute": round(len(articles) / seconds * 60, 1)}  # fmt: skip


def submit_all(items: list[tuple[bytes, list[bytes]]], label: str, payload: dict, submitters: int) -> tuple[list, float]:
    from app.core.db import session_scope
    from app.workflows import engine, intake

    def one(n_item):
        n, (data, _) = n_item
        with session_scope() as session:
            submission = intake.submit(session, data, f"{label}-{n}.docx", payload=payload, options=payload)
        engine.send(submission.run)
        return submission.run.id

    started = time.perf_counter()
    with ThreadPoolExecutor(submitters) as pool:
        runs = list(pool.map(one, enumerate(items)))
    return runs, time.perf_counter() - started


def wait_runs(run_ids: list, timeout: float) -> None:
    from sqlalchemy import func, select

    from app.core.db import session_scope
    from app.models import Run

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with session_scope() as session:
            open_runs = session.execute(
                select(func.count()).select_from(Run)
                .where(Run.id.in_(run_ids), Run.state.not_in(("succeeded", "failed", "cancelled")))
            ).scalar_one()  # fmt: skip
        if not open_runs:
            return
        time.sleep(0.25)
    raise TimeoutError(f"{open_runs} run(s) still open after {timeout}s")


def stages(run_ids: list) -> dict:
    """Per step: duration (started → finished) and wait (ready → started), medians and p90, from the
    step rows; the runs' own latency and their first creation / last end."""
    from sqlalchemy import select

    from app.core.db import session_scope
    from app.models import Run, Step

    with session_scope() as session:
        runs = {r.id: r for r in session.execute(select(Run).where(Run.id.in_(run_ids))).scalars()}
        steps = session.execute(select(Step).where(Step.run_id.in_(run_ids))).scalars().all()
        by_run: dict = {}
        for s in steps:
            by_run.setdefault(s.run_id, {})[s.name] = s
        needs = {"store": [], "parse": ["store"], "transform": ["parse"], "upload_image": ["parse"],
                 "publish": ["transform", "upload_image"]}  # fmt: skip
        out: dict = {}
        for name, deps in needs.items():
            durations, waits = [], []
            for run_id, named in by_run.items():
                step = named.get(name)
                if not step or not step.started_at or not step.finished_at:
                    continue
                durations.append((step.finished_at - step.started_at).total_seconds())
                ready = max((named[d].finished_at for d in deps if d in named and named[d].finished_at),
                            default=runs[run_id].created_at)  # fmt: skip
                waits.append(max(0.0, (step.started_at - ready).total_seconds()))
            if durations:
                out[name] = {
                    "n": len(durations),
                    "median_s": round(statistics.median(durations), 3),
                    "p90_s": round(sorted(durations)[int(0.9 * (len(durations) - 1))], 3),
                    "busy_s": round(sum(durations), 1),
                    "wait_median_s": round(statistics.median(waits), 3),
                    "wait_p90_s": round(sorted(waits)[int(0.9 * (len(waits) - 1))], 3),
                }
        latencies = [(r.finished_at - r.created_at).total_seconds() for r in runs.values() if r.finished_at]
        states: dict[str, int] = {}
        for r in runs.values():
            states[r.state] = states.get(r.state, 0) + 1
        first = min(r.created_at for r in runs.values())
        last = max(r.finished_at for r in runs.values() if r.finished_at)
    return {
        "states": states,
        "run_latency_median_s": round(statistics.median(latencies), 2),
        "run_latency_p90_s": round(sorted(latencies)[int(0.9 * (len(latencies) - 1))], 2),
        "first_created_to_last_finished_s": round((last - first).total_seconds(), 2),
        "steps": out,
    }


def measured_run(label, items, payload, args, groups, pids, database, wp=None) -> dict:
    if wp is not None:
        wp.reset()
    before = cpu_by_group(groups, {**pids, "postgres backends": postgres_backends(database)})
    started = time.perf_counter()
    run_ids, submit_s = submit_all(items, label, payload, args.submitters)
    wait_runs(run_ids, timeout=max(600, 10 * len(items)))
    wall = time.perf_counter() - started
    backends = postgres_backends(database)
    after = cpu_by_group(groups, {**pids, "postgres backends": backends})
    cpu = {k: round(after[k] - before.get(k, 0.0), 1) for k in after}
    result = {
        "documents": len(items),
        "wall_s": round(wall, 2),
        "submit_s": round(submit_s, 2),
        "per_minute": round(len(items) / wall * 60, 1),
        **stages(run_ids),
        "cpu_s": cpu,
        "cpu_s_per_document": {k: round(v / len(items), 3) for k, v in cpu.items()},
        "cpu_utilisation": round(sum(cpu.values()) / wall / (os.cpu_count() or 1), 2),
    }
    if wp is not None:
        served = wp.requests()
        php_ms: dict[str, list[float]] = {}
        for r in served:
            import re

            php_ms.setdefault(f"{r['m']} {re.sub(r'/[0-9]+', '/<id>', r['route'])}", []).append(r["ms"])
        result["wordpress_requests_per_document"] = round(len(served) / len(items), 2)
        result["wordpress_php_ms"] = {k: {"count": len(v), "median_ms": round(statistics.median(v), 1)}
                                      for k, v in sorted(php_ms.items())}  # fmt: skip
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--documents", type=int, default=200)
    parser.add_argument("--images", type=int, default=5)
    parser.add_argument("--image-size", default="800x600")
    parser.add_argument("--io", type=int, default=24, help="io worker threads (per io process)")
    parser.add_argument("--io-processes", type=int, default=1, help="io worker processes")
    parser.add_argument("--cpu", type=int, default=2, help="cpu worker processes")
    parser.add_argument("--php-workers", type=int, default=4, help="PHP_CLI_SERVER_WORKERS")
    parser.add_argument("--submitters", type=int, default=8, help="parallel submissions (as API clients)")
    parser.add_argument("--baseline", type=int, default=0, help="articles for WordPress's ceiling (default: --documents / 4)")
    parser.add_argument("--llm-latency-ms", type=float, default=50)
    parser.add_argument("--runs", default="ceiling,preview,wordpress", help="which of the three runs to make")
    parser.add_argument("--output", default="throughput", help="results file name (bench/results/NAME.json)")
    args = parser.parse_args()
    size = tuple(int(v) for v in args.image_size.split("x"))
    baseline_n = args.baseline or max(10, args.documents // 4)

    from tests.fixtures.stack import ROOT as _  # noqa: F401  (the package path)
    from tests.servers.wordpress import WordPressServer, missing

    if missing():
        print(f"cannot run: {missing()} (python -m tests.servers.wordpress deps)", file=sys.stderr)
        return 2
    print(f"building {2 * args.documents + baseline_n} manuscripts of {args.images} images ({args.image_size})…",
          file=sys.stderr, flush=True)  # fmt: skip
    with_wp = batch("Throughput", args.documents, args.images, size) if "wordpress" in args.runs else []
    runs = set(args.runs.split(","))
    with_wp = with_wp if "wordpress" in runs else []
    preview = batch("Preview", args.documents, args.images, size) if "preview" in runs else []
    ceiling_items = batch("Ceiling", baseline_n, args.images, size) if "ceiling" in runs else []

    oss_root = tempfile.mkdtemp(prefix="bench-oss-")
    oss_port, llm_port = free_port(), free_port()
    oss = start([sys.executable, "-m", "tests.servers.oss_server", "--root", oss_root, "--port", str(oss_port),
                 "--ak", AK, "--sk", SK, "--bucket", BUCKET, "--region", REGION], "endpoint")  # fmt: skip
    llm = subprocess.Popen([sys.executable, "-m", "tests.servers.openai_server", "--port", str(llm_port), "--key",
                            LLM_KEY, "--latency-ms", str(args.llm_latency_ms)], cwd=ROOT, start_new_session=True,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    results: dict = {"documents": args.documents, "images": args.images, "image_size": args.image_size,
                     "io_threads": args.io, "io_processes": args.io_processes, "cpu_processes": args.cpu,
                     "php_workers": args.php_workers,
                     "llm_latency_ms": args.llm_latency_ms, "cpus": os.cpu_count(), "machine": machine()}  # fmt: skip
    try:
        from tests.support import wait_for_port

        wait_for_port(llm_port)
        with WordPressServer(workers=args.php_workers) as wp:
            env = {
                "OSS_ENDPOINT": f"http://127.0.0.1:{oss_port}", "OSS_BUCKET": BUCKET, "OSS_ACCESS_KEY_ID": AK,
                "OSS_ACCESS_KEY_SECRET": SK, "OSS_REGION": REGION,
                "OSS_PUBLIC_BASE_URL": f"http://127.0.0.1:{oss_port}/{BUCKET}",
                "OPENAI_API_KEY": LLM_KEY, "OPENAI_BASE_URL": f"http://127.0.0.1:{llm_port}/v1",
                "WP_URL": wp.url, "WP_USER": wp.user, "WP_APP_PASSWORD": wp.app_password,
                "WP_DEFAULT_STATUS": "publish", "MAX_UPLOAD_MB": "100",
            }  # fmt: skip
            warm = batch("Warm", 3, args.images, size)
            wordpress_ceiling(wp, warm, 1)  # opcache, the uploads folder (made by the first upload: not in parallel)
            if ceiling_items:
                print("1/3 WordPress's own ceiling…", file=sys.stderr, flush=True)
                results["wordpress_ceiling"] = wordpress_ceiling(wp, ceiling_items, min(args.io, 2 * args.php_workers))
            wp.reset()
            with stack(env, cpu=args.cpu, io=args.io, io_processes=args.io_processes) as s:
                groups = {"worker cpu": [w.process.pid for w in s["workers"] if w.name == "cpu"],
                          "worker io": [w.process.pid for w in s["workers"] if w.name == "io"],
                          "wordpress (php)": [wp._php.pid], "oss server": [oss.pid], "llm server": [llm.pid]}  # fmt: skip
                pids = {"redis": [s["redis"].process.pid], "bench process (submissions)": [os.getpid()]}
                if wp._mariadb is not None:
                    groups["wordpress (mariadb)"] = [wp._mariadb.pid]
                else:  # the machine's MariaDB, shared with whatever else uses it
                    pids["mariadb (whole server)"] = [int(e) for e in os.listdir("/proc") if e.isdigit()
                                                      and _comm(int(e)) in ("mariadbd", "mysqld")]
                database = s["database"].name
                # warm-up: imports, connections, the first task of each kind
                for item_set, payload in ((batch("Warm-up", 2, args.images, size), {"site": "preview"}),
                                          (batch("Warm-up WP", 2, args.images, size), {})):  # fmt: skip
                    ids, _ = submit_all(item_set, "warm", payload, 2)
                    wait_runs(ids, 300)
                if preview:
                    print("2/3 Copydesk, local preview (no WordPress)…", file=sys.stderr, flush=True)
                    results["copydesk_preview"] = measured_run("preview", preview, {"site": "preview"}, args,
                                                               groups, pids, database)  # fmt: skip
                if with_wp:
                    print("3/3 Copydesk to WordPress…", file=sys.stderr, flush=True)
                    results["copydesk_wordpress"] = measured_run("throughput", with_wp, {}, args, groups, pids,
                                                                 database, wp)  # fmt: skip
                    results["posts_on_site"] = wp.count_posts(search="copydesk:post:")
    finally:
        for p in (oss, llm):
            p.terminate()
            p.wait(10)
    results["load_after"] = [round(v, 2) for v in os.getloadavg()]
    ours = results.get("copydesk_wordpress")
    if ours and "wordpress_ceiling" in results:
        results["ratio_to_wordpress_ceiling"] = round(ours["per_minute"] / results["wordpress_ceiling"]["per_minute"], 3)
    path = save(args.output, results)
    report(results, path)
    ok = all(r["states"].get("succeeded") == args.documents
             for r in (results.get("copydesk_wordpress"), results.get("copydesk_preview")) if r)  # fmt: skip
    return 0 if ok else 1


def report(results: dict, path: Path) -> None:
    ceiling, ours = results.get("wordpress_ceiling"), results.get("copydesk_wordpress")
    preview = results.get("copydesk_preview")
    base = ceiling["per_minute"] if ceiling else None

    def ratio(per_minute: float) -> str:
        return f"{per_minute / base:.2f}" if base else "—"

    rows = []
    if ceiling:
        rows.append(["WordPress's ceiling (bare uploads + post, no Copydesk)", ceiling["articles"], ceiling["seconds"],
                     ceiling["per_minute"], "1.00", "—"])  # fmt: skip
    if preview:
        rows.append(["Copydesk → local preview (no WordPress)", preview["documents"], preview["wall_s"],
                     preview["per_minute"], ratio(preview["per_minute"]), preview["run_latency_median_s"]])  # fmt: skip
    if ours:
        rows.append(["Copydesk → WordPress (the goal: ≥ 600/min)", ours["documents"], ours["wall_s"],
                     ours["per_minute"], ratio(ours["per_minute"]), ours["run_latency_median_s"]])  # fmt: skip
    print(f"\n{results['documents']} documents × {results['images']} images ({results['image_size']} JPEG), "
          f"{results['cpus']} cores, io {results['io_processes']} × {results['io_threads']} threads, "
          f"cpu {results['cpu_processes']} processes, "
          f"PHP workers {results['php_workers']}, LLM latency {results['llm_latency_ms']:.0f} ms\n")  # fmt: skip
    print(table(["run", "documents", "seconds", "documents/min", "÷ WordPress ceiling", "run latency median s"], rows))
    for name, run in (("→ WordPress", ours), ("→ preview", preview)):
        if not run:
            continue
        print(f"\nStages, Copydesk {name} (from the step rows):\n")
        print(table(["step", "n", "median s", "p90 s", "busy s (sum)", "wait median s", "wait p90 s"],
                    [[k, v["n"], v["median_s"], v["p90_s"], v["busy_s"], v["wait_median_s"], v["wait_p90_s"]]
                     for k, v in run["steps"].items()]))  # fmt: skip
        print(f"\nCPU seconds per document, Copydesk {name} (utilisation of all cores: {run['cpu_utilisation']:.0%}):\n")
        print(table(["component", "CPU s / document", "CPU s total"],
                    [[k, v, run["cpu_s"][k]] for k, v in sorted(run["cpu_s_per_document"].items(), key=lambda kv: -kv[1])]))  # fmt: skip
    if ours and "wordpress_php_ms" in ours:
        print(f"\nWordPress requests per document: {ours['wordpress_requests_per_document']}\n")
        print(table(["request", "count", "PHP median ms"],
                    [[k, v["count"], v["median_ms"]] for k, v in ours["wordpress_php_ms"].items()]))  # fmt: skip
    print(f"\nresults: {path}")


if __name__ == "__main__":
    sys.exit(main())
