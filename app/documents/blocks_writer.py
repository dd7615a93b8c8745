"""Document model -> WordPress block markup (the serialized form Gutenberg saves, WordPress 6.6+): the
one block writer, for a Word document and for HTML read into the model (app/documents/html_input.py:
a mail body, an article's HTML after the edit).

Each block reproduces what the core block's save() writes, so the editor opens the post without
"unexpected content" warnings: paragraph, heading, list/list-item, table, image, quote, code and
footnotes. What a core block cannot hold (a table in a table cell, an equation) goes into a Custom
HTML block. Footnotes use core's format: `<sup data-fn>` in the text, their content in the post meta
`footnotes` (see ConversionResult.footnotes).
"""

from __future__ import annotations

import json
from html import escape

from app.documents.html_writer import BlockDispatch, HtmlWriter, table_rows
from app.documents.inline import InlineRenderer, image_tag, plain_text
from app.documents.model import Figure, Group, Image, ListBlock, Math, Note, NoteRef, Paragraph, Table
from app.documents.text_writer import block_text

_WP_LIST_TYPES = {
    "lowerLetter": "lower-alpha",
    "upperLetter": "upper-alpha",
    "lowerRoman": "lower-roman",
    "upperRoman": "upper-roman",
}


def _block(name: str, html: str, attrs: dict | None = None) -> str:
    attr_json = f" {json.dumps(attrs, ensure_ascii=False, separators=(',', ':'))}" if attrs else ""
    return f"<!-- wp:{name}{attr_json} -->\n{html}\n<!-- /wp:{name} -->"


class BlocksWriter(BlockDispatch):
    def __init__(self, is_dropped, note_ids: dict[int, str], html_writer: HtmlWriter):
        self.is_dropped = is_dropped
        self.note_ids = note_ids  # note number -> the footnote's UUID
        self.inline = InlineRenderer(self._note_ref, is_dropped)
        self.html = html_writer  # for what goes into Custom HTML blocks

    def _note_ref(self, ref: NoteRef) -> str:
        fid = self.note_ids[ref.note.number]
        return f'<sup data-fn="{fid}" class="fn"><a href="#{fid}" id="{fid}-link">{ref.note.number}</a></sup>'

    def document(self, blocks: list, notes: list[Note]) -> str:
        out = [html for block in blocks if (html := self.block(block))]
        if notes:
            out.append("<!-- wp:footnotes /-->")
        return "\n\n".join(out)

    def paragraph(self, p: Paragraph) -> str:
        content, id_attr = self.content(p)
        if not content:
            return ""
        if p.kind == "h":
            level = p.level
            attrs = {"level": level} if level != 2 else None
            return _block(
                "heading", f'<h{level} class="wp-block-heading"{id_attr}>{content}</h{level}>', attrs
            )
        if any(type(n) is Math for n in p.children):  # no core block keeps MathML through the editor
            return _block("html", f"<p{id_attr}>{content}</p>")
        return _block("paragraph", f"<p{id_attr}>{content}</p>")

    def list(self, block: ListBlock) -> str:
        attrs: dict = {}
        style = ""
        if block.ordered:
            attrs["ordered"] = True
            if block.start != 1:
                attrs["start"] = block.start
            if block.fmt in _WP_LIST_TYPES:
                attrs["type"] = _WP_LIST_TYPES[block.fmt]
                style = f' style="list-style-type:{attrs["type"]}"'
        tag = "ol" if block.ordered else "ul"
        start = f' start="{block.start}"' if block.ordered and block.start != 1 else ""
        items = "".join(self.item(item) for item in block.items)
        return _block("list", f'<{tag}{start}{style} class="wp-block-list">{items}</{tag}>', attrs or None)

    def item(self, blocks: list) -> str:
        # A list item holds rich text plus nested lists: other blocks are flattened into lines.
        lines, nested = [], []
        for block in blocks:
            if isinstance(block, ListBlock):
                nested.append(self.list(block))
            elif isinstance(block, Paragraph):
                lines.append(self.inline.render(block.children))
            else:
                lines.append(escape(block_text(block), quote=False))
        text = "<br>".join(line for line in lines if line)
        return _block("list-item", f"<li>{text}{''.join(nested)}</li>")

    def table(self, table: Table, caption: Paragraph | None = None) -> str:
        if not _simple_table(table):
            html = self.html.table(table)
            if caption is not None:
                html = (
                    f"<figure>{html}<figcaption>{self.inline.render(caption.children)}</figcaption></figure>"
                )
            return _block("html", html)
        figcaption = ""
        if caption is not None and (text := self.inline.render(caption.children)):
            figcaption = f'<figcaption class="wp-element-caption">{text}</figcaption>'
        rows = table_rows(table, self._cell)
        html = f'<figure class="wp-block-table"><table>{rows}</table>{figcaption}</figure>'
        return _block("table", html, {"hasFixedLayout": False})

    def _cell(self, blocks: list) -> str:
        return "<br>".join(
            line for b in blocks if isinstance(b, Paragraph) and (line := self.inline.render(b.children))
        )

    def figure(self, figure: Figure) -> str:
        if isinstance(figure.content, Table):
            return self.table(figure.content, figure.caption)
        image: Image = figure.content
        if self.is_dropped(image.ref):
            return self.paragraph(figure.caption) if figure.caption else ""
        caption = ""
        if figure.caption is not None and (text := self.inline.render(figure.caption.children)):
            caption = f'<figcaption class="wp-element-caption">{text}</figcaption>'
        return _block(
            "image", f'<figure class="wp-block-image">{image_tag(image, sized=False)}{caption}</figure>'
        )

    def group(self, group: Group) -> str:
        if group.kind == "code":
            lines = "\n".join(escape(plain_text(p.children), quote=False) for p in group.paragraphs)
            return _block("code", f'<pre class="wp-block-code"><code>{lines}</code></pre>')
        inner = "\n\n".join(html for p in group.paragraphs if (html := self.paragraph(p)))
        return _block("quote", f'<blockquote class="wp-block-quote">{inner}</blockquote>') if inner else ""


def _simple_table(table: Table) -> bool:
    """True when every cell holds only paragraphs (what the core table block can store)."""
    return all(
        isinstance(b, Paragraph) and not any(type(n) is Math for n in b.children)
        for row in table.rows
        for cell in row.cells
        for b in cell.blocks
    )


def footnote_html(writer: BlocksWriter, note: Note) -> str:
    """A note's content as the inline HTML WordPress keeps in the `footnotes` meta."""
    lines = []
    for block in note.blocks:
        if isinstance(block, Paragraph):
            lines.append(writer.inline.render(block.children))
        else:
            lines.append(escape(block_text(block), quote=False))
    return "<br>".join(line for line in lines if line)
