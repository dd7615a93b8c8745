"""Document model -> plain text (search, excerpts, checks on the LLM's rewrite)."""

from __future__ import annotations

from app.documents.inline import plain_text
from app.documents.model import Figure, Group, ListBlock, Note, Paragraph, Table


def block_text(block) -> str:
    if isinstance(block, Paragraph):
        return plain_text(block.children)
    if isinstance(block, Table):
        return " / ".join(block_text(b) for row in block.rows for cell in row.cells for b in cell.blocks)
    if isinstance(block, Figure):
        return block_text(block.caption) if block.caption else ""
    if isinstance(block, Group):
        return " ".join(plain_text(p.children) for p in block.paragraphs)
    if isinstance(block, ListBlock):
        return " ".join(block_text(b) for item in block.items for b in item)
    return ""


def text_of(blocks: list, notes: list[Note]) -> str:
    """Plain text of the document: one line per paragraph, list item or table row; notes last."""
    lines: list[str] = []

    def walk(block, prefix: str = "") -> None:
        if isinstance(block, Paragraph):
            if text := plain_text(block.children):
                lines.append(prefix + text)
        elif isinstance(block, ListBlock):
            for n, item in enumerate(block.items, block.start):
                marker = f"{n}. " if block.ordered else "• "
                for i, b in enumerate(item):
                    walk(b, prefix + ("  " if i else "") + (marker if i == 0 else ""))
        elif isinstance(block, Table):
            for row in block.rows:
                cells = [
                    " ".join(plain_text(b.children) for b in c.blocks if isinstance(b, Paragraph))
                    for c in row.cells
                ]
                if any(cells):
                    lines.append(" | ".join(cells))
                for cell in row.cells:
                    for b in cell.blocks:
                        if not isinstance(b, Paragraph):
                            walk(b)
        elif isinstance(block, Figure):
            if isinstance(block.content, Table):
                walk(block.content)
            if block.caption is not None:
                walk(block.caption)
        elif isinstance(block, Group):
            for p in block.paragraphs:
                walk(p)

    for block in blocks:
        walk(block)
    for note in notes:
        first = len(lines)
        for block in note.blocks:
            walk(block)
        if len(lines) > first:
            lines[first] = f"[{note.number}] {lines[first]}"
    return "\n".join(lines)
