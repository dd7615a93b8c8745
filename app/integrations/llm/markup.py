"""HTML helpers shared by the editors: cleaning, placeholders (images, links, parts the model must not
edit), structure, blocks.

The article HTML is a flat sequence of block elements (p, h1-h6, ul/ol, table, blockquote, figure …)
as the converter writes it, parsed as a fragment (app.documents.html_input.parse_html).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from bs4 import NavigableString, Tag

from app.documents.html_input import parse_html, serialize
from app.documents.sanitize import clean_html as clean_html_allowlist

HEADINGS = ["h1", "h2", "h3", "h4", "h5", "h6"]
# Elements whose text is one "block" for the diff and the names check (innermost wins).
TEXT_BLOCKS = [*HEADINGS, "p", "li", "tr", "caption", "figcaption", "pre", "dt", "dd", "blockquote"]

IMAGE_TOKEN = "image:"  # <img src="image:3">: what the model sees instead of the stored image key
LINK_TOKEN = "link:"  # <a href="link:2">: what the model sees instead of the URL
KEEP_TOKEN = "keep:"  # <img src="keep:1">: what the model sees instead of a part it must not edit
# Parts the model never edits: code, formulas, the footnotes section (its back-links and ids).
KEPT_ELEMENTS = ["pre", "math", "section"]


def sanitize(html: str) -> str:
    """The model's HTML is untrusted: it leaves through the same allow-list as the converter's."""
    return clean_html_allowlist(html)


_LINE_BREAKING = [*TEXT_BLOCKS, "div", "section", "table", "ul", "ol", "dl", "figure", "td", "th", "br", "hr"]


def text_of(html: str) -> str:
    """Plain text, one line per block (and per table cell)."""
    soup = parse_html(html)
    for tag in soup.find_all(_LINE_BREAKING):
        tag.insert_before("\n")
        tag.insert_after("\n")
    lines = (" ".join(line.split()) for line in soup.get_text().splitlines())
    return "\n".join(line for line in lines if line)


def _inline_text(tag: Tag) -> str:
    return " ".join(tag.get_text(" ").split())


def block_texts(html: str, *, with_tags: bool = True) -> list[str]:
    """The text of each innermost block, in order; images and link targets written inline, so a
    diff of these lines shows when one of them moves or disappears.  `h2: Heading`, `p: Text …`,
    `figure: [image src] Caption`."""
    soup = parse_html(html)
    for img in soup.find_all("img"):
        img.replace_with(f" [image {img.get('src', '')}] " if with_tags else " ")
    if with_tags:
        for link in soup.find_all("a", href=True):
            link.append(f" <{link['href']}>")
    lines = []
    for tag in soup.find_all([*TEXT_BLOCKS, "figure"]):
        figure = tag if tag.name == "figure" else tag.find_parent("figure")
        if figure is not None and figure.find("table") is None:
            # An image's figure is one line, the image with its caption (a figure without a caption
            # holds no other block, and its image would go unseen).
            if tag is not figure:
                continue
        elif tag.name == "figure" or tag.find([*TEXT_BLOCKS, "figure"]):
            continue  # a container (a blockquote of paragraphs, a table's figure): its children count
        if tag.name == "tr":
            text = " | ".join(_inline_text(cell) for cell in tag.find_all(["td", "th"]))
        else:
            text = _inline_text(tag)
        if text.strip(" |"):
            lines.append(f"{tag.name}: {text}" if with_tags else text)
    return lines


def clean_html(html: str, *, drop_leading_heading: str = "") -> str:
    """Light cleaning that changes no words: no empty paragraphs or empty inline tags, whitespace
    collapsed, and the leading heading dropped when it repeats the post title (WordPress shows the
    title itself)."""
    soup = parse_html(html)
    for tag in soup.find_all(["strong", "em", "b", "i", "u", "span"]):
        if not tag.get_text(strip=True) and not tag.find("img"):
            tag.unwrap()
    for tag in soup.find_all(["p", *HEADINGS, "li"]):
        if not tag.get_text(strip=True) and not tag.find(["img", "br"]):
            tag.decompose()
    for text in soup.find_all(string=True):
        if text.find_parent("pre") is None and isinstance(text, NavigableString):
            collapsed = re.sub(r"[ \t\r\n]+", " ", str(text))  # no-break spaces are meant
            if collapsed != text:
                text.replace_with(collapsed)
    if drop_leading_heading:
        first = next((c for c in soup.contents if isinstance(c, Tag)), None)
        if (
            first is not None
            and first.name in HEADINGS
            and _inline_text(first).casefold() == " ".join(drop_leading_heading.split()).casefold()
        ):
            first.decompose()
    return serialize(soup).strip()


def first_heading(html: str) -> str:
    tag = parse_html(html).find(HEADINGS)
    return _inline_text(tag) if tag else ""


def headings_of(html: str) -> list[str]:
    return [_inline_text(tag) for tag in parse_html(html).find_all(HEADINGS)]


# --- placeholders ---------------------------------------------------------------------------


@dataclass
class Protected:
    """An article with its images, link targets and untouchable parts replaced by short tokens
    (`image:1`, `link:1`, `keep:1`).

    Tokens are short and meaningless to the model, so it cannot mangle a 64-character hash, "correct"
    a URL or polish a code listing; `restore` puts the originals back."""

    html: str
    images: dict[str, dict] = field(default_factory=dict)  # token -> the original <img> attributes
    links: dict[str, dict] = field(default_factory=dict)  # token -> the original <a> attributes
    kept: dict[str, str] = field(default_factory=dict)  # token -> the original element's HTML


def protect(html: str) -> Protected:
    soup = parse_html(html)
    out = Protected(html="")
    n = 0
    while (element := soup.find(KEPT_ELEMENTS)) is not None:  # outermost first
        n += 1
        token = f"{KEEP_TOKEN}{n}"
        out.kept[token] = serialize(element)
        element.replace_with(soup.new_tag("img", src=token))
    images = [img for img in soup.find_all("img") if not img.get("src", "").startswith(KEEP_TOKEN)]
    for n, img in enumerate(images, 1):
        token = f"{IMAGE_TOKEN}{n}"
        out.images[token] = dict(img.attrs)
        img.attrs = {"src": token}
    for n, link in enumerate(soup.find_all("a", href=True), 1):
        token = f"{LINK_TOKEN}{n}"
        out.links[token] = dict(link.attrs)
        link.attrs = {"href": token}
    out.html = serialize(soup)
    return out


def restore(html: str, protected: Protected) -> str:
    """Put the originals back; an unknown token is dropped (the model may not add images or links)."""
    soup = parse_html(html)
    for link in soup.find_all("a"):
        original = protected.links.get(link.get("href", ""))
        if original is None:
            link.unwrap()
        else:
            link.attrs = dict(original)
    for img in soup.find_all("img"):  # last: kept parts come back verbatim, links and all
        src = img.get("src", "")
        if src in protected.kept:
            img.replace_with(parse_html(protected.kept[src]))
        elif src in protected.images:
            img.attrs = dict(protected.images[src])
        else:
            img.decompose()
    return serialize(soup)


# --- structure ------------------------------------------------------------------------------


@dataclass
class Structure:
    headings: list[str]  # tag names in order: ["h2", "h3", "h2"]
    tables: list[tuple[int, int]]  # (rows, widest row) per table
    images: list[str]  # image srcs (tokens) in order, kept parts' tokens included
    links: list[str]  # link hrefs (tokens) in order
    ids: list[str]  # id attributes (bookmarks, link targets)


def structure_of(html: str) -> Structure:
    soup = parse_html(html)
    tables = []
    for table in soup.find_all("table"):
        rows = table.find_all("tr")
        tables.append((len(rows), max((len(r.find_all(["td", "th"])) for r in rows), default=0)))
    return Structure(
        headings=[tag.name for tag in soup.find_all(HEADINGS)],
        tables=tables,
        images=[img.get("src", "") for img in soup.find_all("img")],
        links=[a.get("href", "") for a in soup.find_all("a", href=True)],
        ids=[tag["id"] for tag in soup.find_all(id=True)],
    )


def top_level_blocks(html: str) -> list[str]:
    """The fragment's top-level pieces as HTML strings (stray top-level text becomes a piece too)."""
    soup = parse_html(html)
    blocks = []
    for node in soup.contents:
        if isinstance(node, Tag):
            blocks.append(serialize(node))
        elif str(node).strip():
            blocks.append(str(node).strip())
    return blocks


def is_heading(block_html: str) -> bool:
    return re.match(r"\s*<h[1-6][\s>]", block_html) is not None


# --- block markup (WordPress) ---------------------------------------------------------------------

_LEADING_HEADING_BLOCK = re.compile(
    r"\A\s*<!--\s+wp:heading(?:\s+\{[^}]*\})?\s+-->\s*(<h[1-6]\b.*?</h[1-6]>)\s*<!--\s+/wp:heading\s+-->\s*",
    re.S,
)


def drop_leading_heading_block(blocks: str, titles: list[str]) -> str:
    """Block markup without its first block when that is a heading repeating one of `titles` (the
    post's title is shown by WordPress above the content)."""
    found = _LEADING_HEADING_BLOCK.match(blocks)
    if found is None:
        return blocks
    text = " ".join(parse_html(found.group(1)).get_text(" ").split()).casefold()
    wanted = {" ".join(t.split()).casefold() for t in titles if t and t.strip()}
    return blocks[found.end() :] if text in wanted else blocks
