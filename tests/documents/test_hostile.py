"""Bad input: each gives a typed error with a clear message (or a result with warnings), never a hang
or a crash. Every hostile file is built here; the real ones are ../shared/corpus/poi (required under
CI=true). A conversion that has not returned after HANG seconds fails as a hang; how fast each one is
belongs to bench/ (bench/documents.py runs the corpus, poi included)."""

from __future__ import annotations

import io
import struct
import zipfile

import pytest

from app.core.errors import (
    CopydeskError,
    DependencyMissing,
    EncryptedDocument,
    InvalidDocument,
    LimitExceeded,
)
from app.documents import Limits, detect_kind, word_to_article
from tests.documents.builders import NS, docx, inline_image, ole2, p, png_header_only, word_fib
from tests.support import require_corpus, returns_within

HANG = 60  # seconds: far beyond any of these on a loaded machine (each takes well under one)


def converts(data: bytes, filename: str = "manuscript.docx", **kwargs):
    """word_to_article(), failing the test as a hang if it has not returned after HANG seconds."""
    return returns_within(HANG, f"word_to_article({filename})", word_to_article, data, filename, **kwargs)


def fails_cleanly(data: bytes, error: type[CopydeskError], match: str, **kwargs):
    with pytest.raises(error, match=match) as caught:
        converts(data, **kwargs)
    assert "\n" not in caught.value.message
    return caught.value


def zip_of(entries: dict[str, bytes | str], method=zipfile.ZIP_DEFLATED) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", method) as zf:
        for name, data in entries.items():
            zf.writestr(name, data)
    return out.getvalue()


def test_zero_bytes():
    fails_cleanly(b"", InvalidDocument, "empty")


def test_random_bytes_and_a_text_file_named_doc():
    fails_cleanly(b"\x00\x01garbage" * 100, InvalidDocument, "not a Word document")
    with pytest.raises(InvalidDocument, match="not a Word document"):
        detect_kind(b"Dear editor, here is my article.", "article.doc")


def test_a_zip_that_is_not_a_docx():
    fails_cleanly(zip_of({"notes.txt": "hello"}), InvalidDocument, "not a Word document")
    fails_cleanly(
        zip_of({"[Content_Types].xml": "<Types/>", "xl/workbook.xml": "<x/>"}), InvalidDocument, "spreadsheet"
    )


