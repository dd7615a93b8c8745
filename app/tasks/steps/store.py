from __future__ import annotations

import hashlib

from app.core.db import session_scope
from app.core.errors import InvalidDocument
from app.documents import detect_kind
from app.services import storage
from app.tasks.steps.common import document
from app.workflows.registry import StepContext, implements


@implements("store")
def store(ctx: StepContext) -> dict:
    """Check the kept original: present in storage, unchanged, and really what it claims to be."""
    with session_scope() as session:
        doc = document(session, ctx)
        key, expected, filename, kind_recorded = doc.original_key, doc.sha256, doc.filename, doc.kind
    data = storage().get(key)
    if hashlib.sha256(data).hexdigest() != expected:
        raise InvalidDocument(f"the stored original of {filename} does not match its checksum")
    # A mail body made into a document (html) was checked at intake; Word files are checked again here.
    kind = "html" if kind_recorded == "html" else detect_kind(data, filename)
    return {"kind": kind, "size": len(data), "sha256": expected, "summary": f"{kind}, {len(data)} bytes"}
