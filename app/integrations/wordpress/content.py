"""Pure text work on a post body: the idempotency marker, and image URLs rewritten to the media library.

The marker is an HTML comment at the end of the body, `<!-- copydesk:post:KEY -->`. Readers never see
it (browsers and WordPress's block renderer leave comments alone); WordPress's own search (`?search=`,
which looks in title, excerpt and content) finds it, so a post created by an attempt whose answer was
lost can be found again with nothing but core REST features.
"""

from __future__ import annotations

import hashlib
import html
import json
import re
from dataclasses import dataclass

_SAFE_KEY = re.compile(r"[A-Za-z0-9_.-]{1,64}")


def marker_token(key: str) -> str:
    """The searchable token for an idempotency key: `copydesk:post:<key>` (hashed when the key has
    characters WordPress's search would split on, or is long)."""
    if not _SAFE_KEY.fullmatch(key):
        key = hashlib.sha256(key.encode()).hexdigest()[:32]
    return f"copydesk:post:{key}"


def with_marker(body: str, token: str) -> str:
    return f"{body.rstrip()}\n\n<!-- {token} -->\n"


def has_marker(body: str, token: str) -> bool:
    return f"<!-- {token} -->" in body


def media_slug(image_key: str) -> str:
    """The attachment slug that names an imported image by its content: `copydesk-<32 hex>`. Slugs of
    attachments are unique per site and looked up exactly (`/media?slug=`), never shown to readers."""
    stem = image_key.rsplit("/", 1)[-1].split(".", 1)[0].lower()
    if not re.fullmatch(r"[0-9a-f]{32,}", stem):
        stem = hashlib.sha256(image_key.encode()).hexdigest()
    return f"copydesk-{stem[:32]}"


@dataclass(frozen=True)
class MediaRef:
    id: int
    url: str  # the media library's source_url


_IMAGE_BLOCK = re.compile(
    r"<!--\s+wp:image(?:\s+(?P<attrs>\{.*?\}))?\s+-->(?P<inner>.*?)<!--\s+/wp:image\s+-->",
    re.DOTALL,
)
_IMG = re.compile(r"<img\b[^>]*>", re.IGNORECASE)
_SRC = re.compile(r"""\bsrc\s*=\s*(["'])(.*?)\1""", re.IGNORECASE | re.DOTALL)
_CLASS = re.compile(r"""\bclass\s*=\s*(["'])(.*?)\1""", re.IGNORECASE | re.DOTALL)


def _lookup(media: dict[str, MediaRef], url: str) -> MediaRef | None:
    return media.get(url) or media.get(html.unescape(url))


def _serialize_block_attrs(attrs: dict) -> str:
    # As WordPress's serialize_block_attributes(): no escaped slashes or unicode, and the characters
    # that could end or confuse an HTML comment escaped.
    text = json.dumps(attrs, ensure_ascii=False, separators=(",", ":"))
    for raw, escaped in (
        ("--", "\\u002d\\u002d"),
        ("<", "\\u003c"),
        (">", "\\u003e"),
        ("&", "\\u0026"),
        ('\\"', "\\u0022"),
    ):
        text = text.replace(raw, escaped)
    return text


def _rewrite_img(tag: str, media: dict[str, MediaRef]) -> str:
    src = _SRC.search(tag)
    ref = _lookup(media, src.group(2)) if src else None
    if ref is None:
        return tag
    quote = src.group(1)
    tag = tag[: src.start()] + f"src={quote}{html.escape(ref.url, quote=True)}{quote}" + tag[src.end() :]
    wanted = f"wp-image-{ref.id}"
    klass = _CLASS.search(tag)
    if klass is None:
        end = len(tag) - (2 if tag.endswith("/>") else 1)  # after the last attribute, as WordPress writes it
        return tag[:end].rstrip() + f' class="{wanted}"' + tag[end:]
    names = [n for n in klass.group(2).split() if not n.startswith("wp-image-")] + [wanted]
    q = klass.group(1)
    return tag[: klass.start()] + f"class={q}{' '.join(names)}{q}" + tag[klass.end() :]


def rewrite_images(body: str, media: dict[str, MediaRef]) -> str:
    """Point the body's images at the media library. `media` maps a storage URL to its imported media.

    Every <img> whose src is a known storage URL gets the library's URL and the `wp-image-<id>` class
    WordPress uses; a block `<!-- wp:image {...} -->` around it gets `"id": <id>`, as the block editor
    writes it; a link to the full-size image (href) follows the image."""
    if not media:
        return body

    def block(match: re.Match) -> str:
        inner = match.group("inner")
        img = _IMG.search(inner)
        src = _SRC.search(img.group(0)) if img else None
        ref = _lookup(media, src.group(2)) if src else None
        if ref is None:
            return match.group(0)
        attrs = json.loads(match.group("attrs")) if match.group("attrs") else {}
        attrs = {"id": ref.id, **{k: v for k, v in attrs.items() if k != "id"}}
        return f"<!-- wp:image {_serialize_block_attrs(attrs)} -->{inner}<!-- /wp:image -->"

    body = _IMAGE_BLOCK.sub(block, body)
    body = _IMG.sub(lambda m: _rewrite_img(m.group(0), media), body)
    for url, ref in media.items():
        for form in {url, html.escape(url, quote=True)}:
            for quote in ('"', "'"):
                body = body.replace(
                    f"href={quote}{form}{quote}", f"href={quote}{html.escape(ref.url, quote=True)}{quote}"
                )
    return body


# --- classic HTML to block markup ----------------------------------------------------------------

_HEADINGS = {f"h{n}": n for n in range(1, 7)}
_OL_TYPES = {"a": "lower-alpha", "A": "upper-alpha", "i": "lower-roman", "I": "upper-roman"}
_CELL_BLOCKS = ["p", "div", "ul", "ol", "table", "figure", "blockquote", "pre", *_HEADINGS]