def test_truncated_docx():
    data = docx(p("hello") * 50)
    for cut in (len(data) // 2, len(data) - 30, 100):
        fails_cleanly(data[:cut], InvalidDocument, "damaged")


def test_malformed_xml_and_missing_body():
    fails_cleanly(docx("", raw_document="<w:document><w:body><w:p>"), InvalidDocument, "malformed XML")
    fails_cleanly(docx("", raw_document=f"<w:document {NS}/>"), InvalidDocument, "no document body")


XXE = (
    '<?xml version="1.0"?><!DOCTYPE w:document [<!ENTITY xxe SYSTEM "file:///etc/passwd">'
    '<!ENTITY net SYSTEM "http://192.0.2.1/x">]>'
    f"<w:document {NS}><w:body><w:p><w:r><w:t>&xxe;&net;</w:t></w:r></w:p></w:body></w:document>"
)

LAUGHS = (
    '<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
    + "".join(f'<!ENTITY lol{i + 1} "{("&lol" + (str(i) if i else "") + ";") * 10}">' for i in range(9))
    + f"]><w:document {NS}><w:body><w:p><w:r><w:t>&lol9;</w:t></w:r></w:p></w:body></w:document>"
)


def test_external_entities_are_refused_without_being_resolved():
    error = fails_cleanly(docx("", raw_document=XXE), InvalidDocument, "DTD")
    assert "root:" not in error.message


def test_billion_laughs_is_refused_quickly():
    fails_cleanly(docx("", raw_document=LAUGHS), InvalidDocument, "DTD|entit")


def test_entity_attack_in_an_optional_part_is_ignored_with_a_warning():
    styles_attack = XXE.replace("w:document", "w:styles")
    data = docx(p("safe text"))
    data = zip_of(
        {**_entries(data), "word/styles.xml": styles_attack, "word/_rels/document.xml.rels": _styles_rels()}
    )
    result = word_to_article(data)
    assert result.html == "<p>safe text</p>"
    assert any("styles" in w for w in result.report.warnings)
    assert "root:" not in result.text


def _entries(data: bytes) -> dict[str, bytes]:
    source = zipfile.ZipFile(io.BytesIO(data))
    return {info.filename: source.read(info) for info in source.infolist()}


def _styles_rels() -> str:
    return (
        '<?xml version="1.0"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
        '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/styles" '
        'Target="styles.xml"/></Relationships>'
    )


def test_zip_bomb_by_compression_ratio():
    bomb = {**_entries(docx(p("x"))), "word/filler.xml": b" " * (16 * 1024 * 1024)}
    fails_cleanly(zip_of(bomb), LimitExceeded, "zip bomb")


def test_zip_bomb_with_lying_sizes_fails_on_read():
    """A central directory that under-declares the inflated size: zipfile stops at the declared
    size, the CRC no longer matches, and nothing large is ever held in memory."""
    document = f"<w:document {NS}><w:body>" + p("x") * 200_000 + "</w:body></w:document>"
    data = bytearray(zip_of({**_entries(docx(p("x"))), "word/document.xml": document}))
    name = b"word/document.xml"
    real = len(document.encode())
    for sig, size_offset in ((b"PK\x03\x04", 22), (b"PK\x01\x02", 24)):
        start = 0
        while (start := data.find(sig, start)) != -1:
            header_len = 30 if sig == b"PK\x03\x04" else 46
            name_len = struct.unpack_from("<H", data, start + (26 if sig == b"PK\x03\x04" else 28))[0]
            if data[start + header_len : start + header_len + name_len] == name:
                assert struct.unpack_from("<I", data, start + size_offset)[0] == real
                struct.pack_into("<I", data, start + size_offset, 5000)
            start += 4
    fails_cleanly(bytes(data), InvalidDocument, "damaged|malformed")


def test_size_and_entry_limits():
    data = docx(p("hello"))
    fails_cleanly(data, LimitExceeded, "would expand", limits=Limits(max_uncompressed_bytes=500))
    fails_cleanly(data, LimitExceeded, "parts", limits=Limits(max_zip_entries=3))
    fails_cleanly(data, LimitExceeded, "larger than", limits=Limits(max_file_bytes=100))


def test_password_protected_docx_and_doc():
    encrypted_docx = ole2({"EncryptionInfo": b"\x04\x00\x04\x00", "EncryptedPackage": b"\x00" * 64})
    fails_cleanly(encrypted_docx, EncryptedDocument, "password-protected")
    fails_cleanly(ole2({"WordDocument": word_fib(encrypted=True)}), EncryptedDocument, "password-protected")


def test_legacy_doc_without_libreoffice_says_what_to_install():
    error = fails_cleanly(ole2({"WordDocument": word_fib(encrypted=False)}), DependencyMissing, "LibreOffice")
    assert "libreoffice-writer-nogui" in error.message


def test_hundred_megapixel_image_is_left_out_with_a_warning():
    data = docx(
        p("text") + p(runs=inline_image("rIdhuge.png")), media={"huge.png": png_header_only(10_000, 10_000)}
    )
    result = converts(data)
    assert result.html == "<p>text</p>"
    assert result.images == []
    assert result.report.dropped["image_over_limit"] == 1
    assert any("10000×10000" in w for w in result.report.warnings)


def test_damaged_image_is_left_out_with_a_warning():
    result = word_to_article(
        docx(p(runs=inline_image("rIdbad.png")) + p("after"), media={"bad.png": b"\x89PNG not really"})
    )
    assert result.html == "<p>after</p>"
    assert result.report.dropped["unreadable_image"] == 1


def test_five_thousand_paragraphs_convert():
    body = "".join(p(f"Paragraph number {i} of a long manuscript.") for i in range(5000))
    result = converts(docx(body))
    assert result.html.count("<p>") == 5000
    assert result.text.count("\n") == 4999


def test_paragraph_limit():
    fails_cleanly(docx(p("x") * 101), LimitExceeded, "101 paragraphs", limits=Limits(max_paragraphs=100))


def test_deeply_nested_tables_are_cut_with_a_warning():
    body = p("deep")
    for _ in range(40):
        body = f"<w:tbl><w:tr><w:tc>{body}</w:tc></w:tr></w:tbl>"
    result = converts(docx(body))
    assert result.report.dropped["nested_too_deep"] == 1


def test_xml_nested_past_the_parser_limit_fails_cleanly():
    body = "<w:sdt><w:sdtContent>" * 3000 + p("x") + "</w:sdtContent></w:sdt>" * 3000
    fails_cleanly(docx(body), InvalidDocument, "malformed|nested")


def test_unclosed_fields_do_not_grow_without_bound():
    runs = '<w:r><w:fldChar w:fldCharType="begin"/></w:r>' * 50_000 + "<w:r><w:t>text</w:t></w:r>"
    converts(docx(p(runs=runs) + p("after")))  # returns (everything after an unclosed field is its code)


@pytest.mark.slow
def test_real_hostile_files_fail_cleanly():
    """Fuzzed, truncated and encrypted files from Apache POI: a result or a typed error, never a hang."""
    for path in sorted(require_corpus("poi").iterdir()):
        if path.suffix.lower() not in (".doc", ".docx"):
            continue
        try:
            converts(path.read_bytes(), path.name)
        except CopydeskError as exc:
            assert "exception" not in exc.details, f"{path.name}: unexpected {exc.details}"
