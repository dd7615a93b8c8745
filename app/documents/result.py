"""What a conversion returns: plain data, no I/O.

Images are not embedded in the HTML. Each `<img>` refers to its image by a placeholder
`src="copydesk-image:<key>"` (see `image_placeholder`), where `key` is the content-addressed name of
the image (`<sha256>.<ext>`). The pipeline stores the images and then calls `resolve_images()` with the
URLs storage gave them.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field
from typing import Any

from app.documents.words import word_count

PLACEHOLDER_SCHEME = "copydesk-image:"
_PLACEHOLDER_RE = re.compile(r"copydesk-image:([0-9a-f]{64}\.[a-z0-9]{2,5})")


def image_placeholder(key: str) -> str:
    return f"{PLACEHOLDER_SCHEME}{key}"


def placeholder_keys(markup: str) -> list[str]:
    """The image keys a piece of HTML or block markup refers to, in order, without repeats."""
    seen: dict[str, None] = {}
    for match in _PLACEHOLDER_RE.finditer(markup):
        seen.setdefault(match.group(1), None)
    return list(seen)


def placeholder_key(src: str) -> str | None:
    """The image key of an `<img src>` that is an image placeholder, else None."""
    found = _PLACEHOLDER_RE.fullmatch(src)
    return found.group(1) if found else None


def resolve_images(markup: str, urls: dict[str, str]) -> str:
    """Replace every image placeholder with its stored URL (unknown keys are left as they are)."""

    def sub(match: re.Match[str]) -> str:
        return urls.get(match.group(1), match.group(0))

    return _PLACEHOLDER_RE.sub(sub, markup)


@dataclass
class ExtractedImage:
    key: str  # "<sha256>.<ext>": the same bytes always get the same key
    sha256: str
    content_type: str
    data: bytes = field(repr=False)
    width: int | None = None  # pixels, from the image itself
    height: int | None = None
    alt: str = ""
    title: str = ""
    caption: str = ""

    @property
    def size(self) -> int:
        return len(self.data)

    def describe(self) -> dict[str, Any]:
        """JSON-friendly metadata (no bytes)."""
        out = asdict(self)
        out.pop("data")
        out["size"] = self.size
        return out


@dataclass
class DocumentMetadata:
    title: str = ""
    subject: str = ""
    author: str = ""
    keywords: list[str] = field(default_factory=list)
    description: str = ""
    language: str = ""
    created: str | None = None  # ISO 8601
    modified: str | None = None


@dataclass
class ConversionReport:
    """What the converter found and what it had to drop or approximate.

    Text of the document that does not reach the article is always named in `dropped` (a table of
    contents, page numbers, hidden text, text inside an element the reader does not know…) and its
    characters are added up in `dropped_text_chars`: nothing disappears without a line here."""

    constructs: dict[str, int] = field(default_factory=dict)  # e.g. {"heading": 3, "table": 1}
    dropped: dict[str, int] = field(default_factory=dict)  # e.g. {"comment": 2}
    approximated: dict[str, int] = field(default_factory=dict)  # e.g. {"equation": 1}
    warnings: list[str] = field(default_factory=list)
    dropped_text_chars: int = 0  # characters of the document's text left out of the article
    dropped_text: dict[str, int] = field(default_factory=dict)  # the same, by what was left out
    missing_alt: list[str] = field(default_factory=list)  # keys of images that need an alt text

    def count(self, name: str, n: int = 1) -> None:
        self.constructs[name] = self.constructs.get(name, 0) + n

    def drop(self, name: str, n: int = 1) -> None:
        self.dropped[name] = self.dropped.get(name, 0) + n

    def drop_text(self, name: str, chars: int, occurrences: int = 1) -> None:
        """`chars` characters of text left out as `name`, `occurrences` more times in `dropped`."""
        if occurrences:
            self.drop(name, occurrences)
        if chars > 0:
            self.dropped_text_chars += chars
            self.dropped_text[name] = self.dropped_text.get(name, 0) + chars

    def approximate(self, name: str, n: int = 1) -> None:
        self.approximated[name] = self.approximated.get(name, 0) + n

    def warn(self, message: str) -> None:
        if message not in self.warnings:
            self.warnings.append(message)


@dataclass
class Footnote:
    """A footnote or endnote in WordPress core's format: the block markup refers to it by `id`
    (`<sup data-fn="id">`), its content travels in the post meta `footnotes` (see wordpress_meta)."""

    id: str  # a UUID, stable for the same document (derived from its HTML)
    number: int
    kind: str  # "footnote" | "endnote"
    html: str  # inline HTML (sanitized, with image placeholders)


@dataclass
class ConversionResult:
    title: str  # from core properties, else the first heading, else ""
    html: str  # sanitized semantic HTML with image placeholders
    blocks: str  # WordPress block markup with image placeholders
    text: str  # plain text (for search, LLM checks, excerpts)
    images: list[ExtractedImage]
    metadata: DocumentMetadata
    report: ConversionReport
    footnotes: list[Footnote] = field(default_factory=list)
    # Chosen among the images (see app.documents.featured): None when none qualifies.
    featured_image: ExtractedImage | None = None

    def wordpress_meta(self) -> dict[str, str]:
        """Post meta to send with the block markup (WordPress 6.3+ core footnotes)."""
        if not self.footnotes:
            return {}
        notes = [{"id": note.id, "content": note.html} for note in self.footnotes]
        return {"footnotes": json.dumps(notes, ensure_ascii=False)}

    def summary(self) -> dict[str, Any]:
        """JSON-friendly description without bytes or markup."""
        return {
            "title": self.title,
            "images": [img.describe() for img in self.images],
            "metadata": asdict(self.metadata),
            "report": asdict(self.report),
            "words": word_count(self.text),
            "footnotes": len(self.footnotes),
            "featured_image": featured_summary(self.featured_image),
        }


def featured_summary(image: ExtractedImage | None) -> dict[str, Any] | None:
    """`{"name", "width", "height"}` of a featured image (its name is its key), or None."""
    if image is None:
        return None
    return {"name": image.key, "width": image.width, "height": image.height}
