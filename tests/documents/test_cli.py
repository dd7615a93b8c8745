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


def test_convert_with_the_offline_editor_shows_the_article_a_site_would_get(tmp_path):
    core = (
        '<?xml version="1.0" encoding="UTF-8"?><cp:coreProperties xmlns:cp="http://schemas.openxmlformats.org/'
        'package/2006/metadata/core-properties" xmlns:dc="http://purl.org/dc/elements/1.1/">'
        "<cp:keywords>図書館; 東京</cp:keywords></cp:coreProperties>"
    )
    styles = '<w:style w:type="paragraph" w:styleId="Heading1"><w:name w:val="heading 1"/></w:style>'
    body = (
        p("東京に新しい図書館", "Heading1")
        + p("2025年5月12日")
        + p("東京都は二十日、新しい市立図書館を来年春に開館すると発表した。図書館は約三十万冊の本を所蔵する予定だ。")
        + p(runs=inline_image("rIdicon.png", alt="Icon&#10;&#10;Description automatically generated"))
        + p(runs=inline_image("rIdphoto.png"))
    )
    source = tmp_path / "library.docx"
    source.write_bytes(docx(body, styles=styles, core=core, media={"icon.png": png(16, 16), "photo.png": png(400, 300)}))
    report = tmp_path / "r.json"
    result = runner.invoke(
        app, ["convert", str(source), "-o", str(tmp_path / "o.html"), "--edit", "offline", "--report", str(report),
              "--site-tags", "Bibliothek, 図書館"]
    )
    assert result.exit_code == 0, result.output
    summary = json.loads(report.read_text())
    article = summary["article"]
    assert article["title"] == "東京に新しい図書館" and article["slug"] == "東京-に-新しい-図書館"
    assert article["excerpt"].startswith("東京都は二十日") and "2025" not in article["excerpt"]
    assert article["tags"] == ["図書館", "東京"]
    photo = next(i for i in summary["images"] if i["width"] == 400)
    assert article["featured_image"] == {"name": photo["key"], "width": 400, "height": 300}
    assert summary["featured_image"] == article["featured_image"]
    assert summary["report"]["missing_alt"] == [i["key"] for i in summary["images"]]
    assert summary["words"] > 20  # ICU words, not spaces
    without = runner.invoke(app, ["convert", str(source), "--report", str(report)])
    assert without.exit_code == 0 and "article" not in json.loads(report.read_text())
    bad = runner.invoke(app, ["convert", str(source), "--edit", "gpt"])
    assert bad.exit_code == 2 and "--edit must be" in bad.stderr
