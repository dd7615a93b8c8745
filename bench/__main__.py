"""Run every benchmark, one after the other (`make bench`, or `.venv/bin/python -m bench`).

    .venv/bin/python -m bench [--corpus ../shared/corpus] [--only engine,uploads,...] [--quick]

Each benchmark prints a markdown table and writes bench/results/<name>.json; bench/README.md holds
the figures of the last full run and how each is measured. Run on a quiet machine: the figures are
ratios against baselines measured in the same run, but 2 cores shared with anything else are noisy.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_CORPUS = ROOT.parent / "shared" / "corpus"


def commands(corpus: Path | None, quick: bool) -> dict[str, list[str]]:
    py = [sys.executable, "-m"]
    out = {
        "engine": [*py, "bench.engine", "--repeat", "3" if quick else "25"],
        "uploads": [*py, "bench.uploads"],
        "mailbox": [*py, "bench.mailbox", *(["--repeat", "10"] if quick else [])],
        "wordpress": [*py, "bench.wordpress", *(["--articles", "20"] if quick else [])],
        "load": [*py, "bench.load", "--seconds", "5" if quick else "20"],
        "throughput": [*py, "bench.throughput", *(["--documents", "40"] if quick else [])],
        "crashes": [*py, "bench.crashes", "--repeat", "3" if quick else "20"],
        "memory": [*py, "bench.memory"],
    }
    if corpus is not None:
        out["documents"] = [*py, "bench.documents", str(corpus), "--repeat", "1" if quick else "3"]
        out["blocks"] = [*py, "bench.blocks", str(corpus)]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS if DEFAULT_CORPUS.is_dir() else None)
    parser.add_argument("--only", default="", help="comma-separated benchmark names")
    parser.add_argument("--quick", action="store_true", help="fewer repetitions (a smoke run, not figures)")
    args = parser.parse_args()
    todo = commands(args.corpus, args.quick)
    if args.only:
        wanted = set(args.only.split(","))
        todo = {k: v for k, v in todo.items() if k in wanted}
    failed = []
    for name, cmd in todo.items():
        print(f"\n## {name}\n", flush=True)
        started = time.monotonic()
        result = subprocess.run(cmd, cwd=ROOT)
        print(f"({name}: {time.monotonic() - started:.0f} s, exit {result.returncode})", flush=True)
        if result.returncode:
            failed.append(name)
    if "documents" not in todo and not args.only:
        print("\n(documents: skipped, no corpus folder; pass --corpus DIR)")
    if failed:
        sys.exit(f"failed: {', '.join(failed)}")


if __name__ == "__main__":
    main()
