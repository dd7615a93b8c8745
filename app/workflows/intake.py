"""Intake shared by the API and the mailbox: check the manuscript, keep the original, create the
document and its run.

Order matters: the bytes are validated first (nothing is written for a bad file), the original is
written to storage next, and only then are rows created, so a document row always points at bytes
that exist. The same content is one document whichever way it arrives (API upload, e-mail, a re-sent
message), and one post.

A resubmission is never silent (`resubmit`): with no new options it is the existing document and its
latest run (`duplicate`); with options that change what the document asked for (another status, other
tags…) the document takes them and a new run of it applies them, which updates the document's post
(`updated`); while the document's latest run has not ended, new options are refused (StillRunning,
409): two runs of one document at once would race for its post.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import PurePath
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.core.errors import InvalidDocument, PermanentError
from app.documents import detect_kind
from app.models import RUN_TERMINAL, Article, Document, Run, Site
from app.services import storage
from app.workflows import state
from app.workflows.schema import get_workflow

CONTENT_TYPES = {
    "docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "doc": "application/msword",
    "html": "text/html; charset=utf-8",  # a mail body made into a document (mail intake only)
}


@dataclass
class Manuscript:
    """A checked manuscript, ready to be kept."""

    data: bytes
    filename: str
    kind: str
    sha256: str
    document_id: uuid.UUID

    @property
    def dedupe_key(self) -> str:
        return f"sha256:{self.sha256}"

    @property
    def original_key(self) -> str:
        return f"manuscripts/{self.document_id}/{self.sha256}.{self.kind}"


@dataclass
class Submission:
    document: Document
    run: Run | None
    duplicate: bool  # the same content was submitted before: this is its document
    updated: bool = False  # a duplicate whose new options `run` applies (to send, like a new run)


class StillRunning(PermanentError):
    """New options for a document whose latest run has not ended."""

    code = "invalid_state"


def safe_filename(name: str) -> str:
    base = PurePath((name or "").replace("\\", "/")).name.strip() or "manuscript"
    return "".join(ch for ch in base if ch.isprintable())[:255]


def check(data: bytes, filename: str, *, kind: str | None = None) -> Manuscript:
    """Validate the bytes (InvalidDocument for anything that is not Word) and name the document.
    `kind="html"` is a message body that mail intake made into a document (UTF-8 HTML): never
    inferred from the bytes, so an API upload is always Word."""
    if kind == "html":
        _check_html(data, filename)
    else:
        kind = detect_kind(data, filename)
    return Manuscript(data, safe_filename(filename), kind, hashlib.sha256(data).hexdigest(), uuid.uuid4())


def _check_html(data: bytes, filename: str) -> None:
    if not data.strip():
        raise InvalidDocument(f"{filename or 'the message body'} is empty")
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidDocument(f"{filename or 'the message body'} is not UTF-8 text") from None


def find_duplicate(session: Session, manuscript: Manuscript) -> Submission | None:
    existing = session.execute(
        select(Document).where(Document.dedupe_key == manuscript.dedupe_key)
    ).scalar_one_or_none()
    if existing is None:
        return None
    return Submission(existing, _latest_run(session, existing.id), duplicate=True)


def _latest_run(session: Session, document_id: uuid.UUID) -> Run | None:
    """The document's newest run, as the database has it now (its state moves on in the workers)."""
    return session.execute(
        select(Run)
        .where(Run.document_id == document_id)
        .order_by(Run.created_at.desc())
        .limit(1)
        .execution_options(populate_existing=True)
    ).scalar_one_or_none()


def keep_original(manuscript: Manuscript) -> None:
    storage().put(manuscript.original_key, manuscript.data, content_type=CONTENT_TYPES[manuscript.kind])


def published_post(session: Session, document_id: uuid.UUID) -> tuple[uuid.UUID | None, str | None]:
    """The document's article and its post's URL (on its WordPress site, or the preview's), once
    there are."""
    row = session.execute(select(Article.id, Article.wp_url).where(Article.document_id == document_id)).first()
    return (row.id, row.wp_url) if row is not None else (None, None)


def _merged(options: dict[str, Any] | None, changed: dict[str, Any]) -> dict[str, Any]:
    out = dict(options or {})
    if {"category", "categories"} & set(changed):  # one category, or several: the new ones replace both
        out.pop("category", None)
        out.pop("categories", None)
    return {**out, **changed}


def _same(old: Any, new: Any) -> bool:
    """Whether an option asks for what it asked before (tags in another order are the same tags)."""
    if isinstance(old, list) and isinstance(new, list):
        return sorted(map(str, old)) == sorted(map(str, new))
    return old == new


def _site_id(session: Session, options: dict[str, Any]) -> uuid.UUID | None:
    name = options.get("site")
    return session.execute(select(Site.id).where(Site.name == name)).scalar_one_or_none() if name else None


