"""Document engine benchmark: structural agreement with pandoc, speed against mammoth, failures.

    .venv/bin/python bench/documents.py ../shared/corpus [--repeat 3] [--json bench/results/documents.json]

The corpus folder is read where it is (never copied). For every .docx (and every .doc, converted once
by LibreOffice when soffice is installed) the script takes pandoc's HTML as the reference and
compares Copydesk's converter and mammoth's with it on: words, headings (level + text), list items
(depth + kind), tables, table cells, images, links, footnotes, bold and italic words. Each feature
scores a Dice overlap (1 = same multiset), a file scores the mean of the features present in either
output, a folder the mean of its files that pandoc reads to something (files pandoc turns into an
empty page are counted as read but not compared: there is no reference to agree with). Speed is the total in-process time of
each converter over the same files (best of --repeat runs per file), in one run of the script.
"""

from __future__ import annotations

import argparse
import io
import json
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import lxml.html

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from app.core.errors import CopydeskError  # noqa: E402
from app.documents import LibreOffice, word_to_article  # noqa: E402

NOTE_ID = re.compile(r"^(fn|footnote|endnote)[-_]?\d+$")
WORD = re.compile(r"\w+", re.UNICODE)
FEATURES = [
    "words",
    "headings",
    "list_items",
    "tables",
    "cells",
    "images",
    "links",
    "notes",
    "bold",
    "italic",
]
PANDOC_TIMEOUT = 120
BLOCK_TAGS = (
    "p", "li", "ol", "ul", "h1", "h2", "h3", "h4", "h5", "h6", "table", "tr", "td", "th", "br", "div",
    "figure", "figcaption", "blockquote", "pre", "section", "caption", "dd", "dt", "hr",
)  # fmt: skip


# --- structure of an HTML output ---------------------------------------------------------------


def _words(text: str) -> list[str]:
    return [w.lower() for w in WORD.findall(text)]


def features(html: str) -> dict[str, Counter]:
    root = lxml.html.document_fromstring(html if html.strip() else "<p></p>")
    body = root.find("body") if root.find("body") is not None else root
    for header in body.xpath(".//header[@id='title-block-header']"):  # pandoc's metadata block
        header.drop_tree()
    note_items = [li for li in body.iter("li") if NOTE_ID.match(li.get("id", ""))]
    note_ids = {li.get("id") for li in note_items}
    refs = [a for a in body.iter("a") if a.get("href", "")[1:] in note_ids]
    ref_ids = {a.get("id") for a in refs if a.get("id")} | {
        sup.get("id") for a in refs for sup in [a.getparent()] if sup is not None and sup.get("id")
    }
    backs = [a for a in body.iter("a") if a.get("href", "")[1:] in ref_ids]
    for a in refs + backs:
        a.drop_tree()
    for el in body.iter(*BLOCK_TAGS):  # words never run together across block boundaries
        el.text = " " + (el.text or "")
        el.tail = " " + (el.tail or "")
    out: dict[str, Counter] = {name: Counter() for name in FEATURES}
    out["words"].update(_words(body.text_content()))
    for level in range(1, 7):
        for h in body.iter(f"h{level}"):
            out["headings"][(level, " ".join(_words(h.text_content())))] += 1
    note_set = set(note_items)
    for li in body.iter("li"):
        if li in note_set:
            continue
        depth = sum(1 for a in li.iterancestors() if a.tag in ("ol", "ul") and not _is_note_list(a, note_set))
        out["list_items"][(depth, li.getparent().tag if li.getparent() is not None else "")] += 1
    out["tables"]["table"] = sum(1 for _ in body.iter("table"))
    out["cells"]["cell"] = sum(1 for _ in body.iter("td", "th"))
    out["images"]["img"] = sum(1 for _ in body.iter("img"))
    for a in body.iter("a"):
        href = a.get("href")
        if href:
            out["links"]["#" if href.startswith("#") else href.rstrip("/")] += 1
    out["notes"]["note"] = len(note_items)
    for el in body.iter("strong", "b"):
        out["bold"].update(_words(el.text_content()))
    for el in body.iter("em", "i"):
        out["italic"].update(_words(el.text_content()))
    return {k: +v for k, v in out.items()}


