"""The pure part of mailbox intake: directives, bodies, attachments, headers, config (no server)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from app.core.errors import ConfigurationError
from app.integrations.mailbox import (
    MailboxConfig,
    content_hash,
    dedupe_key,
    extract_directives,
    parse_message,
    parse_subject,
    sender_allowed,
    sniff_word,
)
from tests.fixtures.dovecot import DOCX_TYPE, make_doc_bytes, make_docx, make_message

LONG_TEXT = " ".join(f"word{n}" for n in range(40))


# --- directives -------------------------------------------------------------------------------


def test_subject_directives_are_parsed_and_removed_from_the_title():
    found, title = parse_subject(
        "[category News] [tags city, council , budget] Budget vote tonight [status draft] "
        "[date 2026-12-01 09:00] [slug budget-vote] [excerpt The council votes.]"
    )
    assert title == "Budget vote tonight"
    assert found.categories == ["News"]
    assert found.tags == ["city", "council", "budget"]
    assert found.status == "draft"
    assert found.date == datetime(2026, 12, 1, 9, 0)
    assert found.slug == "budget-vote"
    assert found.excerpt == "The council votes."
    assert found.warnings == []


@pytest.mark.parametrize(
    "subject",
    ["[CATEGORY News] Title", "[category: News] Title", "[category=News] Title", "[ category News ] Title"],
)
def test_keyword_case_and_separators(subject):
    found, title = parse_subject(subject)
    assert found.categories == ["News"] and title == "Title"


def test_several_categories_and_tags_merge_without_repeats():
    found, _ = parse_subject("[categories News, Local] [category News] [tag a] [tags a, b] T")
    assert found.categories == ["News", "Local"]
    assert found.tags == ["a", "b"]


def test_unknown_brackets_stay_in_the_title():
    found, title = parse_subject("[EXT] [Draft 2] Report on [tagging] practice")
    assert title == "[EXT] [Draft 2] Report on [tagging] practice"
    assert not found


@pytest.mark.parametrize(
    ("subject", "warning"),
    [
        ("[status maybe] T", "[status maybe] is not one of draft, pending, publish"),
        ("[date next week] T", "[date next week] is not a date"),
        ("[slug ] T", "[slug] has no value"),
    ],
)
def test_unusable_directives_are_removed_and_reported(subject, warning):
    found, title = parse_subject(subject)
    assert title == "T"
    assert any(w.startswith(warning) for w in found.warnings), found.warnings
    assert found.status is None and found.date is None and found.slug is None


def test_dates_with_offset_date_only_and_slashes():
    assert parse_subject("[date 2026-12-01T09:00+02:00] T")[0].date == datetime(
        2026, 12, 1, 9, 0, tzinfo=timezone(timedelta(hours=2))
    )
    assert parse_subject("[date 2026-12-01] T")[0].date == datetime(2026, 12, 1)
    assert parse_subject("[date 2026/12/01 18:30] T")[0].date == datetime(2026, 12, 1, 18, 30)


def test_status_is_case_insensitive_and_slug_gets_hyphens():
    found, _ = parse_subject("[status PUBLISH] [slug My New Post] T")
    assert found.status == "publish" and found.slug == "my-new-post"


def test_reply_and_forward_prefixes_leave_the_title():
    assert parse_subject("Fwd: RE: AW: [status draft] Story")[1] == "Story"
    assert parse_subject("Re[2]: Story")[1] == "Story"
    assert parse_subject("Report: results")[1] == "Report: results"


def test_jetpack_excerpt_block_spans_lines():
    found, rest = extract_directives("Intro\n[excerpt]First line\nsecond line[/excerpt]\nBody")
    assert found.excerpt == "First line second line"
    assert "excerpt" not in rest and "Body" in rest


def test_html_directives_are_unescaped_and_removed():
    found, rest = extract_directives("<p>[tags R&amp;D, caf&eacute;]</p><p>[excerpt]<b>Bold</b> start[/excerpt]</p>", is_html=True)
    assert found.tags == ["R&D", "café"]
    assert found.excerpt == "Bold start"
    assert rest == "<p></p><p></p>"


# --- bodies -----------------------------------------------------------------------------------


def _parse(message, **kwargs):
    return parse_message(message.as_bytes(), **kwargs)


def test_subject_wins_over_body_for_single_values_and_lists_merge():
    msg = _parse(
        make_message(
            subject="[status pending] [tags a] Title",
            text=f"[status publish] [tags b] [category News]\n{LONG_TEXT}",
        )
    )
    assert msg.directives.status == "pending"
    assert msg.directives.tags == ["a", "b"]
    assert msg.directives.categories == ["News"]


def test_plain_text_body_becomes_an_html_document_without_signature_and_directives():
    text = f"[category News]\nFirst paragraph {LONG_TEXT} & <more>.\nSame paragraph.\n\nSecond.\n-- \nAnn Editor\n+33 1 23"
    msg = _parse(make_message(text=text))
    assert msg.status == "ready"
    [doc] = msg.documents
    assert (doc.kind, doc.origin, doc.filename, doc.verified) == ("html", "body", "message.html", True)
    html = doc.data.decode()
    assert html.startswith("<p>First paragraph word0")
    assert "&amp; &lt;more&gt;.<br>\nSame paragraph.</p>\n<p>Second.</p>" in html
    assert "Ann Editor" not in html and "[category" not in html
    assert doc.sha256 == content_hash(doc.data)


def test_html_body_is_preferred_and_cleaned():
    html = (
        "<html><head><style>p{color:red}</style></head><body>"
        f"<p>[tags x] Real text {LONG_TEXT}</p><hr><p>--------</p><p>After a rule.</p>"
        "<p>-- <br>Ann Editor<br>Press office</p><div>Unsubscribe</div></body></html>"
    )
    msg = _parse(make_message(text=f"Real text {LONG_TEXT}", html=html))
    [doc] = msg.documents
    body = doc.data.decode()
    assert "Real text" in body and "--------" in body and "After a rule." in body  # a rule is not a signature
    assert "Ann Editor" not in body and "Unsubscribe" not in body and "color:red" not in body
    assert msg.directives.tags == ["x"]


def test_known_signature_blocks_and_end_marker():
    html = f'<div>Text {LONG_TEXT} [end] legal footer</div><div class="gmail_signature">Ann</div>'
    [doc] = _parse(make_message(text=None, html=html)).documents
    assert "legal footer" not in doc.data.decode() and "Ann" not in doc.data.decode()
    text = f"Text {LONG_TEXT}\n[END]\nConfidentiality notice"
    [doc] = _parse(make_message(text=text)).documents
    assert "Confidentiality" not in doc.data.decode()


def test_a_short_message_without_attachment_is_ignored_with_a_reason():
    msg = _parse(make_message(text="Here is my article!\n-- \nAnn, who forgot the attachment"))
    assert msg.status == "ignored" and not msg.documents
    assert msg.reason.startswith("no Word attachment (.doc, .docx) and 4 words of text")


def test_automatic_replies_and_bounces_are_ignored_even_with_an_attachment():
    reply = make_message(subject="Out of office", text=LONG_TEXT, attachments=[("s.docx", make_docx("x"), DOCX_TYPE)])
    reply["Auto-Submitted"] = "auto-replied"
    assert _parse(reply).status == "ignored" and "automatic" in _parse(reply).reason
    bounce = make_message(sender="MAILER-DAEMON@example.org", subject="Undelivered", text=LONG_TEXT)
    bounce.replace_header("Content-Type", 'multipart/report; report-type=delivery-status; boundary="b"')
    assert _parse(bounce).status == "ignored"
    normal = make_message(text=LONG_TEXT)
    normal["Auto-Submitted"] = "no"
    assert _parse(normal).status == "ready"


JAPANESE_NEWS = (
    "東京都は二十日、新しい市立図書館を来年春に開館すると発表した。図書館は渋谷区の旧庁舎を改修し、"
    "約三十万冊の本を所蔵する予定だ。知事は記者会見で「子どもから高齢者まで誰もが利用できる場所にしたい」"
    "と述べた。"
)


def test_a_japanese_mail_body_is_counted_in_words_not_spaces():
    # No spaces between Japanese words: str.split() saw one "word" and ignored this news mail.
    assert len(JAPANESE_NEWS.split()) == 1
    msg = _parse(make_message(subject="新しい図書館", text=JAPANESE_NEWS))
    assert msg.status == "ready", msg.reason
    [doc] = msg.documents
    assert "新しい市立図書館" in doc.data.decode()
    short = _parse(make_message(text="よろしくお願いします。"))
    assert short.status == "ignored" and " words of text" in short.reason and "and 1 word " not in short.reason


def test_a_thai_and_a_chinese_body_count_their_words():
    thai = "กรุงเทพมหานครประกาศเปิดห้องสมุดแห่งใหม่ในปีหน้า ห้องสมุดจะมีหนังสือมากกว่าสามแสนเล่มและเปิดให้บริการทุกวัน"
    chinese = "北京市政府今天宣布，新的市立图书馆将于明年春天开放。图书馆位于旧市政厅，将收藏大约三十万册图书，每天对公众开放。"
    for text in (thai, chinese):
        assert _parse(make_message(text=text)).status == "ready"


def test_min_body_words_is_configurable():
    assert _parse(make_message(text="Short brief."), min_body_words=2).status == "ready"


# --- attachments ------------------------------------------------------------------------------


def test_word_attachments_become_documents_and_the_body_is_only_a_note():
    docx = make_docx("Story")
    msg = _parse(
        make_message(
            text=f"Cover note {LONG_TEXT}",
            attachments=[
                ("story.docx", docx, DOCX_TYPE),
                ("old.doc", make_doc_bytes(), "application/msword"),
                ("photo.jpg", b"\xff\xd8\xff\xe0 fake jpeg", "image/jpeg"),
            ],
        )
    )
    assert msg.status == "ready"
    assert [(d.filename, d.kind, d.verified) for d in msg.documents] == [("story.docx", "docx", True), ("old.doc", "doc", True)]
    assert msg.documents[0].data == docx
    assert [(a.filename, a.content_type) for a in msg.other_attachments] == [("photo.jpg", "image/jpeg")]


def test_word_files_are_recognised_by_their_bytes_whatever_their_name():
    docx = make_docx("Story")
    msg = _parse(make_message(attachments=[("scan.bin", docx, "application/octet-stream")]))
    assert [(d.filename, d.kind, d.content_type) for d in msg.documents] == [("scan.bin", "docx", DOCX_TYPE)]


def test_a_nameless_word_part_gets_a_name():
    raw = (
        b"From: ann@example.org\r\nSubject: s\r\nMessage-ID: <n@x>\r\nMIME-Version: 1.0\r\n"
        b"Content-Type: multipart/mixed; boundary=B\r\n\r\n--B\r\nContent-Type: text/plain\r\n\r\nhi\r\n"
        b"--B\r\nContent-Type: " + DOCX_TYPE.encode() + b"\r\nContent-Transfer-Encoding: base64\r\n\r\n"
        + __import__("base64").encodebytes(make_docx("x")) + b"\r\n--B--\r\n"
    )
    msg = parse_message(raw)
    assert [(d.filename, d.kind, d.verified) for d in msg.documents] == [("attachment-2.docx", "docx", True)]
    assert "a Word attachment had no file name; it is called attachment-2.docx" in msg.warnings


def test_a_docx_that_is_not_one_is_passed_on_unverified_with_a_warning():
    msg = _parse(make_message(attachments=[("story.docx", b"%PDF-1.7 not word", DOCX_TYPE)]))
    [doc] = msg.documents
    assert doc.verified is False and doc.kind == "docx"
    assert "story.docx is named like a Word document but its content is not one" in msg.warnings


def test_the_same_file_attached_twice_is_one_document():
    docx = make_docx("Same")
    msg = _parse(make_message(attachments=[("a.docx", docx, DOCX_TYPE), ("b.docx", docx, DOCX_TYPE)]))
    assert [d.filename for d in msg.documents] == ["a.docx"]


def test_sniff_word():
    assert sniff_word(make_docx("x")) == "docx"
    assert sniff_word(make_doc_bytes()) == "doc"
    xls = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + "Workbook".encode("utf-16-le")
    assert sniff_word(xls) is None
    assert sniff_word(b"PK\x03\x04 not really a zip") is None
    assert sniff_word(b"") is None
    encrypted = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + "EncryptedPackage".encode("utf-16-le")
    assert sniff_word(encrypted) == "docx"


def test_attachment_names_lose_paths_and_control_characters():
    msg = _parse(make_message(attachments=[("../../etc/\tevil.docx", make_docx("x"), DOCX_TYPE)]))
    assert msg.documents[0].filename == "evil.docx"


# --- headers and broken mail ------------------------------------------------------------------


def test_legacy_charsets_in_headers_and_file_names():
    raw = (
        b"From: =?iso-8859-1?q?Ren=E9?= <Rene@Example.ORG>\r\n"
        b"Subject: =?koi8-r?b?8NLJ18XU?= [tags caf\xe9] R\xe9sum\xe9\r\n"  # KOI8-R word, then raw Latin-1 bytes
        b"Message-ID: <legacy@x>\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=B\r\n\r\n"
        b"--B\r\nContent-Type: text/plain; charset=iso-8859-1\r\nContent-Transfer-Encoding: 8bit\r\n\r\nCaf\xe9\r\n"
        b"--B\r\nContent-Type: application/msword\r\nContent-Disposition: attachment; filename*=iso-8859-1''r%E9sum%E9.doc\r\n"
        b"Content-Transfer-Encoding: base64\r\n\r\n0M8R4KGxGuE=\r\n"
        b"--B\r\nContent-Type: application/octet-stream\r\nContent-Disposition: attachment; filename=\"d\xe9j\xe0.docx\"\r\n"
        b"Content-Transfer-Encoding: base64\r\n\r\nUEsDBA==\r\n"
        b"--B\r\nContent-Type: application/octet-stream; name=\"=?shift_jis?b?graCtYLl?=.docx\"\r\n"
        b"Content-Transfer-Encoding: base64\r\n\r\nUEsDBA==\r\n--B--\r\n"
    )
    msg = parse_message(raw)
    assert msg.sender == "rene@example.org" and msg.sender_name == "René"
    assert msg.subject == "Привет [tags café] Résumé"
    assert msg.title == "Привет Résumé" and msg.directives.tags == ["café"]
    assert msg.text.strip() == "Café"
    assert [d.filename for d in msg.documents] == ["résumé.doc", "déjà.docx"]  # the 3rd has the 2nd's bytes
    raw_utf8 = raw.replace(b"d\xe9j\xe0", "déjà".encode()).replace(b"UEsDBA==\r\n--B--", b"UEsDBAo=\r\n--B--")
    names = [d.filename for d in parse_message(raw_utf8).documents]
    assert names == ["résumé.doc", "déjà.docx", "じしょ.docx"]


def test_undecodable_bytes_never_raise():
    for raw in (b"", b"\xff\xfe\x00garbage", b"Subject: x\r\n\r\n", b"Content-Type: multipart/mixed\r\n\r\nno boundary"):
        msg = parse_message(raw)
        assert msg.status in ("ignored", "ready", "unknown_sender")


def test_malformed_mime_is_read_as_far_as_possible():
    docx = make_docx("Still here")
    import base64

    raw = (
        b"From: ann@example.org\r\nSubject: broken\r\nMessage-ID: <broken@x>\r\nMIME-Version: 1.0\r\n"
        b"Content-Type: multipart/mixed; boundary=B\r\n\r\n"
        b"--B\r\nContent-Type: application/msword; name=\"story.docx\"\r\nContent-Transfer-Encoding: base64\r\n\r\n"
        + base64.encodebytes(docx)
        + b"\r\n--B\r\nContent-Type: text/plain\r\nContent-Transfer-Encoding: base64\r\n\r\n!!!not base64!!!\r\n"
    )  # no closing boundary, bad base64
    msg = parse_message(raw)
    assert [d.data for d in msg.documents] == [docx]
    assert any("malformed" in w for w in msg.warnings)


def test_a_message_without_message_id_gets_a_stable_one():
    message = make_message(attachments=[("s.docx", make_docx("x"), DOCX_TYPE)])
    del message["Message-ID"]
    first, second = _parse(message), _parse(message)
    assert first.message_id == second.message_id and first.message_id.endswith("@copydesk.invalid")
    assert first.documents[0].dedupe_key == second.documents[0].dedupe_key


def test_dedupe_key_depends_on_message_and_content():
    assert dedupe_key("a@x", "00") == dedupe_key("a@x", "00")
    assert dedupe_key("a@x", "00") != dedupe_key("b@x", "00") != dedupe_key("a@x", "01")
    message = make_message(message_id="<Same@Example.org>", attachments=[("s.docx", make_docx("x"), DOCX_TYPE)])
    msg = _parse(message)
    assert msg.message_id == "Same@Example.org"
    assert msg.documents[0].dedupe_key == dedupe_key("Same@Example.org", content_hash(msg.documents[0].data))


# --- senders and config -----------------------------------------------------------------------


def test_sender_allowed():
    config = MailboxConfig(host="h", user="u", password="p", allowed_senders=("Ann@Example.org", "@press.example", "agency.example"))
    assert config.allowed_senders == ("ann@example.org", "@press.example", "@agency.example")
    assert config.sender_allowed("ANN@example.org")
    assert config.sender_allowed("bob@press.example") and config.sender_allowed("x@agency.example")
    assert not config.sender_allowed("bob@example.org")
    assert not config.sender_allowed("eve@sub.press.example")
    assert not config.sender_allowed("")
    assert sender_allowed((), "anyone@anywhere.example")


def test_unknown_senders_are_marked_not_processed():
    msg = _parse(make_message(sender="Eve <eve@evil.example>", attachments=[("s.docx", make_docx("x"), DOCX_TYPE)]),
                 allowed_senders=("@example.org",))
    assert msg.status == "unknown_sender" and msg.reason == "eve@evil.example is not an allowed sender"


def test_config_validation_and_secrecy():
    assert MailboxConfig(host="h", user="u", password="p").port == 993
    assert MailboxConfig(host="h", user="u", password="p", tls="starttls").port == 143
    with pytest.raises(ConfigurationError, match="unencrypted"):
        MailboxConfig(host="h", user="u", password="p", tls="plain")
    assert MailboxConfig(host="h", user="u", password="p", tls="plain", allow_plain=True).port == 143
    with pytest.raises(ConfigurationError):
        MailboxConfig(host="h", user="u", password="p", tls="ssl")
    with pytest.raises(ConfigurationError):
        MailboxConfig(host="h", user="u", password="p", processed_folder="INBOX")
    with pytest.raises(ConfigurationError):
        MailboxConfig(host="h", user="u", password="p", allowed_senders=("a@b@c",))
    assert "s3cret" not in repr(MailboxConfig(host="h", user="u", password="s3cret"))
