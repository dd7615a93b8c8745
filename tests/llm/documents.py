"""Manuscripts for the AI-editing tests, built here: headings, names, numbers, a table, links and
images, the way editors write them. `seed` makes each one unique (its own document, its own cache
entries), `author` changes the bytes but not the content (a re-saved manuscript)."""

from __future__ import annotations

import io

import docx
from docx.opc.constants import RELATIONSHIP_TYPE
from docx.oxml import OxmlElement
from docx.oxml.ns import qn

from tests.samples import png


def _link(paragraph, url: str, text: str) -> None:
    rel = paragraph.part.relate_to(url, RELATIONSHIP_TYPE.HYPERLINK, is_external=True)
    link = OxmlElement("w:hyperlink")
    link.set(qn("r:id"), rel)
    run, t = OxmlElement("w:r"), OxmlElement("w:t")
    t.text = text
    t.set(qn("xml:space"), "preserve")
    run.append(t)
    link.append(run)
    paragraph._p.append(link)


def _save(document) -> bytes:
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()


def press_release(seed: int, *, author: str = "Kent Brockman") -> tuple[bytes, str]:
    """(a .docx, its title): a title heading, a linked report, two images (one captioned), a table."""
    title = f"Springfield opens water plant number {seed}"
    d = docx.Document()
    d.core_properties.title = title
    d.core_properties.author = author
    d.add_heading(title, level=1)
    p = d.add_paragraph(
        f"In order to save water, Mayor Jane Quimby opened plant {seed}, which serves 40,000 homes. Read "
    )
    _link(p, f"https://example.org/report?plant={seed}", "the full report")
    p.add_run(" or ")
    _link(p, "mailto:press@springfield.example", "write to the press office")
    p.add_run(".")
    d.add_picture(io.BytesIO(png(seed=seed * 10 + 1)))
    d.add_paragraph("The plant at dawn", style="Caption")
    d.add_heading("What it costs", level=2)
    table = d.add_table(rows=3, cols=2)
    for i, row in enumerate([("Item", "Cost (million $)"), ("Pipes", "3.5"), ("Filters", "9")]):
        for j, value in enumerate(row):
            table.cell(i, j).text = value
    d.add_paragraph(
        "The engineers at Hydroworks will utilize reverse osmosis, a choice Environment groups welcomed."
    )
    d.add_picture(io.BytesIO(png(seed=seed * 10 + 2)))
    return _save(d), title


def sectioned(seed: int, sections: int = 3, *, author: str = "Kent Brockman") -> tuple[bytes, str]:
    """(a .docx, its title): a title heading, then `sections` h2 sections of two paragraphs each
    (about 200 estimated tokens per section)."""
    title = f"District reports {seed}"
    d = docx.Document()
    d.core_properties.title = title
    d.core_properties.author = author
    d.add_heading(title, level=1)
    for n in range(1, sections + 1):
        d.add_heading(f"District {n}", level=2)
        for k in range(2):
            d.add_paragraph(
                f"In district {n}, officer Lovejoy counted {seed * 100 + n * 10 + k} new pipes this year. "
                "In order to keep the budget, the council of Springfield delayed the repairs of the old "
                "Hydroworks mains until the spring, and the residents were told about the plan."
            )
    return _save(d), title
