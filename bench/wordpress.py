"""Publishing throughput against a real local WordPress, beside what WordPress itself can do here.

    .venv/bin/python -m bench.wordpress [--articles 100] [--images 3] [--threads 1]

Starts a WordPress with tests/servers/wordpress.py (needs `python -m tests.servers.wordpress deps`),
then, in the same run and on the same site:
1. bare posts:   a bare httpx loop of POST /wp/v2/posts (title + body): WordPress's own ceiling for a post;
2. bare article: a bare httpx loop doing the least an article with images needs — each image uploaded
                 (raw body), then POST /posts with featured_media: the ceiling for the same work;
3. copydesk:     WordPressPublisher.publish() for the same articles (credentials check, marker lookup,
                 terms, media lookup, uploads with alt/caption, body rewrite, create).
The three runs are interleaved in blocks of `--block` articles, in rotating order, so a change of load
on a shared machine weighs on them alike; each block runs `--threads` clients in parallel. Prints a
markdown table and writes bench/results/wordpress.json.

    .venv/bin/python -m bench.wordpress --e2e 30 [--images 3] [--io 8]

End to end through the workers instead: a private stack (bench/harness.py: PostgreSQL, Redis, real
Celery workers) with WP_URL set to the local WordPress; N .docx manuscripts with `--images` images each
are submitted at once (intake, as the API does) and go store → parse → transform ‖ upload → publish.
Reports manuscripts per second from the first submission to the last run's end, the publish step's
own duration (median, p90, from the step rows) and REST requests per post, beside a bare
POST /posts loop on the same WordPress in the same run. Writes bench/results/wordpress-e2e.json.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import platform
import random
import re
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
from PIL import Image, ImageDraw

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.integrations.wordpress import PostDraft, PostImage, WordPressPublisher, WordPressSite  # noqa: E402
from tests.servers.wordpress import WordPressServer, missing  # noqa: E402

RESULTS = Path(__file__).with_name("results") / "wordpress.json"


def make_jpeg(seed: int, size: tuple[int, int]) -> bytes:
    rng = random.Random(seed)
    image = Image.new("RGB", size, (rng.randrange(256), rng.randrange(256), rng.randrange(256)))
    draw = ImageDraw.Draw(image)
    for _ in range(40):  # shapes, so the JPEG is photo-sized rather than a flat colour
        x, y = rng.randrange(size[0]), rng.randrange(size[1])
        draw.ellipse(
            (x, y, x + rng.randrange(20, 300), y + rng.randrange(20, 300)),
            fill=(rng.randrange(256), rng.randrange(256), rng.randrange(256)),
        )
    buf = io.BytesIO()
    image.save(buf, "JPEG", quality=85)
    return buf.getvalue()


def make_articles(count: int, images: int, size: tuple[int, int], run: str) -> list[PostDraft]:
    articles = []
    for n in range(count):
        imgs = []
        for i in range(images):
            data = make_jpeg(int(hashlib.sha256(f"{run}/{n}/{i}".encode()).hexdigest()[:8], 16), size)
            key = f"media/{hashlib.sha256(data).hexdigest()}.jpg"
            imgs.append(
                PostImage(
                    key=key,
                    url=f"https://storage.test/{key}",
                    content_type="image/jpeg",
                    alt=f"Picture {i} of article {n}",
                    caption=f"Caption {i}",
                    filename=f"article-{n}-{i}.jpg",
                    data=data,
                )
            )
        paragraphs = [
            f"<!-- wp:paragraph -->\n<p>Paragraph {p} of article {n}. "
            + "Lorem ipsum dolor sit amet. " * 20
            + "</p>\n<!-- /wp:paragraph -->"
            for p in range(8)
        ]
        figures = [
            f'<!-- wp:image {{"sizeSlug":"large"}} -->\n'
            f'<figure class="wp-block-image size-large"><img src="{im.url}" '
            f'alt="{im.alt}"/><figcaption>{im.caption}</figcaption></figure>\n<!-- /wp:image -->'
            for im in imgs
        ]
        body = "\n\n".join(paragraphs[:2] + figures + paragraphs[2:])
        articles.append(
            PostDraft(
                title=f"Article {n} ({run})",
                html="",
                blocks=body,
                excerpt=f"Excerpt of article {n}.",
                status="publish",
                categories=[f"Section {n % 5}"],
                tags=[f"topic {n % 7}", f"topic {n % 11}", "bench"],
                images=imgs,
                idempotency_key=f"bench-{run}-{n}",
            )
        )
    return articles


def timed(fn, items: list, threads: int) -> tuple[float, list[float]]:
    latencies: list[float] = []

    def one(item):
        started = time.perf_counter()
        fn(item)
        latencies.append(time.perf_counter() - started)

    started = time.perf_counter()
    if threads <= 1:
        for item in items:
            one(item)
    else:
        with ThreadPoolExecutor(threads) as pool:
            list(pool.map(one, items))
    return time.perf_counter() - started, latencies


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--articles", type=int, default=100)
    parser.add_argument("--images", type=int, default=3)
    parser.add_argument(
        "--size", default="800x600", help="image size in pixels (WordPress makes its sub-sizes from it)"
    )
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--workers", type=int, default=4, help="PHP_CLI_SERVER_WORKERS")
    parser.add_argument(
        "--block", type=int, default=10, help="articles per block; the three runs alternate by block"
    )
    parser.add_argument("--e2e", type=int, default=0, help="N manuscripts end to end through the workers")
    parser.add_argument("--io", type=int, default=8, help="io worker threads (--e2e)")
    args = parser.parse_args()
    reason = missing()
    if reason:
        print(f"cannot run: {reason} (python -m tests.servers.wordpress deps)", file=sys.stderr)
        return 2
    if args.e2e:
        return end_to_end(args)
    size = tuple(int(v) for v in args.size.split("x"))

    with WordPressServer(workers=args.workers) as wp:
        auth = (wp.user, wp.app_password)
        site = WordPressSite(url=wp.url, user=wp.user, app_password=wp.app_password)
        # warm-up: opcache, the uploads folder, the term tables
        with httpx.Client(base_url=wp.rest_url, auth=auth, timeout=120) as c:
            for i in range(5):
                c.post(
                    "wp/v2/posts", json={"title": f"warm {i}", "content": "x", "status": "publish"}
                ).raise_for_status()
        wp.reset()

        plain = make_articles(args.articles, 0, size, "bare-post")
        bare = make_articles(args.articles, args.images, size, "bare-article")
        ours = make_articles(args.articles, args.images, size, "copydesk")
        client = httpx.Client(base_url=wp.rest_url, auth=auth, timeout=120)
        publisher = WordPressPublisher(site)
        # The bare article carries the same categories and tags, by ids known beforehand (not timed).
        term_ids = {
            (tax, name): publisher.client.term_id(tax, name)
            for draft in bare
            for tax, names in (("categories", draft.categories), ("tags", draft.tags))
            for name in names
        }
        wp.reset()

        def bare_post(draft: PostDraft) -> None:
            client.post(
                "wp/v2/posts",
                json={
                    "title": draft.title,
                    "content": draft.blocks,
                    "excerpt": draft.excerpt,
                    "status": "publish",
                },
            ).raise_for_status()

        def bare_article(draft: PostDraft) -> None:
            body, featured = draft.blocks, None
            for image in draft.images:
                media = client.post(
                    "wp/v2/media",
                    content=image.data,
                    params={"alt_text": image.alt, "caption": image.caption},
                    headers={
                        "Content-Type": image.content_type,
                        "Content-Disposition": f'attachment; filename="{image.filename}"',
                    },
                )
                media.raise_for_status()
                body = body.replace(image.url, media.json()["source_url"])
                featured = featured or media.json()["id"]
            client.post(
                "wp/v2/posts",
                json={
                    "title": draft.title,
                    "content": body,
                    "excerpt": draft.excerpt,
                    "status": "publish",
                    "featured_media": featured,
                    "categories": [term_ids["categories", n] for n in draft.categories],
                    "tags": [term_ids["tags", n] for n in draft.tags],
                },
            ).raise_for_status()

        runs = {
            "bare POST /posts (post only)": (bare_post, plain),
            "bare article (uploads + post)": (bare_article, bare),
            "copydesk publish()": (publisher.publish, ours),
        }
        totals = {name: {"seconds": 0.0, "latencies": [], "requests": 0, "kinds": {}} for name in runs}
        print(
            f"WordPress at {wp.url}: {args.articles} articles, {args.images} images of {args.size}, "
            f"{args.threads} client thread(s), {args.workers} PHP workers; "
            f"runs interleaved in blocks of {args.block}",
            file=sys.stderr,
        )
        # Interleaved in blocks, in rotating order, so that a change of load on this shared machine
        # weighs on the three runs alike.
        for b, first in enumerate(range(0, args.articles, args.block)):
            names = list(runs)
            names = names[b % 3 :] + names[: b % 3]
            for name in names:
                fn, items = runs[name]
                seconds, latencies = timed(fn, items[first : first + args.block], args.threads)
                totals[name]["seconds"] += seconds
                totals[name]["latencies"] += latencies
                served = wp.requests()
                totals[name]["requests"] += len(served)
                for r in served:  # PHP's own time, by kind of request
                    kind = f"{r['m']} {re.sub(r'/[0-9]+', '/<id>', r['route'])}"
                    count, ms = totals[name]["kinds"].get(kind, (0, 0.0))
                    totals[name]["kinds"][kind] = (count + 1, ms + r["ms"])
                wp.reset()
            print(f"  {first + args.block}/{args.articles}", file=sys.stderr, flush=True)
        client.close()
        publisher.close()
        versions = wp.php("echo get_bloginfo('version'), ' ', PHP_VERSION;").split()

    rows, breakdown = [], {}
    for name, t in totals.items():
        n = len(t["latencies"])
        breakdown[name] = {
            kind: {"per_post": round(c / n, 2), "ms_each": round(ms / c, 1)}
            for kind, (c, ms) in sorted(t["kinds"].items())
        }
        count, lat = len(t["latencies"]), sorted(t["latencies"])
        rows.append(
            {
                "run": name,
                "posts": count,
                "seconds": round(t["seconds"], 3),
                "posts_per_s": round(count / t["seconds"], 2),
                "median_ms": round(statistics.median(lat) * 1000, 1),
                "p95_ms": round(lat[int(0.95 * (count - 1))] * 1000, 1),
                "requests_per_post": round(t["requests"] / count, 2),
            }
        )
    bare_posts, article, ours = rows
    result = {
        "articles": args.articles,
        "images_per_article": args.images,
        "image_size": args.size,
        "threads": args.threads,
        "php_workers": args.workers,
        "wordpress": versions[0],
        "php": versions[1],
        "cpus": os.cpu_count(),
        "load_after": [round(v, 2) for v in os.getloadavg()],
        "machine": platform.platform(),
        "runs": rows,
        "server_time_by_request": breakdown,
        "ratio_to_bare_post": round(ours["posts_per_s"] / bare_posts["posts_per_s"], 3),
        "ratio_to_bare_article": round(ours["posts_per_s"] / article["posts_per_s"], 3),
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")

    print(
        f"\nWordPress {versions[0]} on PHP {versions[1]} (php -S, {args.workers} workers), "
        f"{os.cpu_count()} CPUs; {args.articles} articles × {args.images} images ({args.size} JPEG); "
        f"{args.threads} client thread(s)\n"
    )
    print("| run | posts | seconds | posts/s | median ms | p95 ms | REST requests/post |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for r in rows:
        print(
            f"| {r['run']} | {r['posts']} | {r['seconds']} | {r['posts_per_s']} | {r['median_ms']} "
            f"| {r['p95_ms']} | {r['requests_per_post']} |"
        )
    print(
        f"\ncopydesk / bare article (same work): **{result['ratio_to_bare_article']}**; "
        f"copydesk / bare POST /posts (a post without images): {result['ratio_to_bare_post']}"
    )
    print("\nWhere WordPress spends its time (PHP's time per request, from the request log):\n")
    print("| run | request | per post | ms each |")
    print("| --- | --- | ---: | ---: |")
    for name, kinds in breakdown.items():
        for kind, v in kinds.items():
            print(f"| {name} | {kind} | {v['per_post']} | {v['ms_each']} |")
    print(f"written to {RESULTS.relative_to(Path.cwd()) if RESULTS.is_relative_to(Path.cwd()) else RESULTS}")
    return 0


def end_to_end(args) -> int:
    """N manuscripts through the real workers to the local WordPress (see the module's docstring)."""
    import uuid

    from bench.harness import stack, summary, table
    from tests.samples import docx

    results = RESULTS.with_name("wordpress-e2e.json")
    with WordPressServer(workers=args.workers) as wp:
        env = {"WP_URL": wp.url, "WP_USER": wp.user, "WP_APP_PASSWORD": wp.app_password}
        with httpx.Client(base_url=wp.rest_url, auth=(wp.user, wp.app_password), timeout=120) as c:
            for i in range(5):  # warm-up
                c.post("wp/v2/posts", json={"title": f"warm {i}", "content": "x"}).raise_for_status()
            started = time.perf_counter()
            for i in range(args.e2e):
                c.post(
                    "wp/v2/posts", json={"title": f"bare {i}", "content": "x " * 400, "status": "publish"}
                ).raise_for_status()
            bare_rate = args.e2e / (time.perf_counter() - started)
        wp.reset()
        manuscripts = [
            docx(f"End to end {n}", paragraphs=8, images=args.images, seed=9000 + n, keywords="bench, e2e")
            for n in range(args.e2e)
        ]
        with stack(env, cpu=2, io=args.io):
            from app.core.db import session_scope
            from app.models import Step
            from app.workflows import engine, intake

            started = time.perf_counter()
            runs = []
            for n, data in enumerate(manuscripts):
                with session_scope() as session:
                    submission = intake.submit(
                        session, data, f"e2e-{n}.docx", payload={"status": "publish"}, options={}
                    )
                engine.send(submission.run)
                runs.append(submission.run.id)
            from bench.harness import wait_run

            ended = [wait_run(str(run_id), timeout=900) for run_id in runs]
            seconds = time.perf_counter() - started
            with session_scope() as session:
                publish = [
                    (s.finished_at - s.started_at).total_seconds()
                    for s in session.query(Step).filter(Step.run_id.in_(runs), Step.name == "publish")
                    if s.finished_at and s.started_at and s.state == "succeeded"
                ]
        requests = len(wp.requests())
        posts = wp.count_posts(search="copydesk:post:")
    failed = [str(r.id) for r in ended if r.state != "succeeded"]
    result = {
        "manuscripts": args.e2e,
        "images_per_manuscript": args.images,
        "io_threads": args.io,
        "php_workers": args.workers,
        "seconds": round(seconds, 2),
        "manuscripts_per_s": round(args.e2e / seconds, 2),
        "bare_posts_per_s": round(bare_rate, 2),
        "publish_step_s": {k: round(v, 3) for k, v in summary(publish).items()} if publish else {},
        "rest_requests_per_post": round(requests / max(1, args.e2e), 2),
        "posts_on_site": posts,
        "failed_runs": failed,
        "cpus": os.cpu_count(),
        "load_after": [round(v, 2) for v in os.getloadavg()],
        "run": uuid.uuid4().hex[:8],
    }
    results.parent.mkdir(parents=True, exist_ok=True)
    results.write_text(json.dumps(result, indent=2) + "\n")
    p = result["publish_step_s"]
    print(
        table(
            ["manuscripts", "images each", "seconds", "manuscripts/s", "bare POST /posts per s",
             "publish step median s", "p90 s", "REST requests/post", "posts on the site", "failed"],
            [[args.e2e, args.images, result["seconds"], result["manuscripts_per_s"], result["bare_posts_per_s"],
              p.get("median"), p.get("p90"), result["rest_requests_per_post"], posts, len(failed)]],
        )
    )  # fmt: skip
    return 0 if not failed and posts == args.e2e else 1


if __name__ == "__main__":
    sys.exit(main())
