"""What the model changed: a diff of two versions of an article, block by block.

Each block (paragraph, heading, list item, table row) is one line of text, tagged with its element;
images and link targets are written inline, so moving or dropping one shows up. Changed paragraphs
also get a word-level diff, which is what an editor reads before approving.
"""

from __future__ import annotations

import difflib
from dataclasses import asdict, dataclass, field
from typing import Any

from app.integrations.llm.markup import block_texts


@dataclass
class DiffOp:
    op: str  # "equal", "replace", "insert", "delete"
    original: list[str]  # the blocks before ("p: text …")
    edited: list[str]  # the blocks after
    words: list[tuple[str, str]] = field(
        default_factory=list
    )  # replace ops: ("equal"|"delete"|"insert", text)


@dataclass
class HtmlDiff:
    ops: list[DiffOp]
    unified: str  # `diff -u` style text of the blocks
    changed_blocks: int  # original blocks replaced or deleted, plus blocks inserted
    similarity: float  # 0..1, difflib's ratio of the two block sequences

    @property
    def changed(self) -> bool:
        return self.changed_blocks > 0

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        for op in out["ops"]:
            op["words"] = [list(w) for w in op["words"]]
        return out


def word_diff(original: str, edited: str) -> list[tuple[str, str]]:
    a, b = original.split(), edited.split()
    out: list[tuple[str, str]] = []
    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(a=a, b=b, autojunk=False).get_opcodes():
        if tag == "equal":
            out.append(("equal", " ".join(a[i1:i2])))
            continue
        if i2 > i1:
            out.append(("delete", " ".join(a[i1:i2])))
        if j2 > j1:
            out.append(("insert", " ".join(b[j1:j2])))
    return out


def _without_tags(blocks: list[str]) -> str:
    return " ".join(block.split(": ", 1)[-1] for block in blocks)


def diff_html(original_html: str, edited_html: str, *, context: int = 3) -> HtmlDiff:
    before, after = block_texts(original_html), block_texts(edited_html)
    matcher = difflib.SequenceMatcher(a=before, b=after, autojunk=False)
    ops: list[DiffOp] = []
    changed = 0
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        op = DiffOp(op=tag, original=before[i1:i2], edited=after[j1:j2])
        if tag != "equal":
            changed += max(i2 - i1, j2 - j1)
        if tag == "replace":
            op.words = word_diff(_without_tags(op.original), _without_tags(op.edited))
        ops.append(op)
    unified = "\n".join(difflib.unified_diff(before, after, "original", "edited", n=context, lineterm=""))
    return HtmlDiff(ops=ops, unified=unified, changed_blocks=changed, similarity=round(matcher.ratio(), 4))
