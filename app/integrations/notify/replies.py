"""What a reply to a manuscript's sender says: a mailbox's reply settings, the built-in templates
(reply_templates.yaml: English and German) and their rendering into a subject, plain text and simple
HTML. Pure: facts in, text out.

Templates are Jinja2, rendered in a sandbox (a mailbox's admin writes them; they see only the facts
given). The HTML part is made from the rendered text (escaped, paragraphs, links), so a title that
contains markup is shown as text, never run."""

from __future__ import annotations

import functools
import html
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from jinja2 import TemplateError
from jinja2.sandbox import SandboxedEnvironment
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

from app.core.errors import ConfigurationError

Event = Literal["succeeded", "awaiting_approval", "failed"]
EVENTS: tuple[str, ...] = ("succeeded", "awaiting_approval", "failed")
ADDRESS = r"^[^@\s<>]+@[^@\s<>]+$"
Language = Annotated[str, StringConstraints(pattern=r"^[a-z]{2,3}$")]  # ISO 639: "en", "de", "fr"…
TEMPLATES_FILE = Path(__file__).with_name("reply_templates.yaml")
_URL = re.compile(r"https?://[^\s<>\"']+[^\s<>\"'.,;:!?)]")


class ReplyTemplate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    subject: str | None = Field(
        None, max_length=500, description="for replies that start a thread (API uploads)"
    )
    body: str = Field(
        min_length=1, max_length=20_000, description="Jinja2, plain text; the HTML is made from it"
    )

    @field_validator("subject", "body")
    @classmethod
    def _compiles(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                _environment().from_string(value)
            except TemplateError as exc:
                raise ValueError(f"not a valid template: {exc}") from None
        return value


class ReplySettings(BaseModel):
    """A mailbox's replies (its options' "replies"). Off unless enabled."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = False
    events: list[Event] = Field(default_factory=lambda: list(EVENTS))
    from_address: str | None = Field(None, max_length=320, pattern=ADDRESS, description="default: SMTP_FROM")
    from_name: str = Field("Copydesk", max_length=200)
    language: Language = Field("en", description="when the sender's language has no template")
    # templates[event][language]: a mailbox's own wording, in any language (also one built in).
    templates: dict[Event, dict[Language, ReplyTemplate]] = Field(default_factory=dict)


@dataclass
class Reply:
    subject: str
    text: str
    html: str
    language: str


@functools.lru_cache(maxsize=1)
def _environment() -> SandboxedEnvironment:
    return SandboxedEnvironment(
        autoescape=False, trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True
    )


@functools.lru_cache(maxsize=1)
def builtin() -> dict[str, dict[str, Any]]:
    """The built-in texts, by language."""
    return yaml.safe_load(TEMPLATES_FILE.read_text(encoding="utf-8"))


def choose_language(event: str, wanted: str | None, settings: ReplySettings) -> str:
    """The sender's language when there is a template of this event in it, else the mailbox's, else English."""
    for language in (wanted, settings.language, "en"):
        if language and (
            language in settings.templates.get(event, {}) or event in builtin().get(language, {})
        ):
            return language
    return "en"


def change_line(phrases: dict[str, str], changed: int, total: int, words: int) -> str:
    if not changed:
        return phrases["none"]
    return phrases["some"].format(changed=changed, total=total, words=words)


def render_reply(
    event: str,
    facts: dict[str, Any],
    settings: ReplySettings,
    *,
    language: str | None = None,
    original_subject: str | None = None,
) -> Reply:
    """The reply for `event` from `facts` (title, filename, link, status, error, error_code,
    changed_blocks, total_blocks, words_changed, run_id). A reply to a message is "Re: <its subject>";
    otherwise the template's subject. ConfigurationError when a template cannot be rendered."""
    language = choose_language(event, language, settings)
    texts = builtin().get(language) or builtin()["en"]
    english = builtin()["en"]
    template = settings.templates.get(event, {}).get(language) or ReplyTemplate(
        **texts.get(event, english[event])
    )
    statuses = texts.get("statuses", english["statuses"])
    advice = texts.get("advice", english["advice"])
    context = {
        **{k: v for k, v in facts.items() if v is not None},
        "subject": original_subject or "",
        "status": statuses.get(facts.get("status") or "", facts.get("status") or ""),
        "changes": change_line(
            texts.get("changes", english["changes"]),
            int(facts.get("changed_blocks") or 0),
            int(facts.get("total_blocks") or 0),
            int(facts.get("words_changed") or 0),
        ),
        "advice": advice.get(facts.get("error_code") or "", advice["default"]),
    }
    environment = _environment()
    try:
        body = environment.from_string(template.body).render(context)
        subject_template = template.subject or english[event]["subject"]
        subject = environment.from_string(subject_template).render(context)
    except TemplateError as exc:
        raise ConfigurationError(
            f"the {language} reply template for {event} could not be rendered: {exc}"
        ) from None
    if original_subject is not None:
        subject = reply_subject(original_subject)
    text = _tidy(body)
    return Reply(subject=one_line(subject), text=text, html=text_to_html(text), language=language)


def reply_subject(original: str) -> str:
    original = one_line(original)
    return original if re.match(r"(?i)^re\s*:", original) else f"Re: {original}".rstrip()


def one_line(value: str) -> str:
    """Header-safe: no line breaks, no runs of blanks."""
    return " ".join(value.split())[:900]


def _tidy(text: str) -> str:
    """No trailing blanks, at most one empty line in a row, one final newline."""
    lines = [line.rstrip() for line in text.strip().splitlines()]
    out: list[str] = []
    for line in lines:
        if line or (out and out[-1]):
            out.append(line)
    return "\n".join(out) + "\n"


def text_to_html(text: str) -> str:
    """Simple HTML of a plain-text reply: escaped, a paragraph per block, line breaks kept, links."""
    paragraphs = [p for p in re.split(r"\n\s*\n", text.strip()) if p.strip()]

    def linked(escaped: str) -> str:
        return _URL.sub(lambda m: f'<a href="{m.group(0)}">{m.group(0)}</a>', escaped)

    body = "\n".join(
        f"<p>{linked(html.escape(p)).replace(chr(10), '<br>' + chr(10))}</p>" for p in paragraphs
    )
    return f'<!DOCTYPE html>\n<html><body style="font-family: sans-serif">\n{body}\n</body></html>\n'
