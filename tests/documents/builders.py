"""Word documents built by the tests themselves: raw WordprocessingML packages (for the constructs
python-docx cannot write), python-docx documents, small images and OLE2 containers."""

from __future__ import annotations

import io
import struct
import zipfile
import zlib

NS = (
    'xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main" '
    'xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships" '
    'xmlns:wp="http://schemas.openxmlformats.org/drawingml/2006/wordprocessingDrawing" '
    'xmlns:a="http://schemas.openxmlformats.org/drawingml/2006/main" '
    'xmlns:pic="http://schemas.openxmlformats.org/drawingml/2006/picture" '
    'xmlns:m="http://schemas.openxmlformats.org/officeDocument/2006/math" '
    'xmlns:mc="http://schemas.openxmlformats.org/markup-compatibility/2006" '
    'xmlns:v="urn:schemas-microsoft-com:vml" '
    'xmlns:o="urn:schemas-microsoft-com:office:office" '
    'xmlns:w14="http://schemas.microsoft.com/office/word/2010/wordml" '
    'xmlns:wps="http://schemas.microsoft.com/office/word/2010/wordprocessingShape"'
)
REL = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"


def part(root: str, inner: str) -> str:
    return f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<w:{root} {NS}>{inner}</w:{root}>'


def docx(
    body: str,
    *,
    styles: str = "",
    numbering: str = "",
    footnotes: str = "",
    endnotes: str = "",
    comments: str = "",
    core: str = "",
    links: dict[str, str] | None = None,
    media: dict[str, bytes] | None = None,
    raw_document: str | None = None,
) -> bytes:
    """A .docx package: `body` is the inner XML of w:body; `links` maps rId -> external URL;
    `media` maps "image1.png" -> bytes (related as rIdimage1.png, etc.)."""
    rels = []
    extra: dict[str, str | bytes] = {}
    for name, inner, root in (
        ("styles", styles, "styles"),
        ("numbering", numbering, "numbering"),
        ("footnotes", footnotes, "footnotes"),
        ("endnotes", endnotes, "endnotes"),
        ("comments", comments, "comments"),
    ):
        if inner:
            extra[f"word/{name}.xml"] = part(root, inner)
            rels.append(f'<Relationship Id="rId{name}" Type="{REL}/{name}" Target="{name}.xml"/>')
    for rid, url in (links or {}).items():
        rels.append(f'<Relationship Id="{rid}" Type="{REL}/hyperlink" Target="{url}" TargetMode="External"/>')
    for name, data in (media or {}).items():
        extra[f"word/media/{name}"] = data
        rels.append(f'<Relationship Id="rId{name}" Type="{REL}/image" Target="media/{name}"/>')
    package_rels = [f'<Relationship Id="rId1" Type="{REL}/officeDocument" Target="word/document.xml"/>']
    if core:
        extra["docProps/core.xml"] = core
        package_rels.append(
            '<Relationship Id="rId2" Type="http://schemas.openxmlformats.org/package/2006/relationships/'
            'metadata/core-properties" Target="docProps/core.xml"/>'
        )
    document = raw_document if raw_document is not None else part("document", f"<w:body>{body}</w:body>")
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(
            "[Content_Types].xml",
            '<?xml version="1.0" encoding="UTF-8"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/'
            'content-types"><Default Extension="xml" ContentType="application/xml"/></Types>',
        )
        zf.writestr("_rels/.rels", _rels(package_rels))
        zf.writestr("word/document.xml", document)
        zf.writestr("word/_rels/document.xml.rels", _rels(rels))
        for name, data in extra.items():
            zf.writestr(name, data)
    return out.getvalue()


def _rels(items: list[str]) -> str:
    return (
        '<?xml version="1.0" encoding="UTF-8"?><Relationships '
        'xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
        + "".join(items)
        + "</Relationships>"
    )


def p(text: str = "", style: str = "", extra_ppr: str = "", runs: str | None = None) -> str:
    """A paragraph with one run of text (or the given runs XML)."""
    ppr = (f'<w:pStyle w:val="{style}"/>' if style else "") + extra_ppr
    content = runs if runs is not None else r(text)
    return f"<w:p>{f'<w:pPr>{ppr}</w:pPr>' if ppr else ''}{content}</w:p>"