def resubmit(
    session: Session,
    found: Submission,
    given: dict[str, Any],
    *,
    workflow: str = "publish_document",
    submitted_by: uuid.UUID | None = None,
    source_id: uuid.UUID | None = None,
    mail_message_id: uuid.UUID | None = None,
    unsent: Collection[Run] = (),
) -> Submission:
    """The same content again, with the options this submission set (`given`: its form fields or
    directives, not its defaults). Nothing new: `found`, as it is now. New or changed options: the
    document's options take them and a new run (queued; the caller sends it after committing)
    applies them to the document's post — or, when the latest run was made in this transaction and
    is not sent yet (`unsent`: an earlier message of the same poll), that run takes them. While the
    latest run has not ended: StillRunning, whose message says how to update."""
    # The document's row, locked until the caller commits: two resubmissions at once make one run.
    document = session.execute(
        select(Document)
        .where(Document.id == found.document.id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).scalar_one()
    latest = _latest_run(session, document.id)
    before = document.options or {}
    changed = {k: v for k, v in given.items() if v not in (None, "", []) and not _same(before.get(k), v)}
    if not changed:
        return Submission(document, latest, duplicate=True)
    if latest is not None and any(latest is run for run in unsent):
        latest.payload = _merged(latest.payload, changed)
        document.options = _merged(before, changed)
        return Submission(document, latest, duplicate=True, updated=True)
    if latest is not None and latest.state not in RUN_TERMINAL:
        wait = "approve or reject it" if latest.state == "awaiting_approval" else "wait until it has ended"
        raise StillRunning(
            f"{document.filename} was submitted before (document {document.id}) and its run {latest.id} "
            f"is {latest.state.replace('_', ' ')}: {wait}, then send it again with the new options "
            f"({', '.join(sorted(changed))}) to update its post.",
            details={"document_id": str(document.id), "run_id": str(latest.id)},
        )
    document.options = _merged(before, changed)
    if "site" in changed:
        document.site_id = _site_id(session, document.options)
    run = state.create_run(
        session,
        get_workflow(workflow),
        document.options,
        document_id=document.id,
        source_id=source_id,
        mail_message_id=mail_message_id,
        created_by=submitted_by,
    )
    run.launches = 1
    return Submission(document, run, duplicate=True, updated=True)


def record(
    session: Session,
    manuscript: Manuscript,
    *,
    origin: str = "api",
    workflow: str = "publish_document",
    payload: dict[str, Any] | None = None,
    options: dict[str, Any] | None = None,
    submitted_by: uuid.UUID | None = None,
    source_id: uuid.UUID | None = None,
    mail_message_id: uuid.UUID | None = None,
    site_id: uuid.UUID | None = None,
) -> Submission:
    """Create the document and its run (queued; the caller sends it after committing)."""
    wf = get_workflow(workflow)
    if site_id is None:  # a named site binds the document to it (its media prefix, its post)
        site_id = _site_id(session, payload or {})
    document = Document(
        id=manuscript.document_id,
        filename=manuscript.filename,
        kind=manuscript.kind,
        content_type=CONTENT_TYPES[manuscript.kind],
        size=len(manuscript.data),
        sha256=manuscript.sha256,
        original_key=manuscript.original_key,
        origin=origin,
        dedupe_key=manuscript.dedupe_key,
        source_id=source_id,
        mail_message_id=mail_message_id,
        site_id=site_id,
        submitted_by=submitted_by,
        options=options or {},
    )
    session.add(document)
    session.flush()
    run = state.create_run(
        session,
        wf,
        payload or {},
        document_id=document.id,
        source_id=source_id,
        mail_message_id=mail_message_id,
        created_by=submitted_by,
    )
    run.launches = 1
    return Submission(document, run, duplicate=False)


def submit(session: Session, data: bytes, filename: str, *, kind: str | None = None, **kwargs) -> Submission:
    """All of intake in one call, for synchronous callers (the mailbox task, the CLI). The caller
    commits, then sends `submission.run` with `engine.send` unless it is a duplicate."""
    manuscript = check(data, filename, kind=kind)
    duplicate = find_duplicate(session, manuscript)
    if duplicate is not None:
        return duplicate
    keep_original(manuscript)
    return record_or_duplicate(session, manuscript, **kwargs)


def record_or_duplicate(session: Session, manuscript: Manuscript, **kwargs) -> Submission:
    """`record`, or the existing document when the same content arrived at the same moment by
    another way (another upload, a mail poll): the unique dedupe key decides who was first."""
    try:
        with session.begin_nested():
            return record(session, manuscript, **kwargs)
    except IntegrityError:
        found = find_duplicate(session, manuscript)
        if found is None:
            raise
        return found
