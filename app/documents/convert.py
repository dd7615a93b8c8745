"""The document engine's entry point: .docx bytes -> ConversionResult.

reader (WordprocessingML -> model) -> structure (lists, figures, title) -> writers (HTML, blocks,
text) -> nh3. Only `app.core.errors` types leave this function. `write` is how the model becomes
HTML, block markup and footnotes for every input (HTML too: app/documents/html_input.py).
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from docx.opc.packuri import PackURI
from docx.opc.parts.coreprops import CorePropertiesPart
from lxml import etree

from app.core.errors import CopydeskError, DependencyMissing, InvalidDocument, LimitExceeded
from app.documents import ns as N
from app.documents.blocks_writer import BlocksWriter, footnote_html
from app.documents.featured import choose_featured_image
from app.documents.html_writer import HtmlWriter
from app.documents.images import ImageStore
from app.documents.inline import plain_text
from app.documents.model import Note
from app.documents.numbering import Numbering
from app.documents.package import Limits, Package, detect_kind, parse_xml
from app.documents.reader import Reader
from app.documents.result import (
    ConversionReport,
    ConversionResult,
    DocumentMetadata,
    Footnote,
    placeholder_keys,
)
from app.documents.sanitize import clean_blocks, clean_html
from app.documents.structure import arrange, first_heading, resolve_bookmarks, take_title
from app.documents.styles import Styles
from app.documents.text_writer import text_of

if TYPE_CHECKING:
    from app.documents.legacy import LibreOffice

__all__ = ["Limits", "detect_kind", "word_to_article"]

_COUNT_PARAGRAPHS = etree.XPath("count(//w:p)", namespaces={"w": N.W_NS})
_FOOTNOTE_NAMESPACE = uuid.UUID("6f1c1c52-5a43-4f43-9a8e-0c0b1d7c2f11")


def word_to_article(
    data: bytes,
    filename: str = "",
    *,
    limits: Limits | None = None,
    libreoffice: LibreOffice | None = None,
) -> ConversionResult:
    """A Word document as an article: HTML, block markup, text, images, footnotes, metadata and a
    report. `libreoffice` (legacy.LibreOffice) is needed for .doc input and to turn EMF/WMF pictures
    into PNG; without it .doc raises DependencyMissing and EMF/WMF pictures are left out with a
    warning."""
    limits = limits or Limits()
    name = filename or "the document"
    if len(data) > limits.max_file_bytes:
        raise LimitExceeded(f"{name} is larger than {limits.max_file_bytes // (1024 * 1024)} MB")
    if detect_kind(data, filename) == "doc":
        if libreoffice is None:
            raise DependencyMissing(
                f"{name} is a legacy Word .doc: converting it needs LibreOffice "
                "(install LibreOffice, Debian package libreoffice-writer-nogui)"
            )
        data = libreoffice.doc_to_docx(data, filename)
    try:
        return _convert_docx(data, name, limits, libreoffice)
    except CopydeskError:
        raise
    except RecursionError:
        raise InvalidDocument(f"{name} is nested too deeply to convert") from None
    except MemoryError:
        raise LimitExceeded(f"{name} needs more memory than a conversion may use") from None
    except Exception as exc:  # a shape of input the reader did not expect: still a clean, typed error
        raise InvalidDocument(
            f"{name} could not be converted (unexpected structure: {type(exc).__name__})",
            details={"exception": type(exc).__name__, "detail": str(exc)[:200]},
        ) from exc


def _optional_xml(package: Package, part: str | None, report: ConversionReport, what: str):
    """A part the body can live without: damage there is a warning, not a failure."""
    if not part:
        return None
    try:
        return package.xml(part)
    except InvalidDocument as exc:
        if isinstance(exc, LimitExceeded):
            raise
        report.warn(f"the {what} could not be read and were ignored")
        return None


def _convert_docx(
    data: bytes, name: str, limits: Limits, libreoffice: LibreOffice | None
) -> ConversionResult:
    package = Package(data, name, limits)
    report = ConversionReport()
    root = package.xml(package.main)
    body = root.find(N.W_BODY) if root is not None else None
    if body is None:
        raise InvalidDocument(f"{name} has no document body")
    paragraphs = int(_COUNT_PARAGRAPHS(root))
    if paragraphs > limits.max_paragraphs:
        raise LimitExceeded(f"{name} has {paragraphs} paragraphs (limit {limits.max_paragraphs})")

    main = package.main
    styles_root = _optional_xml(package, package.related(main, "styles"), report, "styles")
    numbering_root = _optional_xml(package, package.related(main, "numbering"), report, "list definitions")
    images = ImageStore(package, limits.max_image_pixels, report)
    reader = Reader(
        package, Styles(styles_root), Numbering(numbering_root, styles_root), images, report, limits
    )
    blocks = reader.read_body(body)
    if unread := reader.unread_text():
        report.drop_text("unknown_element", unread)
        names = ", ".join(sorted(reader.unknown)) or "elements the converter does not read"
        report.warn(f"{unread} characters of text inside {names} could not be read and were left out")
    if report.dropped.get("table_of_contents"):
        report.warn("the table of contents was left out (its page numbers mean nothing on the web)")
    if report.dropped.get("page_number"):
        report.warn("page numbers (PAGEREF fields) were left out: they mean nothing on the web")
    if report.dropped_text.get("hidden_text"):
        report.warn("hidden text was left out")
    images.finish(libreoffice)
    resolve_bookmarks(reader.internal_links, reader.bookmark_owner)
    blocks = arrange(blocks)
    notes = reader.notes
    for note in notes:
        note.blocks = arrange(note.blocks)

    if reader.comment_ids:
        report.drop("comment", len(reader.comment_ids))
        report.warn(f"{len(reader.comment_ids)} comment(s) were left out")
    if report.constructs.get("tracked_change"):
        report.warn("tracked changes were accepted (insertions kept, deletions removed)")
    if report.approximated.get("equation"):
        report.warn("some equations use constructs that were simplified")

    metadata = read_metadata(package, report)
    title_paragraph = take_title(blocks)
    if title_paragraph is not None:
        report.count("title")
    title = (
        (plain_text(title_paragraph.children) if title_paragraph else "")
        or metadata.title
        or first_heading(blocks)
    )

    written = write(blocks, notes, images.is_dropped)
    by_key = {image.key: image for image in images.kept()}
    used = [by_key[key] for key in placeholder_keys(written.html) if key in by_key]
    report.missing_alt = [image.key for image in used if not image.alt]
    if report.missing_alt:
        generated = report.constructs.get("generated_alt_text", 0)
        note = f" ({generated} had a description Word generated, which was removed)" if generated else ""
        report.warn(f"{len(report.missing_alt)} image(s) need an alt text{note}")
    featured = choose_featured_image(used)
    if used and featured.image is None:
        report.warn(featured.reason)
    return ConversionResult(
        title=title.strip(),
        html=written.html,
        blocks=written.blocks,
        text=text_of(blocks, notes),
        images=used,
        metadata=metadata,
        report=report,
        footnotes=written.footnotes,
        featured_image=featured.image,
    )


@dataclass
class Written:
    html: str  # sanitized semantic HTML
    blocks: str  # sanitized WordPress block markup
    footnotes: list[Footnote]  # the notes as core's footnotes: the block markup refers to them by id


def _none_dropped(image) -> bool:
    return False


def write(blocks: list, notes: list[Note], is_dropped: Callable = _none_dropped) -> Written:
    """The document model as HTML, block markup and footnotes: what every input (Word, HTML) is
    written with. Footnote ids are derived from the HTML, so the same document gets the same ids."""
    html = clean_html(HtmlWriter(is_dropped).document(blocks, notes))
    seed = hashlib.sha256(html.encode()).hexdigest()
    note_ids = {note.number: str(uuid.uuid5(_FOOTNOTE_NAMESPACE, f"{seed}:{note.number}")) for note in notes}
    writer = BlocksWriter(is_dropped, note_ids, HtmlWriter(is_dropped))
    footnotes = [
        Footnote(note_ids[note.number], note.number, note.kind, clean_html(footnote_html(writer, note)))
        for note in notes
    ]
    return Written(html, clean_blocks(writer.document(blocks, notes)), footnotes)


def read_metadata(package: Package, report: ConversionReport) -> DocumentMetadata:
    """Core properties (docProps/core.xml) through python-docx's reader of that part."""
    part = package.related("", "core-properties") or (
        "docprops/core.xml" if package.size("docprops/core.xml") else None
    )
    if not part or package.size(part) > 1024 * 1024:
        return DocumentMetadata()
    blob = package.read(part) or b""
    try:
        parse_xml(blob, "the document properties")  # the hardened parser vets it first
        props = CorePropertiesPart.load(PackURI(f"/{part}"), "", blob, None).core_properties  # type: ignore[arg-type]
        keywords = (props.keywords or "").replace(";", ",").split(",")
        return DocumentMetadata(
            title=(props.title or "").strip(),
            subject=(props.subject or "").strip(),
            author=(props.author or "").strip(),
            keywords=[k.strip() for k in keywords if k.strip()],
            description=(props.comments or "").strip(),
            language=(props.language or "").strip(),
            created=props.created.isoformat() if props.created else None,
            modified=props.modified.isoformat() if props.modified else None,
        )
    except Exception:  # damaged properties never stop a conversion
        report.warn("the document properties could not be read")
        return DocumentMetadata()
