"""Telling people what became of a run: replies to a manuscript's sender (e-mail over SMTP) and
webhooks for integrations (signed JSON). Pure: the running system (app/tasks/notify.py) decides
who gets what, records every try and retries."""

from app.integrations.notify.language import detect_language
from app.integrations.notify.mail_out import DeliveryUnknown, SmtpConfig, build_reply, send
from app.integrations.notify.replies import EVENTS, Reply, ReplySettings, ReplyTemplate, render_reply
from app.integrations.notify.webhooks import deliver, new_secret

__all__ = [
    "EVENTS",
    "DeliveryUnknown",
    "Reply",
    "ReplySettings",
    "ReplyTemplate",
    "SmtpConfig",
    "build_reply",
    "deliver",
    "detect_language",
    "new_secret",
    "render_reply",
    "send",
]
