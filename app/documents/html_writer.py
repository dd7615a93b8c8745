"""Document model -> semantic HTML (sanitized afterwards by sanitize.clean_html)."""

from __future__ import annotations

from collections.abc import Callable
from html import escape

from app.documents.inline import InlineRenderer, image_tag, plain_text
from app.documents.model import Cell, Figure, Group, Image, ListBlock, Note, NoteRef, Paragraph, Table
from app.documents.numbering import OL_TYPES


class BlockDispatch:
    """Writes each kind of block with the writer's method of that name (shared by the writers)."""

    _METHODS = {Paragraph: "paragraph", ListBlock: "list", Table: "table", Figure: "figure", Group: "group"}

    inline: InlineRenderer

    def block(self, block) -> str:
        method = self._METHODS.get(type(block))
        return getattr(self, method)(block) if method else ""

    def content(self, p: Paragraph) -> tuple[str, str]:
        """A paragraph's inline HTML and its id attribute (` id="…"`, or "")."""
        return self.inline.render(p.children), f' id="{escape(p.id)}"' if p.id else ""


class HtmlWriter(BlockDispatch):
    def __init__(self, is_dropped):
        self._referenced: set[int] = set()
        self.inline = InlineRenderer(self._note_ref, is_dropped)
        self.is_dropped = is_dropped

    def _note_ref(self, ref: NoteRef) -> str:
        number = ref.note.number
        first = number not in self._referenced
        self._referenced.add(number)
        back = f' id="fnref-{number}"' if first else ""
        return f'<sup><a href="#fn-{number}"{back}>{number}</a></sup>'

    def document(self, blocks: list, notes: list[Note]) -> str:
        parts = [self.blocks(blocks)]
        if notes:
            parts.append(self.notes(notes))
        return "\n".join(p for p in parts if p)

    def blocks(self, blocks: list) -> str:
        return "\n".join(html for block in blocks if (html := self.block(block)))

    def paragraph(self, p: Paragraph) -> str:
        content, id_attr = self.content(p)
        if not content:
            return ""
        if p.kind == "h":
            return f"<h{p.level}{id_attr}>{content}</h{p.level}>"
        return f"<p{id_attr}>{content}</p>"

    def list(self, block: ListBlock) -> str:
        if block.ordered:
            attrs = f' start="{block.start}"' if block.start != 1 else ""
            if block.fmt in OL_TYPES:
                attrs += f' type="{OL_TYPES[block.fmt]}"'
            tag = "ol"
        else:
            tag, attrs = "ul", ""
        items = "".join(f"<li>{self.item(item)}</li>" for item in block.items)
        return f"<{tag}{attrs}>{items}</{tag}>"

    def item(self, blocks: list) -> str:
        paragraphs = sum(1 for b in blocks if isinstance(b, Paragraph))
        out = []
        for block in blocks:
            if isinstance(block, Paragraph) and paragraphs == 1:
                out.append(self.inline.render(block.children))
            else:
                out.append(self.block(block))
        return "".join(out)

    def cell(self, blocks: list) -> str:
        if len(blocks) == 1 and isinstance(blocks[0], Paragraph) and blocks[0].kind == "p":
            return self.inline.render(blocks[0].children)
        return self.blocks(blocks)

    def table(self, table: Table) -> str:
        return f"<table>{table_rows(table, self.cell)}</table>"

    def figure(self, figure: Figure) -> str:
        if isinstance(figure.content, Image):
            if self.is_dropped(figure.content.ref):
                return self.paragraph(figure.caption) if figure.caption else ""
            content = image_tag(figure.content)
        else:
            content = self.table(figure.content)
        caption = self.inline.render(figure.caption.children) if figure.caption else ""
        if not caption:
            return f"<figure>{content}</figure>"
        caption = f"<figcaption>{caption}</figcaption>"
        return (
            f"<figure>{caption}{content}</figure>"
            if figure.caption_first
            else f"<figure>{content}{caption}</figure>"
        )

    def group(self, group: Group) -> str:
        if group.kind == "code":
            lines = "\n".join(escape(plain_text(p.children), quote=False) for p in group.paragraphs)
            return f"<pre><code>{lines}</code></pre>"
        inner = "".join(self.paragraph(p) for p in group.paragraphs)
        return f"<blockquote>{inner}</blockquote>" if inner else ""

    def notes(self, notes: list[Note]) -> str:
        items = []
        for note in notes:
            body = self.blocks(note.blocks)
            back = f'<a href="#fnref-{note.number}">↩</a>'
            if body.endswith("</p>"):
                body = f"{body[:-4]} {back}</p>"
            else:
                body = f"{body}<p>{back}</p>"
            items.append(f'<li id="{note.anchor}">{body}</li>')
        return f'<section class="footnotes"><ol>{"".join(items)}</ol></section>'


def table_rows(table: Table, cell_html: Callable[[list], str]) -> str:
    """A table's header rows (thead, th cells) and body rows (tbody, td cells), each cell's blocks
    written by `cell_html`."""
    head, body = [], []
    for row in table.rows:
        tag = "th" if row.header else "td"
        cells = "".join(f"<{tag}{_spans(cell)}>{cell_html(cell.blocks)}</{tag}>" for cell in row.cells)
        (head if row.header else body).append(f"<tr>{cells}</tr>")
    thead = f"<thead>{''.join(head)}</thead>" if head else ""
    tbody = f"<tbody>{''.join(body)}</tbody>" if body else ""
    return thead + tbody


def _spans(cell: Cell) -> str:
    out = ""
    if cell.colspan > 1:
        out += f' colspan="{cell.colspan}"'
    if cell.rowspan > 1:
        out += f' rowspan="{cell.rowspan}"'
    return out
