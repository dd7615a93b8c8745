from __future__ import annotations

import logging
import uuid
from typing import Annotated

import kombu.exceptions
from fastapi import APIRouter, File, Form, HTTPException, Request, Response, UploadFile, status
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from sqlalchemy import select

from app.api.deps import CurrentUser, Session, get_or_404
from app.api.schemas import DocumentOut, EmailAddress, Submitted
from app.api.views import run_summary
from app.core.config import get_settings
from app.core.errors import LimitExceeded, NotFound, PermissionDenied
from app.models import Document
from app.services import storage
from app.services.mailboxes import source_id_by_ref
from app.workflows import engine, intake, state
from app.workflows.schema import get_workflow

router = APIRouter(prefix="/documents", tags=["documents"])
log = logging.getLogger("copydesk.api")


async def read_limited(upload: UploadFile, limit: int) -> bytes:
    """The upload's bytes, refusing (413) as soon as it passes the limit."""
    chunks, size = [], 0
    while chunk := await upload.read(1024 * 1024):
        size += len(chunk)
        if size > limit:
            raise LimitExceeded(f"the file is larger than the limit of {limit // (1024 * 1024)} MB")
        chunks.append(chunk)
    return b"".join(chunks)


@router.post(
    "",
    response_model=Submitted,
    status_code=status.HTTP_201_CREATED,
    responses={
        200: {
            "description": "the same content was submitted before: its document, its article and post URL, "
            "and the run that applies the new options (`updated`) or its latest run (no new options)"
        },
        409: {"description": "the same content with new options while its run has not ended: how to update"},
    },
)
async def submit_document(
    request: Request,
    response: Response,
    session: Session,
    user: CurrentUser,
    file: Annotated[UploadFile, File(description="a Word manuscript (.docx or .doc)")],
    workflow: Annotated[str, Form()] = "publish_document",
    status_: Annotated[str | None, Form(alias="status")] = None,
    category: Annotated[str | None, Form()] = None,
    tags: Annotated[str | None, Form(description="comma-separated")] = None,
    site: Annotated[str | None, Form()] = None,
    date: Annotated[str | None, Form(description="ISO 8601 publish date")] = None,
    slug: Annotated[str | None, Form()] = None,
    excerpt: Annotated[str | None, Form()] = None,
    reply_to: Annotated[EmailAddress | None, Form(description="an address told when the run ends")] = None,
) -> Submitted:
    """Upload a manuscript: the original is kept, a document and a run are created, the workflow starts."""
    limit = get_settings().max_upload_bytes
    if int(request.headers.get("content-length") or 0) > limit + 64 * 1024:
        raise LimitExceeded(f"the upload is larger than the limit of {limit // (1024 * 1024)} MB")
    wf = get_workflow(workflow)
    data = await read_limited(file, limit)
    options = {
        k: v
        for k, v in {
            "status": status_,
            "category": category,
            "tags": [t.strip() for t in tags.split(",") if t.strip()] if tags else None,
            "site": site,
            "date": date,
            "slug": slug,
            "excerpt": excerpt,
        }.items()
        if v
    }
    wf.payload_model.model_validate(options)  # 422 with the reason when an option is invalid
    manuscript = await run_in_threadpool(intake.check, data, file.filename or "")
    duplicate = await session.run_sync(intake.find_duplicate, manuscript)
    if duplicate is None:
        await run_in_threadpool(intake.keep_original, manuscript)
        submission = await session.run_sync(
            lambda s: intake.record_or_duplicate(
                s, manuscript, origin="api", workflow=workflow, payload=options,
                options={**options, "reply_to": reply_to} if reply_to else options, submitted_by=user.id,
            )
        )
    else:
        submission = duplicate
    if submission.duplicate:  # the same content again: new options update its post, else nothing new
        found = submission
        try:
            submission = await session.run_sync(
                lambda s: intake.resubmit(s, found, options, workflow=workflow, submitted_by=user.id)
            )
        except intake.StillRunning as exc:
            answer = await _answer(request, session, found)
            return JSONResponse(
                {"detail": exc.message, "code": exc.code, **answer.model_dump(mode="json")},
                status_code=status.HTTP_409_CONFLICT,
            )
    await session.commit()
    if submission.duplicate:
        response.status_code = status.HTTP_200_OK
    if (not submission.duplicate or submission.updated) and not await _send_or_leave_to_sweeper(
        session, submission.run
    ):
        response.status_code = status.HTTP_202_ACCEPTED
    return await _answer(request, session, submission)


async def _answer(request: Request, session, submission: intake.Submission) -> Submitted:
    """What a submission became: the document, its run, and for the same content sent again, the
    article and its post's URL."""
    run = submission.run
    article_id = url = None
    if submission.duplicate:
        article_id, url = await session.run_sync(intake.published_post, submission.document.id)
    return Submitted(
        document=DocumentOut.model_validate(submission.document),
        run=run_summary(run) if run else None,
        duplicate=submission.duplicate,
        updated=submission.updated,
        run_url=str(request.url_for("get_run", run_id=run.id)) if run else None,
        article_id=article_id,
        url=url,
    )


async def _send_or_leave_to_sweeper(session, run) -> bool:
    """Send the run's canvas; False when the broker cannot be reached. The document and its run are
    already committed: the run is marked unsent and the sweeper sends it at its next pass once Redis
    answers again (engine.NOT_SENT), so the upload is accepted rather than refused half-written."""
    try:
        await run_in_threadpool(engine.send, run)
        return True
    except kombu.exceptions.OperationalError as exc:
        log.warning("run %s recorded but not sent (%s): left to the sweeper", run.id, exc)
        await session.run_sync(lambda s: state.add_event(s, run.id, "run", "queued", message=engine.NOT_SENT))
        await session.commit()
        return False


@router.get("", response_model=list[DocumentOut])
async def list_documents(
    session: Session, user: CurrentUser, limit: int = 50, offset: int = 0, source: str | None = None
) -> list[Document]:
    """Documents, newest first; `source` (a mailbox's name or id): only those that came from it."""
    limit = max(1, min(limit, 500))
    query = select(Document).order_by(Document.created_at.desc()).limit(limit).offset(max(0, offset))
    if source:
        query = query.where(Document.source_id == source_id_by_ref(source))
    return list((await session.execute(query)).scalars())


@router.get("/{document_id}", response_model=DocumentOut)
async def get_document(document_id: uuid.UUID, session: Session, user: CurrentUser) -> Document:
    return await get_or_404(session, Document, document_id, "document")


@router.get("/{document_id}/original", response_class=Response)
async def download_original(document_id: uuid.UUID, session: Session, user: CurrentUser) -> Response:
    """The manuscript exactly as it was received."""
    doc = await get_or_404(session, Document, document_id, "document")
    if user.role != "admin" and doc.submitted_by not in (None, user.id) and doc.origin == "api":
        raise PermissionDenied("only its submitter or an admin can download this manuscript")
    try:
        data = await run_in_threadpool(storage().get, doc.original_key)
    except NotFound:
        raise HTTPException(status.HTTP_410_GONE, detail="the original is missing from storage") from None
    quoted = doc.filename.encode("ascii", "replace").decode().replace('"', "")
    return Response(
        data,
        media_type=doc.content_type,
        headers={"Content-Disposition": f'attachment; filename="{quoted}"'},
    )
