"""Edited articles as block markup: does the edit keep the converter's blocks?

    .venv/bin/python -m bench.blocks ../shared/corpus [--json bench/results/blocks.json]

For every .docx of the corpus the converter's HTML is read back into the document model and written
by the converter's block writer (app.documents.from_html, what the publish step does with an edited
article), three ways:
- unedited: the converter's HTML as it is; the outputs must be the converter's to the byte (HTML,
  block markup, footnote ids and contents);
- offline: after the offline editor's cleaning (app.integrations.llm.markup.clean_html);
- rewritten: after a model's kind of edit: placeholders in (markup.protect), every word of the text
  changed, originals back (markup.restore) and the allow-list (markup.sanitize).
For the edited ones the structure must stay the converter's: the sequence of blocks, captions, footnote
references, images, formulas, table rows and header cells. Time: from_html over the corpus, against the
converter's own time on the same files.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from app.core.errors import CopydeskError  # noqa: E402
from app.documents import word_to_article, from_html  # noqa: E402
from app.integrations.llm import markup  # noqa: E402


def structure(blocks: str) -> tuple:
    return (
        tuple(re.findall(r"<!-- wp:([a-z-]+)", blocks)),
        blocks.count("wp-element-caption"),
        blocks.count("data-fn="),
        blocks.count("<img"),
        blocks.count("<math"),
        blocks.count("<tr>"),
        blocks.count("<th"),
    )


def rewritten(html: str) -> str:
    """What a model does to an article: its words change, its tags and placeholders stay."""
    protected = markup.protect(html)
    body = re.sub(r">([^<]+)<", lambda m: ">" + m.group(1).upper() + "<", protected.html)
    return markup.sanitize(markup.restore(body, protected))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("corpus", type=Path)
    parser.add_argument("--json", type=Path, default=ROOT / "bench" / "results" / "blocks.json")
    args = parser.parse_args(argv)
    files = sorted(args.corpus.rglob("*.docx"))
    counts = {"files": len(files), "refused": 0, "unedited": 0, "offline": 0, "rewritten": 0}
    failures: dict[str, list[str]] = {"unedited": [], "offline": [], "rewritten": []}
    convert_s = read_s = 0.0
    for path in files:
        start = time.perf_counter()
        try:
            converted = word_to_article(path.read_bytes(), path.name)
        except CopydeskError:
            counts["refused"] += 1
            continue
        convert_s += time.perf_counter() - start
        start = time.perf_counter()
        back = from_html(converted.html)
        read_s += time.perf_counter() - start
        notes = [(n.id, n.html) for n in converted.footnotes]
        same = (back.html, back.blocks, [(n.id, n.html) for n in back.footnotes]) == (
            converted.html,
            converted.blocks,
            notes,
        )
        wanted = structure(converted.blocks)
        outcomes = {
            "unedited": same,
            "offline": structure(from_html(markup.clean_html(converted.html)).blocks) == wanted,
            "rewritten": structure(from_html(rewritten(converted.html)).blocks) == wanted,
        }
        for name, ok in outcomes.items():
            counts[name] += ok
            if not ok:
                failures[name].append(str(path.relative_to(args.corpus)))
    read = counts["files"] - counts["refused"]
    print(
        "| read .docx | unedited: same outputs | offline edit: same structure | rewrite: same structure "
        "| from_html s | convert s | ratio |"
    )
    print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    print(
        f"| {read} | {counts['unedited']} | {counts['offline']} | {counts['rewritten']} | {read_s:.3f} "
        f"| {convert_s:.3f} | {read_s / convert_s if convert_s else 0:.2f} |"
    )
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(
        json.dumps({**counts, "from_html_s": read_s, "convert_s": convert_s, "failures": failures}, indent=2)
    )
    return 0 if all(counts[k] == read for k in failures) else 1


if __name__ == "__main__":
    raise SystemExit(main())
