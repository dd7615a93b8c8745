"""Mailbox polling against a real Dovecot on loopback (tests/servers/dovecot.py).

1. Poll of an unchanged folder of 1,000 messages (goal: at most 50 ms). The cursor is up to date, so a
   poll is connect + TLS + LOGIN + STATUS + LOGOUT; Dovecot's own session log confirms that no message
   header or body was fetched. Repeated, over IMAPS and STARTTLS.
2. Intake of 200 new messages: one poll from an empty cursor that lists, downloads (BODY.PEEK[]) and
   parses 200 messages, each with a ~40 KB .docx attachment. Messages per second.

    .venv/bin/python bench/mailbox.py [--folder-size 1000] [--new 200] [--repeat 50]

Needs Dovecot (`python -m tests.servers.dovecot deps`) and root. Prints a markdown table and writes
bench/results/mailbox.json.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import statistics
import sys
import time
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from app.integrations.mailbox import MailboxConfig, poll
from tests.fixtures.dovecot import DOCX_TYPE, make_docx, make_message
from tests.servers.dovecot import DovecotServer, missing_reason

RESULTS = Path(__file__).with_name("results") / "mailbox.json"
GOAL_MS = 50.0


def distinct_docx(base: bytes, n: int) -> bytes:
    """The base .docx plus a small part of its own, so every manuscript has its own hash."""
    buffer = io.BytesIO(base)
    with zipfile.ZipFile(buffer, "a") as archive:
        archive.writestr(f"customXml/bench-{n}.xml", f"<n>{n}</n>")
    return buffer.getvalue()


def messages(count: int, base: bytes, prefix: str):
    for n in range(count):
        yield make_message(
            subject=f"[category Bench] [tags t{n % 7}] Story {n}",
            attachments=[(f"story-{n}.docx", distinct_docx(base, n), DOCX_TYPE)],
            message_id=f"<{prefix}-{n}@bench.example>",
        )


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def config_for(server: DovecotServer, user: str, tls: str) -> MailboxConfig:
    return MailboxConfig(
        host=server.host,
        port=server.imaps_port if tls == "imaps" else server.imap_port,
        tls=tls,
        user=user,
        password=server.users[user],
        ca_file=server.ca_file,
        max_messages_per_poll=10_000,
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--folder-size", type=int, default=1000)
    parser.add_argument("--new", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=50)
    args = parser.parse_args()
    reason = missing_reason()
    if reason:
        print(f"Dovecot is not available: {reason}", file=sys.stderr)
        return 2

    base = make_docx("\n".join(f"Paragraph {n}: " + "lorem ipsum dolor sit amet " * 12 for n in range(60)))
    with DovecotServer(users={"full": "full-password", "intake": "intake-password"}) as server:
        # --- 1. unchanged folder --------------------------------------------------------------
        started = time.perf_counter()
        server.deliver_many("full", messages(args.folder_size, base, "full"))
        fill_seconds = time.perf_counter() - started
        first = poll(config_for(server, "full", "imaps"))
        assert len(first.messages) == args.folder_size, len(first.messages)
        unchanged = {}
        for tls in ("imaps", "starttls"):
            config = config_for(server, "full", tls)
            poll(config, first.cursor)  # warm-up
            times = []
            for _ in range(args.repeat):
                result = poll(config, first.cursor)
                assert not result.messages and result.downloaded_bytes == 0
                times.append(result.elapsed * 1000)
            unchanged[tls] = {
                "median_ms": round(statistics.median(times), 2),
                "p95_ms": round(percentile(times, 0.95), 2),
                "min_ms": round(min(times), 2),
                "max_ms": round(max(times), 2),
            }
        sessions = server.wait_for_sessions("full")
        polls = sessions[-2 * (args.repeat + 1):]
        server_fetches = {
            "sessions": len(polls),
            "hdr_count": sum(s.hdr_count for s in polls),
            "body_count": sum(s.body_count for s in polls),
            "bytes_out_per_poll": round(statistics.mean(s.bytes_out for s in polls)),
        }

        # --- 2. intake of new messages ---------------------------------------------------------
        server.deliver_many("intake", messages(args.new, base, "intake"))
        config = config_for(server, "intake", "imaps")
        runs = []
        for _ in range(3):
            started = time.perf_counter()
            result = poll(config, None)
            seconds = time.perf_counter() - started
            assert len(result.messages) == args.new and all(m.ready and len(m.documents) == 1 for m in result.messages)
            runs.append((seconds, result.downloaded_bytes))
        seconds, downloaded = sorted(runs)[len(runs) // 2]  # the median run
        intake = {
            "messages": args.new,
            "seconds": round(seconds, 3),
            "messages_per_second": round(args.new / seconds, 1),
            "mb_per_second": round(downloaded / seconds / 1e6, 1),
            "message_kb": round(downloaded / args.new / 1000, 1),
            "runs_seconds": [round(r[0], 3) for r in runs],
        }

    result = {
        "unchanged_poll": {"folder_messages": args.folder_size, "repeat": args.repeat, "goal_ms": GOAL_MS, **unchanged},
        "unchanged_poll_server_side": server_fetches,
        "intake": intake,
        "fill_seconds": round(fill_seconds, 2),
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count(), "platform": platform.platform()},
    }
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")

    print(f"Mailbox polling, Dovecot on loopback, {os.cpu_count()} CPUs\n")
    print("| measure | value | goal |")
    print("| --- | --- | --- |")
    for tls, figures in unchanged.items():
        ok = "met" if figures["median_ms"] <= GOAL_MS else "MISSED"
        print(
            f"| poll of an unchanged folder of {args.folder_size} messages, {tls} | median {figures['median_ms']} ms, "
            f"p95 {figures['p95_ms']} ms (n={args.repeat}) | ≤ {GOAL_MS:g} ms: {ok} |"
        )
    print(
        f"| what Dovecot sent for those {server_fetches['sessions']} polls | {server_fetches['hdr_count']} headers, "
        f"{server_fetches['body_count']} bodies, {server_fetches['bytes_out_per_poll']} bytes per poll | 0 bodies |"
    )
    print(
        f"| intake of {args.new} new messages (list + download + parse, {intake['message_kb']} KB each) | "
        f"{intake['seconds']} s = **{intake['messages_per_second']} messages/s** ({intake['mb_per_second']} MB/s) | — |"
    )
    print(f"\nwrote {RESULTS.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