def _is_note_list(el, note_set) -> bool:
    return any(child in note_set for child in el)


def dice(a: Counter, b: Counter) -> float | None:
    total = sum(a.values()) + sum(b.values())
    if total == 0:
        return None
    return 2 * sum((a & b).values()) / total


def agreement(reference: dict, other: dict | None) -> tuple[float, dict]:
    if other is None:
        return 0.0, {}
    scores = {name: dice(reference[name], other[name]) for name in FEATURES}
    present = [s for s in scores.values() if s is not None]
    return (statistics.fmean(present) if present else 1.0), scores


# --- converters ---------------------------------------------------------------------------------


def pandoc_html(path: Path, pandoc: str) -> tuple[str | None, str]:
    try:
        proc = subprocess.run(
            [pandoc, "-f", "docx", "-t", "html", "--standalone", "--wrap=none", "--sandbox", str(path)],
            capture_output=True,
            timeout=PANDOC_TIMEOUT,
        )
    except subprocess.TimeoutExpired:
        return None, f"pandoc timed out after {PANDOC_TIMEOUT}s"
    if proc.returncode != 0:
        return None, proc.stderr.decode("utf-8", "replace").strip().splitlines()[-1:][
            0
        ] if proc.stderr else "failed"
    return proc.stdout.decode("utf-8", "replace"), ""


def timed(fn, data: bytes, repeat: int):
    best, result, error = float("inf"), None, None
    for _ in range(repeat):
        start = time.perf_counter()
        try:
            result = fn(data)
            error = None
        except Exception as exc:  # noqa: BLE001 - the benchmark records every failure
            error = exc
        best = min(best, time.perf_counter() - start)
        if error is not None:
            break
    return result, error, best


def describe(exc: BaseException) -> str:
    text = getattr(exc, "message", None) or str(exc) or type(exc).__name__
    return f"{type(exc).__name__}: {text}"[:240]


