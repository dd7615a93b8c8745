"""The pure side of replies and webhooks, against the real SMTP test server and the webhook receiver:
building and submitting a reply (STARTTLS and implicit TLS, login), what each failure becomes, the
templates and the language they are chosen by, webhook signatures."""

from __future__ import annotations

import pytest

from app.core.errors import AuthenticationFailed, ConfigurationError, ConnectionFailed, ServiceUnavailable
from app.integrations.notify import (
    ReplySettings,
    SmtpConfig,
    build_reply,
    deliver,
    new_secret,
    render_reply,
    send,
)
from app.integrations.notify.language import detect_language
from app.integrations.notify.replies import text_to_html
from tests.servers.smtp_server import SmtpServer
from tests.servers.webhook_receiver import verify
from tests.support import free_port

pytestmark = pytest.mark.smtp


def config(server: SmtpServer, **changes) -> SmtpConfig:
    values = dict(host=server.host, port=server.port, tls=server.tls, user=server.user, password=server.password,
                  timeout=10, ca_file=server.ca_file)  # fmt: skip
    return SmtpConfig(**{**values, **changes})


def reply(to: str, **changes):
    values = dict(
        from_address="desk@example.net", from_name="The Desk", to=to, subject="Re: Harbour opens",
        text="Your manuscript is published.\n\nhttps://example.org/?p=1\n", html="<p>published</p>",
        message_id="reply-1@example.net", in_reply_to="orig-1@example.org", references=["root@example.org"],
        language="en",
    )  # fmt: skip
    return build_reply(**{**values, **changes})


def test_a_reply_goes_over_starttls_with_login_in_the_senders_thread(smtp_server):
    calls = []
    answer = send(config(smtp_server), reply("ann-1@example.org"), before_data=lambda: calls.append("data"))

    assert calls == ["data"] and "accepted" in answer
    [envelope] = [e for e in smtp_server.envelopes() if "ann-1@example.org" in e["rcpt_tos"]]
    assert envelope["login"] == smtp_server.user and envelope["mail_from"] == "desk@example.net"
    message = envelope["message"]
    assert message["Message-ID"] == "<reply-1@example.net>"
    assert message["In-Reply-To"] == "<orig-1@example.org>"
    assert message["References"] == "<root@example.org> <orig-1@example.org>"
    assert message["Subject"] == "Re: Harbour opens" and message["Auto-Submitted"] == "auto-replied"
    assert message["From"] == "The Desk <desk@example.net>"
    text = message.get_body(("plain",)).get_content().replace("\r\n", "\n")
    assert text == "Your manuscript is published.\n\nhttps://example.org/?p=1\n"
    assert message.get_body(("html",)).get_content().strip() == "<p>published</p>"


def test_implicit_tls():
    server = SmtpServer(tls="ssl").start()
    try:
        send(config(server), reply("ssl@example.org"))
        assert len(server.messages("ssl@example.org")) == 1
    finally:
        server.stop()


def test_a_wrong_password_is_a_permanent_error_that_names_no_password(smtp_server):
    with pytest.raises(AuthenticationFailed) as failure:
        send(config(smtp_server, password="Wrong-Passw0rd-xyzzy"), reply("nobody-1@example.org"))
    assert "535" in failure.value.message and "Wrong-Passw0rd-xyzzy" not in failure.value.message
    assert not failure.value.transient
    assert smtp_server.messages("nobody-1@example.org") == []


def test_an_untrusted_certificate_and_an_unreachable_server(smtp_server):
    with pytest.raises(ConfigurationError, match="not trusted"):
        send(config(smtp_server, ca_file=None), reply("nobody-2@example.org"))
    with pytest.raises(ConnectionFailed) as failure:
        send(config(smtp_server, port=free_port()), reply("nobody-2@example.org"))
    assert failure.value.transient
    assert smtp_server.messages("nobody-2@example.org") == []


def test_nothing_is_sent_when_the_caller_cannot_record_the_start_of_data(smtp_server):
    def refuse():
        raise RuntimeError("claim lost")

    with pytest.raises(RuntimeError, match="claim lost"):
        send(config(smtp_server), reply("nobody-3@example.org"), before_data=refuse)
    assert smtp_server.messages("nobody-3@example.org") == []


def test_plain_smtp_with_a_password_is_refused_except_on_this_machine():
    with pytest.raises(ConfigurationError, match="unencrypted"):
        SmtpConfig(host="smtp.example.net", tls="plain", user="u", password="p")
    assert SmtpConfig(host="127.0.0.1", tls="plain", user="u", password="p").port == 25
    assert SmtpConfig(host="smtp.example.net").port == 587 and SmtpConfig(host="x", tls="ssl").port == 465


# --- templates and language -----------------------------------------------------------------------


