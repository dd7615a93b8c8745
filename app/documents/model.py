"""The document model between the reader and the writers: semantic blocks and inlines, no Word left.

Inline content is a list of `Text`, `Break`, `Link`, `Image`, `NoteRef` and `Math`. Block content is a
list of `Paragraph`, `ListBlock`, `Table`, `Figure` and `Preformatted`/`Quote` groups.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from app.documents.numbering import ListItemInfo
from app.documents.result import ExtractedImage


@dataclass(slots=True)
class Text:
    text: str
    marks: int = 0  # bit set from runprops


@dataclass(slots=True)
class Break:
    pass


@dataclass(slots=True)
class Link:
    href: str  # an absolute URL with a safe scheme, or "#bookmark" until resolved
    children: list = field(default_factory=list)


@dataclass(slots=True)
class Image:
    ref: ExtractedImage
    alt: str = ""
    title: str = ""
    width: int | None = None  # display size in CSS pixels, from the drawing's extent
    height: int | None = None


@dataclass(slots=True)
class NoteRef:
    note: Note


@dataclass(slots=True)
class Math:
    mathml: str
    text: str
    display: bool = False


Inline = Text | Break | Link | Image | NoteRef | Math


@dataclass(slots=True)
class Paragraph:
    children: list
    kind: str = "p"  # "p", "h" (heading), "title", "subtitle", "caption", "code", "quote"
    level: int = 0  # heading level 1..6
    list: ListItemInfo | None = None
    list_paragraph: bool = False  # "List Paragraph" style without numbering: may continue an item
    bookmarks: list[str] | None = None
    id: str | None = None
    seq: str | None = None  # label of a SEQ field ("Figure", "Table"): a caption


@dataclass(slots=True)
class ListBlock:
    ordered: bool
    fmt: str
    start: int
    items: list[list] = field(default_factory=list)  # each item: a list of blocks


@dataclass(slots=True)
class Cell:
    blocks: list
    colspan: int = 1
    rowspan: int = 1


@dataclass(slots=True)
class Row:
    cells: list[Cell]
    header: bool = False


@dataclass(slots=True)
class Table:
    rows: list[Row]


@dataclass(slots=True)
class Figure:
    content: Image | Table
    caption: Paragraph | None = None
    caption_first: bool = False


@dataclass(slots=True)
class Group:
    """Consecutive paragraphs of one role kept together: "code" (pre) or "quote" (blockquote)."""

    kind: str
    paragraphs: list[Paragraph]


Block = Paragraph | ListBlock | Table | Figure | Group


@dataclass(slots=True)
class Note:
    kind: str  # "footnote" | "endnote"
    number: int
    blocks: list = field(default_factory=list)

    @property
    def anchor(self) -> str:
        return f"fn-{self.number}"