# --- main -------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("corpus", type=Path, help="folder of sub-folders of .docx/.doc files (read in place)")
    parser.add_argument("--repeat", type=int, default=3, help="runs per file and converter; the best counts")
    parser.add_argument("--json", type=Path, default=ROOT / "bench" / "results" / "documents.json")
    parser.add_argument(
        "--no-libreoffice", action="store_true", help="skip .doc files and EMF/WMF conversion"
    )
    args = parser.parse_args(argv)

    import mammoth
    import pypandoc

    pandoc = pypandoc.get_pandoc_path()
    libreoffice = None if args.no_libreoffice else LibreOffice.find()
    files = sorted(p for p in args.corpus.rglob("*") if p.suffix.lower() in (".docx", ".doc") and p.is_file())
    if not files:
        print(f"no .docx/.doc files under {args.corpus}", file=sys.stderr)
        return 2

    # .doc files: one LibreOffice batch (our own pipeline's path); both converters then read its .docx.
    sources: dict[Path, bytes | None] = {}
    doc_errors: dict[Path, str] = {}
    legacy = [p for p in files if p.suffix.lower() == ".doc"]
    lo_seconds = 0.0
    if legacy and libreoffice is not None:
        start = time.perf_counter()
        converted = libreoffice.docs_to_docx([p.read_bytes() for p in legacy], [p.name for p in legacy])
        lo_seconds = time.perf_counter() - start
        for path, result in zip(legacy, converted):
            if isinstance(result, CopydeskError):
                doc_errors[path] = describe(result)
                sources[path] = None
            else:
                sources[path] = result
    for path in files:
        if path.suffix.lower() == ".docx":
            sources[path] = path.read_bytes()

    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-docs-") as tmp:
        jobs = {}
        for i, path in enumerate(files):
            data = sources.get(path)
            if data is not None:
                target = path if path.suffix.lower() == ".docx" else Path(tmp, f"{i}.docx")
                if target != path:
                    target.write_bytes(data)
                jobs[path] = target
        print(f"pandoc on {len(jobs)} files...", file=sys.stderr)
        with ThreadPoolExecutor(max_workers=2) as pool:
            references = dict(zip(jobs, pool.map(lambda p: pandoc_html(p, pandoc), jobs.values())))

    print("timing Copydesk and mammoth...", file=sys.stderr)
    # Timed: the engine alone, like mammoth. EMF/WMF pictures then go through LibreOffice once,
    # untimed here (an outside process mammoth does not run), so the comparison sees them.
    ours_fn = lambda data: word_to_article(data)  # noqa: E731
    mammoth_fn = lambda data: mammoth.convert_to_html(io.BytesIO(data))  # noqa: E731
    emf_seconds = 0.0
    for path in files:
        folder = path.parent.relative_to(args.corpus).as_posix() or "."
        if path.suffix.lower() == ".doc":
            folder += " (.doc)"
        row = {"file": path.relative_to(args.corpus).as_posix(), "folder": folder}
        data = sources.get(path)
        if data is None:
            row.update(
                skipped=True,
                ours_error=doc_errors.get(path, "LibreOffice not installed: .doc not converted"),
                clean=path in doc_errors,
            )
            rows.append(row)
            continue
        html, pandoc_error = references.get(path, (None, "not run"))
        ours, ours_error, ours_time = timed(ours_fn, data, args.repeat)
        mam, mam_error, mam_time = timed(mammoth_fn, data, args.repeat)
        if ours is not None and libreoffice is not None and ours.report.dropped.get("vector_image"):
            start = time.perf_counter()
            ours = word_to_article(data, libreoffice=libreoffice)
            emf_seconds += time.perf_counter() - start
        row.update(
            pandoc_ok=html is not None,
            pandoc_error=pandoc_error,
            ours_time=ours_time,
            mammoth_time=mam_time,
            ours_error=describe(ours_error) if ours_error else None,
            mammoth_error=describe(mam_error) if mam_error else None,
            # A clean failure is one of our typed errors, not an unexpected exception in disguise.
            clean=ours_error is None
            or (isinstance(ours_error, CopydeskError) and "exception" not in ours_error.details),
        )
        reference = features(html) if html is not None else None
        if reference is not None and not any(reference.values()):
            # pandoc read the file but gave nothing (e.g. poi/61470.docx: ruby text it drops):
            # no reference to compare with.
            row["empty_reference"] = True
        elif reference is not None:
            row["ours"], row["ours_scores"] = agreement(reference, features(ours.html) if ours else None)
            row["mammoth"], row["mammoth_scores"] = agreement(reference, features(mam.value) if mam else None)
        rows.append(row)

    summary = summarize(rows)
    summary["libreoffice_doc_seconds"] = round(lo_seconds, 2)
    summary["libreoffice_emf_seconds"] = round(emf_seconds, 2)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({"summary": summary, "files": rows}, indent=1, default=str))
    print(render(summary, rows))
    print(
        f"\nLibreOffice, outside the timings: {len(legacy)} .doc in one batch {lo_seconds:.1f} s; "
        f"EMF/WMF pictures {emf_seconds:.1f} s."
    )
    return 0