def r(text: str, rpr: str = "") -> str:
    return f'<w:r>{f"<w:rPr>{rpr}</w:rPr>" if rpr else ""}<w:t xml:space="preserve">{text}</w:t></w:r>'


def li(text: str, num_id: int, level: int = 0, style: str = "") -> str:
    return p(text, style, f'<w:numPr><w:ilvl w:val="{level}"/><w:numId w:val="{num_id}"/></w:numPr>')


def style(
    style_id: str, name: str, *, based_on: str = "", ppr: str = "", rpr: str = "", kind: str = "paragraph"
) -> str:
    return (
        f'<w:style w:type="{kind}" w:styleId="{style_id}"><w:name w:val="{name}"/>'
        + (f'<w:basedOn w:val="{based_on}"/>' if based_on else "")
        + (f"<w:pPr>{ppr}</w:pPr>" if ppr else "")
        + (f"<w:rPr>{rpr}</w:rPr>" if rpr else "")
        + "</w:style>"
    )


def abstract_num(aid: int, levels: list[tuple[str, int]]) -> str:
    """levels: (numFmt, start) for ilvl 0, 1, ..."""
    lvls = "".join(
        f'<w:lvl w:ilvl="{i}"><w:start w:val="{start}"/><w:numFmt w:val="{fmt}"/><w:lvlText w:val="%{i + 1}."/></w:lvl>'
        for i, (fmt, start) in enumerate(levels)
    )
    return f'<w:abstractNum w:abstractNumId="{aid}">{lvls}</w:abstractNum>'


def num(num_id: int, aid: int, restart_at: int | None = None) -> str:
    override = (
        f'<w:lvlOverride w:ilvl="0"><w:startOverride w:val="{restart_at}"/></w:lvlOverride>'
        if restart_at
        else ""
    )
    return f'<w:num w:numId="{num_id}"><w:abstractNumId w:val="{aid}"/>{override}</w:num>'


def inline_image(rid: str, *, alt: str = "", cx: int = 952500, cy: int = 476250, anchor: bool = False) -> str:
    """A DrawingML picture (inline, or anchored/floating) referring to relationship `rid`."""
    frame = "wp:anchor" if anchor else "wp:inline"
    return (
        f'<w:r><w:drawing><{frame}><wp:extent cx="{cx}" cy="{cy}"/><wp:docPr id="1" name="Picture 1" descr="{alt}"/>'
        '<a:graphic><a:graphicData uri="http://schemas.openxmlformats.org/drawingml/2006/picture"><pic:pic>'
        f'<pic:blipFill><a:blip r:embed="{rid}"/></pic:blipFill></pic:pic></a:graphicData></a:graphic>'
        f"</{frame}></w:drawing></w:r>"
    )


def png(width: int = 4, height: int = 3, color: tuple[int, int, int] = (200, 30, 30)) -> bytes:
    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (width, height), color).save(out, "PNG")
    return out.getvalue()