def _block(name: str, inner: str, attrs: dict | None = None) -> str:
    attr_json = f" {_serialize_block_attrs(attrs)}" if attrs else ""
    return f"<!-- wp:{name}{attr_json} -->\n{inner}\n<!-- /wp:{name} -->"


def html_to_blocks(body: str) -> str:
    """Classic HTML (the edited article) as block markup, in the form the core blocks save (as
    app/documents/blocks_writer.py writes them from a manuscript): p, h1–h6, ul/ol, figure/img, table,
    blockquote, pre and hr become paragraph, heading, list, image, table, quote, code and separator
    blocks; anything else goes into a Custom HTML block, so nothing is lost and readers see the same
    page. Used when the article was edited as HTML but the site wants blocks."""
    from bs4 import BeautifulSoup, NavigableString, Tag
    from bs4.dammit import EntitySubstitution
    from bs4.formatter import HTMLFormatter

    formatter = HTMLFormatter(
        entity_substitution=EntitySubstitution.substitute_xml, void_element_close_prefix=None
    )

    def inner(tag: Tag) -> str:
        return tag.decode_contents(formatter=formatter).strip()

    def outer(tag: Tag) -> str:
        return tag.decode(formatter=formatter)

    def image(img: Tag, caption: Tag | None) -> str:
        attrs = {k: v for k, v in img.attrs.items() if k in ("src", "alt", "title", "class")}
        attrs.setdefault("alt", "")
        values = {k: " ".join(v) if isinstance(v, list) else v for k, v in attrs.items()}
        tag = "<img " + " ".join(f'{k}="{html.escape(v)}"' for k, v in values.items()) + ">"
        text = inner(caption) if caption is not None else ""
        figcaption = f'<figcaption class="wp-element-caption">{text}</figcaption>' if text else ""
        return _block("image", f'<figure class="wp-block-image">{tag}{figcaption}</figure>')

    def table(tab: Tag, caption: Tag | None) -> str:
        if any(cell.find(_CELL_BLOCKS) for cell in tab.find_all(["td", "th"])):
            return _block("html", outer(caption.parent) if caption is not None else outer(tab))
        text = inner(caption) if caption is not None else ""
        figcaption = f'<figcaption class="wp-element-caption">{text}</figcaption>' if text else ""
        return _block(
            "table",
            f'<figure class="wp-block-table">{outer(tab)}{figcaption}</figure>',
            {"hasFixedLayout": False},
        )

    def list_block(tag: Tag) -> str:
        attrs: dict = {}
        style = start = ""
        if tag.name == "ol":
            attrs["ordered"] = True
            if tag.get("start") and str(tag["start"]).lstrip("-").isdigit() and int(tag["start"]) != 1:
                attrs["start"] = int(tag["start"])
                start = f' start="{attrs["start"]}"'
            if tag.get("type") in _OL_TYPES:
                attrs["type"] = _OL_TYPES[tag["type"]]
                style = f' style="list-style-type:{attrs["type"]}"'
        items = []
        for li in tag.find_all("li", recursive=False):
            nested = [child.extract() for child in li.find_all(["ul", "ol"], recursive=False)]
            items.append(_block("list-item", f"<li>{inner(li)}{''.join(list_block(n) for n in nested)}</li>"))
        markup = f'<{tag.name}{start}{style} class="wp-block-list">{"".join(items)}</{tag.name}>'
        return _block("list", markup, attrs or None)

    def convert(node) -> str:
        if isinstance(node, NavigableString):
            text = str(node).strip()
            if not text or node.__class__.__name__ in ("Comment", "Doctype", "Declaration"):
                return ""
            return _block("paragraph", f"<p>{html.escape(text, quote=False)}</p>")
        if not isinstance(node, Tag):
            return ""
        name = node.name
        plain = not (set(node.attrs) - {"id"})
        ident = f' id="{html.escape(node["id"])}"' if node.get("id") else ""
        if name == "p" and plain:
            return _block("paragraph", f"<p{ident}>{inner(node)}</p>") if inner(node) else ""
        if name in _HEADINGS and plain:
            level = _HEADINGS[name]
            markup = f'<{name} class="wp-block-heading"{ident}>{inner(node)}</{name}>'
            return _block("heading", markup, {"level": level} if level != 2 else None)
        if name in ("ul", "ol") and all(c.name == "li" for c in node.find_all(True, recursive=False)):
            return list_block(node)
        if name == "img":
            return image(node, None)
        if name == "figure":
            children = node.find_all(True, recursive=False)
            caption = node.find("figcaption", recursive=False)
            content = [c for c in children if c.name != "figcaption"]
            if len(content) == 1 and content[0].name == "img":
                return image(content[0], caption)
            if len(content) == 1 and content[0].name == "table":
                return table(content[0], caption)
        if name == "table":
            return table(node, None)
        if name == "blockquote" and all(c.name == "p" for c in node.find_all(True, recursive=False)):
            paragraphs = "\n\n".join(convert(p) for p in node.find_all("p", recursive=False))
            return _block("quote", f'<blockquote class="wp-block-quote">{paragraphs}</blockquote>')
        if name == "pre":
            code = node.find("code")
            text = inner(code) if code is not None else inner(node)
            return _block("code", f'<pre class="wp-block-code"><code>{text}</code></pre>')
        if name == "hr":
            return _block("separator", '<hr class="wp-block-separator has-alpha-channel-opacity"/>')
        return _block("html", outer(node))

    soup = BeautifulSoup(body, "html.parser")
    return "\n\n".join(out for node in list(soup.contents) if (out := convert(node)))
