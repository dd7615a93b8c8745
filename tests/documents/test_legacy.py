"""Legacy .doc through LibreOffice (marker `libreoffice`): batches, private profile, timeout, header
checks; EMF pictures made PNG."""

from __future__ import annotations

import subprocess
from pathlib import Path

import docx
import pytest
from PIL import Image

from app.core.errors import DependencyMissing, EncryptedDocument, InvalidDocument, TimedOut
from app.documents import LibreOffice, detect_kind, docs_to_docx, word_to_article
from app.documents.legacy import doc_to_docx
from tests.documents.builders import docx as build
from tests.documents.builders import inline_image, ole2, p, png, python_docx_bytes, r, word_fib
from tests.support import require_program, starts


@pytest.fixture(scope="module")
@starts("libreoffice")
def soffice() -> str:
    return require_program("soffice", "LibreOffice", "libreoffice-writer-nogui")


def _soffice_convert(soffice: str, sources: list[Path], target: str, outdir: Path) -> None:
    profile = (outdir / "profile").as_uri()
    subprocess.run(
        [
            soffice,
            f"-env:UserInstallation={profile}",
            "--headless",
            "--convert-to",
            target,
            "--outdir",
            str(outdir),
        ]
        + [str(s) for s in sources],
        check=True,
        capture_output=True,
        timeout=180,
    )


def _manuscript(title: str) -> bytes:
    document = docx.Document()
    document.add_heading(title, level=1)
    document.add_paragraph("A paragraph with ").add_run("bold").bold = True
    document.add_paragraph("first point", style="List Bullet")
    table = document.add_table(rows=2, cols=2)
    table.cell(1, 1).text = "cell"
    document.add_picture(_png_file(), width=docx.shared.Inches(1))
    return python_docx_bytes(document)


def _png_file():
    import io

    return io.BytesIO(png(40, 20))


@pytest.fixture(scope="module")
def legacy_files(soffice, tmp_path_factory) -> dict[str, bytes]:
    """Two real Word 97 .doc files and an EMF picture, made once by LibreOffice from our own sources."""
    folder = tmp_path_factory.mktemp("legacy")
    (folder / "one.docx").write_bytes(_manuscript("First manuscript"))
    (folder / "two.docx").write_bytes(_manuscript("Second manuscript"))
    Image.new("RGB", (60, 30), (0, 0, 200)).save(folder / "box.png")
    _soffice_convert(soffice, [folder / "one.docx", folder / "two.docx"], "doc", folder)
    _soffice_convert(soffice, [folder / "box.png"], "emf", folder)
    return {name: (folder / name).read_bytes() for name in ("one.doc", "two.doc", "box.emf")}


@pytest.mark.libreoffice
def test_doc_converts_through_libreoffice(legacy_files, soffice):
    data = legacy_files["one.doc"]
    assert detect_kind(data, "one.doc") == "doc"
    result = word_to_article(data, "one.doc", libreoffice=LibreOffice(soffice))
    assert "<h1>First manuscript</h1>" in result.html
    assert "<strong>bold</strong>" in result.html
    assert "<ul><li>first point</li></ul>" in result.html
    assert "<td>cell</td>" in result.html
    assert len(result.images) == 1 and result.images[0].content_type == "image/png"


@pytest.mark.libreoffice
def test_batch_converts_good_files_and_reports_bad_ones(legacy_files, soffice, tmp_path):
    docx_input = build(p("already docx"))
    batch = [
        legacy_files["one.doc"],
        legacy_files["two.doc"],
        b"Just text, named .doc",
        ole2({"WordDocument": word_fib(encrypted=True)}),
        ole2({"WordDocument": word_fib(encrypted=False) + b"\x00garbage"}),
        docx_input,
    ]
    names = ["one.doc", "two.doc", "letter.doc", "secret.doc", "broken.doc", "new.docx"]
    calls = tmp_path / "soffice-calls"
    counted = tmp_path / "soffice"  # soffice, counting its calls
    counted.write_text(f'#!/bin/sh\necho called >> "{calls}"\nexec "{soffice}" "$@"\n')
    counted.chmod(0o755)
    results = docs_to_docx(batch, soffice=str(counted), timeout=120, filenames=names)
    assert "Second manuscript" in word_to_article(results[1]).html
    assert word_to_article(results[0]).title == "First manuscript"
    assert (
        isinstance(results[2], InvalidDocument) and "letter.doc is not a Word document" in results[2].message
    )
    assert isinstance(results[3], EncryptedDocument)
    assert (
        isinstance(results[4], InvalidDocument)
        and "LibreOffice could not read broken.doc" in results[4].message
    )
    assert results[5] is docx_input
    assert calls.read_text().count("called") == 1  # one soffice call for the whole batch


@pytest.mark.libreoffice
def test_timeout_kills_libreoffice_and_says_so(legacy_files, soffice):
    with pytest.raises(TimedOut, match="longer than"):
        doc_to_docx(legacy_files["one.doc"], "one.doc", soffice=soffice, timeout=0.05)


@pytest.mark.libreoffice
def test_private_profile_per_process(soffice, tmp_path):
    office = LibreOffice(soffice)
    profile = office.profile()
    assert str(profile).endswith(f"copydesk-lo-{__import__('os').getpid()}")
    assert office.profile() == profile  # reused by later calls of the same process


@pytest.mark.libreoffice
def test_emf_picture_becomes_a_cropped_png(legacy_files, soffice):
    emf = legacy_files["box.emf"]
    data = build(
        p(runs=r("chart: ") + inline_image("rIdimage1.emf", alt="Blue box")), media={"image1.emf": emf}
    )
    result = word_to_article(data, libreoffice=LibreOffice(soffice))
    assert len(result.images) == 1
    image = result.images[0]
    assert image.content_type == "image/png" and image.key.endswith(".png")
    assert image.alt == "Blue box"
    assert image.width < 400 and image.height < 400  # the drawing, not the page LibreOffice draws it on
    assert result.report.approximated["vector_image_converted_to_png"] == 1


def test_missing_libreoffice_is_a_clear_dependency_error():
    doc = ole2({"WordDocument": word_fib(encrypted=False)})
    with pytest.raises(DependencyMissing, match="install LibreOffice"):
        doc_to_docx(doc, "old.doc", soffice="/nonexistent/soffice")
    assert LibreOffice.find("/nonexistent/soffice") is None
    emf = b"\x01\x00\x00\x00" + b"\0" * 36 + b" EMF" + b"\0" * 60
    assert LibreOffice("/nonexistent/soffice").vector_images_to_png([(emf, "emf")]) == [None]
