"""Pure document conversion: bytes in, plain data out (no Celery, no database, no network).

Public surface used by the rest of Copydesk:
- `detect_kind(data, filename)` -> "docx" | "doc", or InvalidDocument / EncryptedDocument
- `word_to_article(data, filename=..., limits=..., libreoffice=...)` -> ConversionResult: sanitized
  HTML, WordPress block markup, plain text, images (by content hash), footnotes, metadata, the
  featured image and a report (what was left out, and how many characters of text)
- `convert_html(data, title=...)` (a mail body) and `from_html(html, image_keys=...)` (an article's
  HTML after the edit) -> ConversionResult: the HTML read into the same model, written by the same
  writers (app.documents.html_input)
- `resolve_images(markup, urls)`, `placeholder_keys(markup)`, `image_placeholder(key)`
- `LibreOffice`, `docs_to_docx`, `doc_to_docx` (app.documents.legacy): .doc -> .docx in batches

Layout: package (zip + hardened XML) -> reader (WordprocessingML -> model) -> structure (lists,
figures, title) -> html_writer / blocks_writer / text_writer -> sanitize (nh3); html_input reads HTML
(BeautifulSoup with lxml) into the same model. Beside them: featured (which image is the featured
one), words (ICU word and sentence boundaries).
"""

from app.documents.convert import word_to_article
from app.documents.html_input import convert_html, from_html
from app.documents.legacy import LibreOffice, doc_to_docx, docs_to_docx
from app.documents.package import Limits, detect_kind
from app.documents.result import (
    ConversionReport,
    ConversionResult,
    DocumentMetadata,
    ExtractedImage,
    Footnote,
    image_placeholder,
    placeholder_keys,
    resolve_images,
)

__all__ = [
    "ConversionReport",
    "ConversionResult",
    "DocumentMetadata",
    "ExtractedImage",
    "Footnote",
    "LibreOffice",
    "Limits",
    "convert_html",
    "detect_kind",
    "doc_to_docx",
    "docs_to_docx",
    "from_html",
    "image_placeholder",
    "placeholder_keys",
    "resolve_images",
    "word_to_article",
]
