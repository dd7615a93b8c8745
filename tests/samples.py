"""Documents the tests build themselves (never copied from anywhere)."""

from __future__ import annotations

import io
import random
import zipfile

from docx import Document
from docx.shared import Inches
from PIL import Image


def png(width: int = 64, height: int = 48, seed: int = 0) -> bytes:
    """A small PNG whose bytes differ per seed (so each image has its own content hash)."""
    rng = random.Random(seed)
    image = Image.new("RGB", (width, height), tuple(rng.randrange(256) for _ in range(3)))
    for _ in range(20):
        x, y = rng.randrange(width), rng.randrange(height)
        image.putpixel((x, y), tuple(rng.randrange(256) for _ in range(3)))
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


def docx(
    title: str = "Test manuscript",
    paragraphs: int = 3,
    images: int = 0,
    seed: int = 0,
    keywords: str = "",
) -> bytes:
    doc = Document()
    doc.core_properties.title = title
    doc.core_properties.keywords = keywords
    doc.add_heading(title, level=1)
    for i in range(paragraphs):
        p = doc.add_paragraph(f"Paragraph {i + 1} of the manuscript, seed {seed}, with ")
        p.add_run("bold words").bold = True
        p.add_run(" and 1,234 numbers.")
    for i in range(images):
        doc.add_picture(io.BytesIO(png(seed=seed * 1000 + i)), width=Inches(1))
    out = io.BytesIO()
    doc.save(out)
    return out.getvalue()


def broken_docx(tag: str = "") -> bytes:
    """A zip with word/document.xml that is not XML: accepted at intake, fails when parsed. A `tag`
    makes the bytes (and so the document) differ from every other's."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        archive.writestr("word/document.xml", "<w:document><broken")
        if tag:
            archive.writestr("docProps/tag.txt", tag)
    return out.getvalue()
