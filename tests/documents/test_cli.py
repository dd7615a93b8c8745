"""`copydesk convert`: offline conversion from the command line (typer's CliRunner on a tiny app)."""

from __future__ import annotations

import json

import typer
from typer.testing import CliRunner

from app.cli.convert import convert_command
from tests.documents.builders import docx, inline_image, p, png, r

app = typer.Typer()
app.command("convert")(convert_command)


@app.callback()
def _root() -> None:  # keeps "convert" a sub-command, as in the real `copydesk` app
    pass


runner = CliRunner()

FOOTNOTES = '<w:footnote w:id="1"><w:p><w:r><w:footnoteRef/></w:r>' + r(" Source.") + "</w:p></w:footnote>"


def manuscript() -> bytes:
    body = p("Headline", "Heading1") + p(runs=r("Text") + '<w:r><w:footnoteReference w:id="1"/></w:r>')
    body += p(runs=inline_image("rIdimage1.png", alt="Photo"))
    styles = '<w:style w:type="paragraph" w:styleId="Heading1"><w:name w:val="heading 1"/></w:style>'
    return docx(body, styles=styles, footnotes=FOOTNOTES, media={"image1.png": png()})


def test_convert_writes_html_blocks_media_and_report(tmp_path):
    source = tmp_path / "story.docx"
    source.write_bytes(manuscript())
    out, blocks, media, report = (
        tmp_path / "out.html",
        tmp_path / "out.blocks.html",
        tmp_path / "media",
        tmp_path / "r.json",
    )
    result = runner.invoke(
        app,
        [
            "convert",
            str(source),
            "-o",
            str(out),
            "--blocks",
            str(blocks),
            "--media-dir",
            str(media),
            "--report",
            str(report),
        ],
    )
    assert result.exit_code == 0, result.output
    html = out.read_text()
    assert "<h1>Headline</h1>" in html
    files = list(media.iterdir())
    assert len(files) == 1 and files[0].name.endswith(".png")
    assert f'src="media/{files[0].name}"' in html
    assert '<!-- wp:heading {"level":1} -->' in blocks.read_text()
    summary = json.loads(report.read_text())
    assert summary["title"] == "Headline"
    assert summary["images"][0]["alt"] == "Photo"
    assert summary["footnotes"][0]["html"] == "Source."
    assert summary["report"]["constructs"]["footnote"] == 1


def test_convert_prints_html_to_stdout_with_placeholders(tmp_path):
    source = tmp_path / "story.docx"
    source.write_bytes(manuscript())
    result = runner.invoke(app, ["convert", str(source)])
    assert result.exit_code == 0
    assert result.stdout.startswith("<h1>Headline</h1>")
    assert 'src="copydesk-image:' in result.stdout


def test_convert_fails_with_one_line(tmp_path):
    source = tmp_path / "letter.doc"
    source.write_text("not a Word file at all")
    result = runner.invoke(app, ["convert", str(source)])
    assert result.exit_code == 1
    assert result.stderr.strip().count("\n") == 0
    assert "letter.doc is not a Word document" in result.stderr
    missing = runner.invoke(app, ["convert", str(tmp_path / "nope.docx")])
    assert missing.exit_code == 2 and "cannot read" in missing.stderr
