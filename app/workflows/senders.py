"""Whether a mailed manuscript's sender is who the From header says: the one place that decides it.

Replies go only to proven senders: answering a forged From address would send Copydesk's mail to
someone who never wrote (backscatter)."""

from __future__ import annotations

from sqlalchemy.orm import object_session

from app.integrations.mailbox.config import sender_allowed
from app.models import MailMessage, Source


def sender_is_proven(message: MailMessage) -> bool:
    """Today: what the mailbox recorded about the sender, i.e. the message was let in because its
    From address is on the mailbox's allowed senders (an address or its @domain). A mailbox that
    lets anyone in proves nothing, and neither does a message it did not let in.

    This will switch to the proof of the From address (DKIM/SPF/DMARC results checked when the
    message is read) once intake records it; callers keep calling this function."""
    if not message.sender or message.state == "unauthorized":
        return False
    session = object_session(message)
    source = session.get(Source, message.source_id) if session is not None else None
    allowed = tuple(source.allowed_senders or ()) if source is not None else ()
    return bool(allowed) and sender_allowed(allowed, message.sender)
