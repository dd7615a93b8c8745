"""Pure text work on a post body: the idempotency marker, image URLs rewritten to the media library, and
an image taken out (the featured one, which themes show above the post).

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
    post: int = 0  # the post it is attached to (WordPress's `post` field; 0: none)


_IMAGE_BLOCK = re.compile(
    r"<!--\s+wp:image(?:\s+(?P<attrs>\{.*?\}))?\s+-->(?P<inner>.*?)<!--\s+/wp:image\s+-->",
    re.DOTALL,
)
_IMG = re.compile(r"<img\b[^>]*>", re.IGNORECASE)
_SRC = re.compile(r"""\bsrc\s*=\s*(["'])(.*?)\1""", re.IGNORECASE | re.DOTALL)
_CLASS = re.compile(r"""\bclass\s*=\s*(["'])(.*?)\1""", re.IGNORECASE | re.DOTALL)
_FIGURE = re.compile(r"<figure\b[^>]*>.*?</figure>", re.IGNORECASE | re.DOTALL)
_IMAGE_PARAGRAPH = re.compile(r"<p\b[^>]*>\s*(<img\b[^>]*>)\s*</p>", re.IGNORECASE)


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


def _shows(fragment: str, url: str) -> bool:
    """Whether an <img> of `fragment` has `url` as its src."""
    for img in _IMG.finditer(fragment):
        src = _SRC.search(img.group(0))
        if src and html.unescape(src.group(2)) == url:
            return True
    return False


def remove_image(body: str, url: str) -> str:
    """The body without the image whose src is `url`: its wp:image block (block markup), else its
    <figure> (caption included), else its paragraph when it holds only the image, else the <img>."""
    url = html.unescape(url)
    if not _shows(body, url):
        return body

    def unless_shown(match: re.Match) -> str:
        return "" if _shows(match.group(0), url) else match.group(0)

    body = _IMAGE_BLOCK.sub(unless_shown, body)
    body = _FIGURE.sub(lambda m: m.group(0) if "<table" in m.group(0) else unless_shown(m), body)
    body = _IMG.sub(unless_shown, _IMAGE_PARAGRAPH.sub(unless_shown, body))
    return re.sub(r"\n{3,}", "\n\n", body).strip("\n")
