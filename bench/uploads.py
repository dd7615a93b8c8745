"""Parallel image uploads to OSS: wall time against the ideal.

50 images of 200 KB go to the OSS-protocol test server (started as a separate process, with 100 ms added to
every request) through OssStorage, from a thread pool as large as the io worker's concurrency, as the
workflow's fan-out does. The ideal is one latency per round trip × ceil(images / concurrency); the
sequential baseline runs in the same process, against the same server.

    .venv/bin/python bench/uploads.py [--concurrency 16] [--count 50] [--size 200000] [--latency 0.1]

Prints a markdown table and writes bench/results/uploads.json.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from app.integrations.storage import media_key
from app.integrations.storage.oss import OssStorage

AK, SK, BUCKET, REGION = "bench-ak", "bench-sk", "bench", "cn-bench"


def start_server(root: str, latency: float) -> tuple[subprocess.Popen, str]:
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.servers.oss_server",
            "--root",
            root,
            "--ak",
            AK,
            "--sk",
            SK,
            "--bucket",
            BUCKET,
            "--region",
            REGION,
            "--latency",
            str(latency),
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    line = process.stdout.readline()  # "OSS test server: endpoint http://127.0.0.1:PORT, ..."
    if "endpoint" not in line:
        process.kill()
        raise RuntimeError(f"the OSS test server did not start: {line!r}")
    return process, line.split("endpoint ", 1)[1].split(",", 1)[0]


def run(storage: OssStorage, images: list[bytes], concurrency: int, mode: str) -> float:
    def upload(data: bytes) -> None:
        key = media_key(data, "png", site_prefix="bench")
        if mode == "put_if_absent":
            assert storage.put_if_absent(key, data)
        else:
            storage.put(key, data)

    started = time.perf_counter()
    if concurrency == 1:
        for data in images:
            upload(data)
    else:
        with ThreadPoolExecutor(max_workers=concurrency) as pool:
            list(pool.map(upload, images))
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--concurrency", type=int, default=16, help="the io worker's thread count")
    parser.add_argument("--count", type=int, default=50)
    parser.add_argument("--size", type=int, default=200_000, help="bytes per image")
    parser.add_argument("--latency", type=float, default=0.1, help="seconds the server adds to each request")
    parser.add_argument("--signature", choices=["v4", "v1"], default="v4")
    parser.add_argument("--output", type=Path, default=ROOT / "bench" / "results" / "uploads.json")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="oss-bench-") as root:
        server, endpoint = start_server(root, args.latency)
        try:
            storage = OssStorage(
                endpoint=endpoint,
                bucket=BUCKET,
                access_key_id=AK,
                access_key_secret=SK,
                region=REGION,
                signature_version=args.signature,
                pool_size=max(32, args.concurrency),
                retry_attempts=1,
            )
            storage.head("media/warm-up.png")  # the server is up and one connection is open
            rows = []
            for mode, concurrency, round_trips in (
                ("put, sequential", 1, 1),
                ("put, thread pool", args.concurrency, 1),
                ("put_if_absent (HEAD + PUT), thread pool", args.concurrency, 2),
            ):
                images = [os.urandom(args.size) for _ in range(args.count)]  # fresh keys for every mode
                wall = run(storage, images, concurrency, "put_if_absent" if "absent" in mode else "put")
                ideal = args.latency * round_trips * math.ceil(args.count / concurrency)
                rows.append(
                    {
                        "mode": mode,
                        "concurrency": concurrency,
                        "images": args.count,
                        "requests": args.count * round_trips,
                        "wall_s": round(wall, 3),
                        "ideal_s": round(ideal, 3),
                        "ratio": round(wall / ideal, 2),
                    }
                )
        finally:
            server.terminate()  # the server process this script started
            server.wait(timeout=10)

    sequential, parallel = rows[0]["wall_s"], rows[1]["wall_s"]
    print(
        f"{args.count} images of {args.size // 1000} KB, {args.latency * 1000:.0f} ms added per request, "
        f"{args.signature} signing, {os.cpu_count()} cores\n"
    )
    print("| mode | threads | requests | wall (s) | ideal (s) | wall / ideal |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for r in rows:
        print(
            f"| {r['mode']} | {r['concurrency']} | {r['requests']} | {r['wall_s']:.2f} | {r['ideal_s']:.2f} "
            f"| {r['ratio']:.2f} |"
        )
    print(f"\nthread pool vs sequential: {sequential / parallel:.1f}x faster")

    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(
        json.dumps(
            {
                "benchmark": "uploads",
                "parameters": {k: v for k, v in vars(args).items() if k != "output"},
                "machine": {
                    "cores": os.cpu_count(),
                    "python": platform.python_version(),
                    "platform": platform.platform(),
                },
                "rows": rows,
                "speedup": round(sequential / parallel, 2),
                "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            },
            indent=2,
        )
        + "\n"
    )
    print(f"written to {args.output.relative_to(ROOT) if args.output.is_relative_to(ROOT) else args.output}")


if __name__ == "__main__":
    main()
