"""A sample manuscript for the demo, made on the spot (headings, emphasis, a list, a table, a link,
two images), so the demo needs no file from anywhere."""

from __future__ import annotations

import io

from docx import Document
from docx.shared import Inches
from PIL import Image, ImageDraw


def _picture(size: tuple[int, int], colours: tuple[str, str], label: str) -> bytes:
    image = Image.new("RGB", size, colours[0])
    draw = ImageDraw.Draw(image)
    w, h = size
    for i in range(0, w, 40):
        draw.line([(i, 0), (i + h // 2, h)], fill=colours[1], width=8)
    draw.rectangle([w // 4, h // 3, 3 * w // 4, 2 * h // 3], fill="white")
    draw.text((w // 4 + 12, h // 3 + 12), label, fill="black")
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


def sample_manuscript() -> bytes:
    doc = Document()
    doc.core_properties.title = "Harbour town opens its new library"
    doc.core_properties.keywords = "library, culture, harbour"
    doc.core_properties.author = "Copydesk demo"
    doc.add_heading("Harbour town opens its new library", level=1)
    p = doc.add_paragraph("After three years of work, the ")
    p.add_run("Harbour Library").bold = True
    p.add_run(" opened on Saturday with ")
    p.add_run("42,000 books").italic = True
    p.add_run(" and a reading room facing the sea. Mayor Ana Ortiz cut the ribbon at 10 a.m.")
    doc.add_picture(io.BytesIO(_picture((800, 450), ("#2b6cb0", "#90cdf4"), "Reading room")), width=Inches(5))
    doc.add_heading("What is inside", level=2)
    for item in ("A children's floor with 6,500 picture books", "Twelve study rooms", "A makerspace with two 3D printers"):
        doc.add_paragraph(item, style="List Bullet")
    doc.add_heading("Opening hours", level=2)
    table = doc.add_table(rows=3, cols=2)
    table.style = "Table Grid"
    for row, (day, hours) in zip(table.rows, (("Day", "Hours"), ("Monday–Friday", "9:00–20:00"), ("Saturday", "10:00–16:00"))):
        row.cells[0].text, row.cells[1].text = day, hours
    doc.add_paragraph(
        "The project cost 8.4 million euros, of which 2.1 million came from a regional grant. "
        "Librarians expect 1,200 visitors a day in the first month."
    )
    doc.add_picture(io.BytesIO(_picture((640, 480), ("#276749", "#9ae6b4"), "Makerspace")), width=Inches(4))
    doc.add_paragraph("Membership is free for residents; bring proof of address to the front desk.")
    out = io.BytesIO()
    doc.save(out)
    return out.getvalue()
