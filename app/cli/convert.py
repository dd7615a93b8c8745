"""`copydesk convert FILE`: the document engine on its own, offline (no database, broker or network).

    copydesk convert story.docx -o post.html --blocks post.blocks.html --media-dir media --report r.json

Without -o the HTML goes to stdout. With --media-dir the images are written there, named by content
hash, and the HTML and blocks point at them (relative paths); without it they keep their
`copydesk-image:` placeholders. A .doc needs LibreOffice (SOFFICE_PATH or `soffice` on PATH).

`--edit offline` runs the offline editor too, and the report gets an `article` object: the post as
it would be published (`title`, `slug`, `excerpt`, `tags`, `featured_image` as {name, width, height}
or null). `--site-tags "a, b"` stands for the tags the target site already has (the editor may
propose those); `--transliterate-slug` writes the slug in Latin letters.
Exit 0 on success, 1 when the file cannot be converted, 2 on bad usage; errors are one line on stderr.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict
from pathlib import Path

import typer

from app.cli import fail
from app.core.errors import CopydeskError

# The document engine is imported by the command: half a second less for every other one.


def convert_command(
    file: Path = typer.Argument(..., help="The .docx or .doc to convert.", show_default=False),
    output: Path | None = typer.Option(None, "-o", "--output", help="Write the HTML here (default: stdout)."),
    blocks: Path | None = typer.Option(None, "--blocks", help="Write the WordPress block markup here."),
    media_dir: Path | None = typer.Option(None, "--media-dir", help="Write the images into this folder."),
    report: Path | None = typer.Option(None, "--report", help="Write the conversion report (JSON) here."),
    soffice: str = typer.Option("soffice", "--soffice", envvar="SOFFICE_PATH", help="LibreOffice program."),
    timeout: float = typer.Option(
        120.0, "--timeout", envvar="CONVERT_TIMEOUT", help="LibreOffice timeout (s)."
    ),
    edit: str = typer.Option(
        "none", "--edit", help="'offline': also run the offline editor (the report gets an 'article')."
    ),
    site_tags: str = typer.Option("", "--site-tags", help="Tags the site already has, comma-separated."),
    transliterate_slug: bool = typer.Option(False, "--transliterate-slug", help="A slug in Latin letters."),
) -> None:
    """Convert a Word file to clean HTML (and blocks, images, report) without any service."""
    from app.documents import LibreOffice, resolve_images, word_to_article

    if edit not in ("none", "offline"):
        fail(f"--edit must be 'none' or 'offline', not {edit!r}", 2)
    try:
        data = file.read_bytes()
    except OSError as exc:
        fail(f"cannot read {file}: {exc.strerror or exc}", 2)
    try:
        result = word_to_article(data, file.name, libreoffice=LibreOffice.find(soffice, timeout))
    except CopydeskError as exc:
        fail(exc.message)

    html, markup = result.html, result.blocks
    try:
        if media_dir is not None:
            media_dir.mkdir(parents=True, exist_ok=True)
            for image in result.images:
                (media_dir / image.key).write_bytes(image.data)
            html = resolve_images(html, _relative_urls(result.images, media_dir, output))
            markup = resolve_images(markup, _relative_urls(result.images, media_dir, blocks))
        if output is not None:
            output.write_text(html + "\n", encoding="utf-8")
        else:
            typer.echo(html)
        if blocks is not None:
            blocks.write_text(markup + "\n", encoding="utf-8")
        if report is not None:
            summary = result.summary()
            summary["footnotes"] = [asdict(note) for note in result.footnotes]
            if edit == "offline":
                summary["article"] = _offline_article(result, site_tags, transliterate_slug)
            report.write_text(json.dumps(summary, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    except OSError as exc:
        fail(f"cannot write {exc.filename or 'output'}: {exc.strerror or exc}")


def _relative_urls(images, media_dir: Path, page: Path | None) -> dict[str, str]:
    base = page.resolve().parent if page is not None else Path.cwd()
    folder = Path(os.path.relpath(media_dir.resolve(), base))
    return {image.key: (folder / image.key).as_posix() for image in images}


def _offline_article(result, site_tags: str, transliterate_slug: bool) -> dict:
    """The post the offline editor makes of a conversion: what a site would get."""
    from app.documents.result import featured_summary
    from app.integrations.llm import EditRequest, OfflineEditor, SiteTerm

    request = EditRequest(
        html=result.html,
        text=result.text,
        title=result.title,
        keywords=result.metadata.keywords,
        language=result.metadata.language,
        site_tags=[SiteTerm(name.strip()) for name in site_tags.split(",") if name.strip()],
        transliterate_slug=transliterate_slug,
    )
    edited = OfflineEditor().edit(request)
    return {
        "title": edited.title,
        "slug": edited.slug,
        "excerpt": edited.excerpt,
        "tags": edited.tags,
        "featured_image": featured_summary(result.featured_image),
    }