FACTS = {"title": "Harbour opens", "filename": "harbour.docx", "link": "https://news.example.org/harbour",
         "status": "publish", "changed_blocks": 2, "total_blocks": 9, "words_changed": 14}  # fmt: skip


def test_published_reply_in_english_and_german():
    english = render_reply(
        "succeeded", FACTS, ReplySettings(enabled=True), language="en", original_subject="Harbour"
    )
    assert english.subject == "Re: Harbour" and english.language == "en"
    assert english.text == (
        'Your manuscript "Harbour opens" is published.\n\nhttps://news.example.org/harbour\n\n'
        "The editor changed 2 of 9 paragraphs (14 words).\n\nCopydesk\n"
    )
    assert '<a href="https://news.example.org/harbour">' in english.html
    german = render_reply(
        "succeeded", FACTS, ReplySettings(enabled=True), language="de", original_subject="Re: Hafen"
    )
    assert german.subject == "Re: Hafen" and german.language == "de"
    assert "ist veröffentlicht" in german.text and "2 von 9 Absätzen" in german.text
    # a language without templates falls back to the mailbox's, then English
    assert render_reply("failed", FACTS, ReplySettings(language="de"), language="ja").language == "de"
    assert render_reply("failed", FACTS, ReplySettings(), language="ja").language == "en"


def test_failure_reply_says_which_file_why_and_what_to_do():
    facts = {"filename": "broken.docx", "error": "the file is damaged", "error_code": "invalid_document"}
    text = render_reply("failed", facts, ReplySettings()).text
    assert "broken.docx could not be published" in text and "Why: the file is damaged" in text
    assert "save it again as .docx" in text
    other = render_reply("failed", {**facts, "error_code": "unexpected"}, ReplySettings()).text
    assert "There is nothing you need to do now" in other


def test_a_mailbox_overrides_a_template_and_a_thread_starting_reply_uses_the_subject_template():
    settings = ReplySettings.model_validate(
        {
            "templates": {
                "succeeded": {"fr": {"subject": "Publié : {{ title }}", "body": "Voilà : {{ link }}"}}
            }
        }
    )
    out = render_reply("succeeded", FACTS, settings, language="fr")
    assert out.language == "fr" and out.subject == "Publié : Harbour opens"
    assert out.text == "Voilà : https://news.example.org/harbour\n"
    with pytest.raises(ValueError, match="not a valid template"):
        ReplySettings.model_validate({"templates": {"failed": {"en": {"body": "{% if %}"}}}})
    with pytest.raises(ValueError, match="should match pattern"):
        ReplySettings.model_validate({"templates": {"failed": {"English": {"body": "fine"}}}})


def test_values_from_the_manuscript_are_text_in_the_html_part_and_templates_are_sandboxed():
    out = render_reply("succeeded", {**FACTS, "title": "<script>alert(1)</script>"}, ReplySettings())
    assert "<script>" not in out.html and "&lt;script&gt;" in out.html
    sandboxed = ReplySettings.model_validate(
        {"templates": {"failed": {"en": {"body": "{{ ''.__class__.__mro__[1].__subclasses__() }}"}}}}
    )
    with pytest.raises(ConfigurationError, match="could not be rendered"):
        render_reply("failed", FACTS, sandboxed)
    assert text_to_html("a & b\nc") == (
        '<!DOCTYPE html>\n<html><body style="font-family: sans-serif">\n<p>a &amp; b<br>\nc</p>\n</body></html>\n'
    )


@pytest.mark.parametrize(
    ("header", "text", "expected"),
    [
        ("de-AT, en", "", "de"),
        (None, "Anbei der Bericht über die Sitzung, bitte veröffentlichen", "de"),
        (None, "Please find attached the story for tomorrow", "en"),
        (None, "Ci-joint le texte pour demain, merci", "fr"),
        (None, "Harbour", None),
    ],
)
def test_language_detection(header, text, expected):
    assert detect_language(header, text) == expected


# --- webhooks -------------------------------------------------------------------------------------


def test_a_delivery_is_signed_as_standard_webhooks_describe(webhook_receiver):
    secret = new_secret()
    webhook_receiver.expect("pure", secret, fail_first=1)
    payload = {"type": "run.succeeded", "data": {"title": "Grüße"}}
    with pytest.raises(ServiceUnavailable, match="answered 500"):
        deliver(webhook_receiver.url("pure"), secret, "delivery-1", payload)
    assert deliver(webhook_receiver.url("pure"), secret, "delivery-1", payload) == 204
    first, second = webhook_receiver.requests("pure")
    assert first["verified"] and second["verified"] and second["body"] == payload
    assert first["headers"]["webhook-id"] == second["headers"]["webhook-id"] == "delivery-1"
    # the receiver's check is real: another secret does not verify
    assert not verify(
        new_secret(), second["headers"], b'{"data":{"title":"Gr\\u00fc\\u00dfe"},"type":"run.succeeded"}'
    )
