"""Peak worker memory for a large manuscript: a 50 MB .docx with 200 images through the whole
workflow (real workers, local storage, offline editor). Baseline: the same workers' memory when idle,
measured in the same run, and the peak for a small manuscript.

    .venv/bin/python -m bench.memory [--images 200] [--target-mb 50]
"""

from __future__ import annotations

import argparse
import io
import random
import threading
import time

import psutil

from bench.harness import save, stack, table, wait_run


def noisy_png(size: int, seed: int) -> bytes:
    from PIL import Image

    rng = random.Random(seed)
    side = int((size / 3) ** 0.5)
    image = Image.frombytes("RGB", (side, side), bytes(rng.getrandbits(8) for _ in range(side * side * 3)))
    out = io.BytesIO()
    image.save(out, "PNG", compress_level=1)
    return out.getvalue()


def big_docx(images: int, target_mb: float) -> bytes:
    from docx import Document
    from docx.shared import Inches

    per_image = int(target_mb * 1024 * 1024 / images)
    doc = Document()
    doc.add_heading("A very large manuscript", level=1)
    for i in range(images):
        doc.add_paragraph(f"Picture {i + 1}: " + "caption text " * 20)
        doc.add_picture(io.BytesIO(noisy_png(per_image, i)), width=Inches(2))
    out = io.BytesIO()
    doc.save(out)
    return out.getvalue()


class PeakRss:
    """Samples the resident memory of the worker processes (and their pool children) every 20 ms."""

    def __init__(self, pids: list[int]) -> None:
        self.roots = [psutil.Process(p) for p in pids]
        self.peak: dict[str, int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self) -> None:
        while not self._stop.is_set():
            for root in self.roots:
                try:
                    procs = [root, *root.children(recursive=True)]
                    for proc in procs:
                        key = "main" if proc.pid == root.pid else "child"
                        name = f"{root.pid}:{key}"
                        self.peak[name] = max(self.peak.get(name, 0), proc.memory_info().rss)
                except psutil.Error:
                    pass
            time.sleep(0.02)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()

    def max_mb(self) -> float:
        return max(self.peak.values()) / 1024 / 1024


def submit_document(data: bytes, name: str) -> str:
    from app.core.db import session_scope
    from app.workflows import engine, intake

    with session_scope() as session:
        submission = intake.submit(session, data, name)
    engine.send(submission.run)
    return str(submission.run.id)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--images", type=int, default=200)
    parser.add_argument("--target-mb", type=float, default=50)
    args = parser.parse_args()
    from tests.samples import docx

    big = big_docx(args.images, args.target_mb)
    small = docx("Small", images=2, seed=3)
    with stack({"MAX_UPLOAD_MB": "200"}, cpu=2, io=8) as st:
        pids = [w.process.pid for w in st["workers"]]
        time.sleep(2)
        with PeakRss(pids) as idle:
            time.sleep(2)
        with PeakRss(pids) as small_peak:
            run = wait_run(submit_document(small, "small.docx"))
            assert run.state == "succeeded", run.error
        started = time.monotonic()
        with PeakRss(pids) as big_peak:
            run = wait_run(submit_document(big, "big.docx"), timeout=900)
        seconds = time.monotonic() - started
        assert run.state == "succeeded", run.error
    idle_mb, small_mb, big_mb = idle.max_mb(), small_peak.max_mb(), big_peak.max_mb()
    data = {"docx_mb": len(big) / 1024 / 1024, "images": args.images, "seconds": seconds,
            "idle_peak_rss_mb": idle_mb, "small_peak_rss_mb": small_mb, "big_peak_rss_mb": big_mb,
            "per_process_peak_mb": {k: v / 1024 / 1024 for k, v in big_peak.peak.items()}}
    path = save("memory", data)
    print(table(["case", "peak RSS of one worker process", "÷ idle"], [
        ["idle workers", f"{idle_mb:.0f} MB", "1.00"],
        ["small manuscript (2 images)", f"{small_mb:.0f} MB", f"{small_mb / idle_mb:.2f}"],
        [f"{len(big) / 1024 / 1024:.0f} MB .docx, {args.images} images ({seconds:.1f} s)", f"{big_mb:.0f} MB",
         f"{big_mb / idle_mb:.2f}"],
    ]))
    print(f"\nresults: {path}")


if __name__ == "__main__":
    main()