def summarize(rows: list[dict]) -> dict:
    def block(selected: list[dict]) -> dict:
        readable = [r for r in selected if r.get("pandoc_ok")]
        scored = [r for r in readable if "ours" in r]
        timed_rows = [r for r in selected if "ours_time" in r]
        ours_t = sum(r["ours_time"] for r in timed_rows)
        mam_t = sum(r["mammoth_time"] for r in timed_rows)
        return {
            "files": len(selected),
            "pandoc_reads": len(readable),
            "compared": len(scored),
            "ours_agreement": round(statistics.fmean(r["ours"] for r in scored), 4) if scored else None,
            "mammoth_agreement": round(statistics.fmean(r["mammoth"] for r in scored), 4) if scored else None,
            "ours_failures": sum(1 for r in selected if r.get("ours_error")),
            "mammoth_failures": sum(1 for r in selected if r.get("mammoth_error")),
            "ours_fails_where_pandoc_reads": sum(1 for r in readable if r.get("ours_error")),
            "unclean_failures": sum(1 for r in selected if r.get("ours_error") and not r.get("clean")),
            "ours_seconds": round(ours_t, 3),
            "mammoth_seconds": round(mam_t, 3),
            "time_ratio": round(ours_t / mam_t, 3) if mam_t else None,
        }

    folders = sorted({r["folder"] for r in rows})
    features_ours = {
        f: round(
            statistics.fmean(s for r in rows if "ours" in r and (s := r["ours_scores"].get(f)) is not None), 4
        )
        for f in FEATURES
        if any(r.get("ours_scores", {}).get(f) is not None for r in rows)
    }
    features_mammoth = {
        f: round(
            statistics.fmean(
                s for r in rows if "ours" in r and (s := r["mammoth_scores"].get(f)) is not None
            ),
            4,
        )
        for f in FEATURES
        if any(r.get("mammoth_scores", {}).get(f) is not None for r in rows)
    }
    return {
        "folders": {f: block([r for r in rows if r["folder"] == f]) for f in folders},
        "total": block(rows),
        "features": {"ours": features_ours, "mammoth": features_mammoth},
    }


def render(summary: dict, rows: list[dict]) -> str:
    def fmt(value) -> str:
        return "–" if value is None else (f"{value:.3f}" if isinstance(value, float) else str(value))

    lines = [
        "| folder | files | pandoc reads (compared) | agreement ours | agreement mammoth | fails ours (where pandoc reads) | fails mammoth | time ours s | time mammoth s | ours ÷ mammoth |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    items = list(summary["folders"].items()) + [("**total**", summary["total"])]
    for name, s in items:
        lines.append(
            f"| {name} | {s['files']} | {s['pandoc_reads']} ({s['compared']}) | {fmt(s['ours_agreement'])} | {fmt(s['mammoth_agreement'])} "
            f"| {s['ours_failures']} ({s['ours_fails_where_pandoc_reads']}) | {s['mammoth_failures']} "
            f"| {fmt(s['ours_seconds'])} | {fmt(s['mammoth_seconds'])} | {fmt(s['time_ratio'])} |"
        )
    lines += ["", "| feature | ours | mammoth |", "| --- | ---: | ---: |"]
    for name in FEATURES:
        lines.append(
            f"| {name} | {fmt(summary['features']['ours'].get(name))} | {fmt(summary['features']['mammoth'].get(name))} |"
        )
    failures = [r for r in rows if r.get("ours_error")]
    if failures:
        lines += ["", "Files Copydesk refuses (and why):", ""]
        for r in failures:
            flag = "" if r.get("clean") else " **UNCLEAN**"
            pandoc = " — pandoc reads it" if r.get("pandoc_ok") else ""
            lines.append(f"- `{r['file']}`: {r['ours_error']}{pandoc}{flag}")
    total = summary["total"]
    lines += [
        "",
        f"Goals: agreement above mammoth's: {'yes' if _above(summary) else 'NO'}; "
        f"time ≤ 0.5× mammoth's: {'yes' if (total['time_ratio'] or 9) <= 0.5 else 'NO'} ({fmt(total['time_ratio'])}); "
        f"no failure where pandoc reads: {'yes' if not total['ours_fails_where_pandoc_reads'] else 'NO'}; "
        f"hostile files fail cleanly: {'yes' if not total['unclean_failures'] else 'NO'}.",
    ]
    return "\n".join(lines)


def _above(summary: dict) -> bool:
    blocks = list(summary["folders"].values()) + [summary["total"]]
    return all(b["ours_agreement"] is None or b["ours_agreement"] > b["mammoth_agreement"] for b in blocks)


if __name__ == "__main__":
    raise SystemExit(main())