def png_header_only(width: int, height: int) -> bytes:
    """A PNG that declares width × height in its header (pixel data is a few empty bytes)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(b"\0" * 64))
        + chunk(b"IEND", b"")
    )


def python_docx_bytes(document) -> bytes:
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()


def ole2(streams: dict[str, bytes]) -> bytes:
    """A minimal OLE2 compound file holding these streams (each padded to 4096 bytes, so they live in
    regular 512-byte sectors): enough for the engine's encryption and format checks."""
    sector = 512
    data_sectors: list[bytes] = []
    entries = [("Root Entry", 5, 0xFFFFFFFE, 0)]
    for name, payload in streams.items():
        payload = payload.ljust(4096, b"\0")
        start = len(data_sectors)
        for i in range(0, len(payload), sector):
            data_sectors.append(payload[i : i + sector].ljust(sector, b"\0"))
        entries.append((name, 2, start, len(payload)))
    dir_start = len(data_sectors)
    directory = b""
    for i, (name, kind, start, size) in enumerate(entries):
        encoded = name.encode("utf-16-le") + b"\0\0"
        sibling = i + 1 if 0 < i < len(entries) - 1 else 0xFFFFFFFF
        child = 1 if i == 0 and len(entries) > 1 else 0xFFFFFFFF
        directory += (
            encoded.ljust(64, b"\0")
            + struct.pack("<HBB", len(encoded), kind, 1)
            + struct.pack("<III", 0xFFFFFFFF, sibling, child)
            + b"\0" * 16
            + b"\0" * 4
            + b"\0" * 16
            + struct.pack("<IQ", start, size)
        )
    dir_sectors = [
        directory[i : i + sector].ljust(sector, b"\0") for i in range(0, len(directory), sector)
    ] or [b"\0" * sector]
    fat_start = dir_start + len(dir_sectors)
    total = fat_start + 1
    fat = []
    for s in range(dir_start):  # each stream is a chain of consecutive sectors
        fat.append(s + 1)
    for _, _, start, size in entries[1:]:
        fat[start + size // sector - 1] = 0xFFFFFFFE
    for s in range(dir_start, fat_start):
        fat.append(s + 1 if s + 1 < fat_start else 0xFFFFFFFE)
    fat.append(0xFFFFFFFD)  # the FAT sector itself
    fat += [0xFFFFFFFF] * (sector // 4 - len(fat))
    header = (
        b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
        + b"\0" * 16
        + struct.pack("<HHHHH", 0x3E, 3, 0xFFFE, 9, 6)
        + b"\0" * 6
        + struct.pack("<IIIIIIIII", 0, 1, dir_start, 0, 4096, 0xFFFFFFFE, 0, 0xFFFFFFFE, 0)
        + struct.pack("<109I", fat_start, *([0xFFFFFFFF] * 108))
    )
    assert len(header) == 512 and total * sector < 10_000_000
    return header + b"".join(data_sectors) + b"".join(dir_sectors) + struct.pack(f"<{sector // 4}I", *fat)


def word_fib(encrypted: bool) -> bytes:
    """The start of a WordDocument stream: a FIB with or without fEncrypted."""
    flags = 0x0100 if encrypted else 0
    return struct.pack("<HHHHHH", 0xA5EC, 0xC1, 0, 0x0409, 0, flags)


def structured_manuscript(title: str, image: bytes) -> bytes:
    """A heading per level, a footnote, a table with a header row and a caption, an image with alt text
    and a caption, nested and lettered lists, a quote, code and an equation; "In order to" in the text
    for the test model to rewrite."""
    styles = (
        style("Heading1", "heading 1")
        + style("Heading2", "heading 2")
        + style("Caption", "caption")
        + style("Quote", "Quote")
        + style("Code", "Source Code")
    )
    numbering = abstract_num(1, [("bullet", 1), ("bullet", 1)]) + abstract_num(2, [("lowerLetter", 3)])
    numbering += num(1, 1) + num(2, 2)
    footnotes = (
        '<w:footnote w:type="separator" w:id="-1"><w:p><w:r><w:separator/></w:r></w:p></w:footnote>'
        '<w:footnote w:id="1"><w:p><w:r><w:footnoteRef/></w:r>' + r(" Council minutes, page 4.") + "</w:p></w:footnote>"
    )

    def cell(text: str) -> str:
        return f"<w:tc>{p(text)}</w:tc>"

    header = "<w:tr><w:trPr><w:tblHeader/></w:trPr>" + cell("Item") + cell("Cost") + "</w:tr>"
    table = f"<w:tbl>{header}<w:tr>{cell('Pipes')}{cell('3.5')}</w:tr><w:tr>{cell('Filters')}{cell('9')}</w:tr></w:tbl>"
    equation = "<m:oMath><m:r><m:t>x</m:t></m:r><m:r><m:t>=</m:t></m:r><m:r><m:t>2</m:t></m:r></m:oMath>"
    body = (
        p(title, "Heading1")
        + p(runs=r("In order to save water the harbour board met.") + '<w:r><w:footnoteReference w:id="1"/></w:r>')
        + p("What it costs", "Heading2")
        + p("Table 1: Costs", "Caption")
        + table
        + p(runs=inline_image("rIdimage1.png", alt="The harbour at dawn"))
        + p("Figure 1: The harbour", "Caption")
        + li("Pipes in order to carry water", 1)
        + li("Steel pipes", 1, level=1)
        + li("Filters", 1)
        + li("Third step", 2)
        + li("Fourth step", 2)
        + p("In order to grow, we build.", "Quote")
        + p("flow = pipes * 2", "Code")
        + f"<w:p><m:oMathPara>{equation}</m:oMathPara></w:p>"
    )
    return docx(body, styles=styles, numbering=numbering, footnotes=footnotes, media={"image1.png": image})
