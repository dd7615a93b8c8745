"""From Word's flat paragraphs to structure: figures with captions, nested lists, code and quote
groups, the title, and ids for the bookmarks that links point to."""

from __future__ import annotations

import re

from app.documents.inline import plain_text
from app.documents.model import (
    Break,
    Figure,
    Group,
    Image,
    Link,
    ListBlock,
    Paragraph,
    Table,
    Text,
)

_TABLE_LABEL = re.compile(r"^\s*(table|tableau|tabelle|tabla|tabel|tabella)\b", re.I)
_ID_UNSAFE = re.compile(r"[^A-Za-z0-9_.:\-]+")


def arrange(blocks: list) -> list:
    """Figures first (captions sit next to images and tables), then lists, then groups; tables'
    cells are arranged the same way."""
    for block in blocks:
        if isinstance(block, Table):
            for row in block.rows:
                for cell in row.cells:
                    cell.blocks = arrange(cell.blocks)
    return _groups(_lists(_figures(blocks)))


def _lone_image(block) -> Image | None:
    if not isinstance(block, Paragraph) or block.kind != "p" or block.list is not None:
        return None
    found = None
    for node in block.children:
        kind = type(node)
        if kind is Image and found is None:
            found = node
        elif (kind is Text and node.text.isspace()) or kind is Break:
            continue
        else:
            return None
    return found


def _figures(blocks: list) -> list:
    out = list(blocks)
    images = {i: img for i, b in enumerate(out) if (img := _lone_image(b)) is not None}
    used: set[int] = set()
    for i, block in enumerate(out):
        if not (isinstance(block, Paragraph) and block.kind == "caption"):
            continue
        label = block.seq or _caption_text(block)
        is_table = bool(_TABLE_LABEL.match(label)) if not block.seq else block.seq.lower().startswith("tab")

        def table_at(j: int) -> bool:
            return 0 <= j < len(out) and j not in used and isinstance(out[j], Table)

        def image_at(j: int) -> bool:
            return 0 <= j < len(out) and j not in used and j in images

        order = [(i + 1, table_at), (i - 1, table_at), (i - 1, image_at), (i + 1, image_at)]
        if not is_table:
            order = [(i - 1, image_at), (i + 1, image_at), (i - 1, table_at), (i + 1, table_at)]
        for j, fits in order:
            if fits(j):
                content = out[j] if isinstance(out[j], Table) else images[j]
                out[j] = Figure(content, block, caption_first=j > i)
                if isinstance(content, Image) and not content.ref.caption:
                    content.ref.caption = plain_text(block.children)
                used.update((i, j))
                break
    result = []
    for i, block in enumerate(out):
        if i in used and not isinstance(block, Figure):
            continue  # a caption now inside its figure
        if i in images and i not in used:
            block = Figure(images[i])
        result.append(block)
    return result


def _caption_text(paragraph: Paragraph) -> str:
    return "".join(n.text for n in paragraph.children if type(n) is Text)[:40]


class _Frame:
    __slots__ = ("block", "level", "key", "last")

    def __init__(self, block: ListBlock, level: int, key: tuple, last: int):
        self.block, self.level, self.key, self.last = block, level, key, last


def _lists(blocks: list) -> list:
    out: list = []
    stack: list[_Frame] = []
    for block in blocks:
        info = block.list if isinstance(block, Paragraph) else None
        if info is None:
            if stack and isinstance(block, Paragraph) and block.list_paragraph:
                stack[-1].block.items[-1].append(block)  # an unnumbered paragraph inside the item
                continue
            stack.clear()
            out.append(block)
            continue
        key = (info.key, info.ordered)
        while stack and stack[-1].level > info.level:
            stack.pop()
        if stack and stack[-1].level == info.level:
            top = stack[-1]
            # Same list, unless numbering restarted (a new list that happens to share the definition).
            if top.key == key and (not info.ordered or info.value == top.last + 1):
                top.block.items.append([block])
                top.last = info.value
                continue
            stack.pop()
        new = ListBlock(info.ordered, info.fmt, info.value, [[block]])
        # A list that starts deeper than its parent (an item at level 2 with no level 1 above it)
        # keeps its depth: wrapper lists with an empty item stand for the missing levels.
        parent_level = stack[-1].level if stack else -1
        outer = new
        for _ in range(info.level - parent_level - 1):
            outer = ListBlock(info.ordered, "decimal" if info.ordered else "bullet", 1, [[outer]])
        if stack:
            stack[-1].block.items[-1].append(outer)
        else:
            out.append(outer)
        stack.append(_Frame(new, info.level, key, info.value))
    return out


def _groups(blocks: list) -> list:
    out: list = []
    for block in blocks:
        kind = block.kind if isinstance(block, Paragraph) else None
        if kind in ("code", "quote"):
            last = out[-1] if out else None
            if isinstance(last, Group) and last.kind == kind:
                last.paragraphs.append(block)
            else:
                out.append(Group(kind, [block]))
        else:
            out.append(block)
    return out


def take_title(blocks: list) -> Paragraph | None:
    """Remove and return the first Title-styled paragraph, when no heading comes before it."""
    for i, block in enumerate(blocks):
        if isinstance(block, Paragraph):
            if block.kind == "title":
                return blocks.pop(i)
            if block.kind == "h":
                return None
    return None


def first_heading(blocks: list) -> str:
    """The text of the first heading among the top-level blocks ("" without one)."""
    for block in blocks:
        if isinstance(block, Paragraph) and block.kind == "h":
            return plain_text(block.children)
    return ""


def resolve_bookmarks(internal_links: list[Link], owners: dict[str, Paragraph]) -> None:
    """Give an id to each paragraph a link points to; unlink links to bookmarks that do not exist."""
    for link in internal_links:
        owner = owners.get(link.href[1:])
        if owner is None:
            link.href = ""  # the writers render its text without a link
            continue
        if owner.id is None:
            owner.id = _ID_UNSAFE.sub("-", link.href[1:]).strip("-") or "anchor"
        link.href = f"#{owner.id}"
