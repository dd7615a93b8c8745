"""The editors' web page (/ui): the runs with live progress, a run's timeline, preview beside the
original, the diff of the AI edit, approve/reject/resume/cancel, and an upload form.

Server-rendered shells (Jinja2, autoescaped) plus one small script (static/app.js, no build step).
Authentication is the API's own: the login form posts to /auth/token and the script keeps the
bearer token in sessionStorage (gone when the tab closes) and sends it as `Authorization: Bearer`
on every call, the event streams included (read with fetch, since EventSource cannot send headers).
No cookie is involved, so there is nothing for a cross-site request to ride on (no CSRF); the price
is that a script running in the page could read the token, which is why the pages forbid every
inline and third-party script (Content-Security-Policy) and the script only ever writes text
(textContent), never markup, for titles, file names, alt text and errors that come from manuscripts.
Manuscript HTML (the preview and the original) is shown only inside sandboxed iframes.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from pathlib import Path
from typing import Annotated, Literal

from fastapi import APIRouter, FastAPI, Query, Request, status
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from sqlalchemy import select
from sse_starlette.sse import EventSourceResponse

from app.api.deps import CurrentUser, Session, previewed_article
from app.api.views import run_summary, with_names
from app.core.db import async_sessions
from app.documents import resolve_images
from app.models import Asset, Run
from app.services import storage

HERE = Path(__file__).resolve().parents[1]
templates = Jinja2Templates(directory=str(HERE / "templates"))
router = APIRouter(tags=["web"])
RunState = Literal["queued", "running", "awaiting_approval", "succeeded", "failed", "cancelled"]

# The page's own script and style only; images from anywhere (the object storage's public host);
# frames only from this origin (the preview and the original, sandboxed by the page).
PAGE_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: https: http:; "
    "connect-src 'self'; frame-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'"
)
# The original as converted: no script at all, embeddable by the run page only.
ORIGINAL_CSP = (
    "default-src 'none'; img-src 'self' data: https: http:; style-src 'unsafe-inline'; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'self'"
)
STREAM_INTERVAL = 0.5


def _headers(csp: str = PAGE_CSP) -> dict[str, str]:
    return {
        "Content-Security-Policy": csp,
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
        "Cache-Control": "no-store",
    }


def _page(request: Request, name: str, **context) -> HTMLResponse:
    return templates.TemplateResponse(request, name, context, headers=_headers())


@router.get("/", include_in_schema=False)
async def root() -> RedirectResponse:
    return RedirectResponse("/ui/", status_code=status.HTTP_307_TEMPORARY_REDIRECT)


@router.get("/ui", include_in_schema=False)
async def ui_root() -> RedirectResponse:
    return RedirectResponse("/ui/", status_code=status.HTTP_307_TEMPORARY_REDIRECT)


@router.get("/ui/", response_class=HTMLResponse, include_in_schema=False)
async def runs_page(request: Request) -> HTMLResponse:
    return _page(request, "runs.html", page="runs")


@router.get("/ui/login", response_class=HTMLResponse, include_in_schema=False)
async def login_page(request: Request) -> HTMLResponse:
    return _page(request, "login.html", page="login")


@router.get("/ui/runs/{run_id}", response_class=HTMLResponse, include_in_schema=False)
async def run_page(request: Request, run_id: uuid.UUID) -> HTMLResponse:
    return _page(request, "run.html", page="run", run_id=str(run_id))


@router.get("/ui/original/{article_id}", response_class=HTMLResponse, include_in_schema=False)
async def original(article_id: uuid.UUID, token: str, request: Request, session: Session) -> HTMLResponse:
    """The article as converted, before the AI edit (same unguessable link token as its preview)."""
    article = await previewed_article(session, article_id, token)
    query = select(Asset).where(Asset.document_id == article.document_id)
    assets = (await session.execute(query)).scalars().all()

    def image_urls() -> dict[str, str]:
        # Published images by their public URL; the others (not uploaded yet) by a short signed link.
        backend = storage()
        return {a.key: a.url or backend.url(a.artifact_key, expires=900) for a in assets}

    urls = await run_in_threadpool(image_urls)
    # original_html was sanitized (nh3 allow-list) when the document was converted, like the preview's.
    body = resolve_images(article.original_html, urls)
    return templates.TemplateResponse(
        request, "original.html", {"article": article, "body": body}, headers=_headers(ORIGINAL_CSP)
    )


# --- the runs list, live ---------------------------------------------------------------------------


async def _runs(states: list[str] | None, limit: int) -> list[dict]:
    query = with_names(select(Run)).order_by(Run.created_at.desc()).limit(limit)
    if states:
        query = query.where(Run.state.in_(states))
    async with async_sessions()() as session:
        rows = (await session.execute(query)).all()
    out = []
    for run, filename, title in rows:
        item = run_summary(run, filename, title).model_dump(mode="json")
        item.update(updated_at=run.updated_at.isoformat())
        out.append(item)
    return out


@router.get("/ui/stream", response_class=EventSourceResponse, include_in_schema=False)
async def runs_stream(
    request: Request,
    session: Session,
    user: CurrentUser,
    state: Annotated[list[RunState] | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
):
    """The newest runs (as GET /runs, plus file name and title), live: a `runs` event with every run
    whose state or progress changed, and `order` (the ids shown, newest first) when the list changed."""
    await session.close()  # the login check is done: do not hold a database connection for the stream

    async def stream():
        sent: dict[str, tuple] = {}
        order: list[str] = []
        while True:
            runs = await _runs(list(state or []), limit)
            ids = [r["id"] for r in runs]
            changed = [r for r in runs if sent.get(r["id"]) != (r["state"], r["updated_at"])]
            if changed or ids != order:
                for r in changed:
                    sent[r["id"]] = (r["state"], r["updated_at"])
                order = ids
                yield {"event": "runs", "data": json.dumps({"runs": changed, "order": ids})}
            if await request.is_disconnected():
                return
            await asyncio.sleep(STREAM_INTERVAL)

    return EventSourceResponse(stream(), ping=15)


def mount(app: FastAPI) -> None:
    """The page routes and its static files (/ui/static)."""
    app.include_router(router)
    app.mount("/ui/static", StaticFiles(directory=str(HERE / "static")), name="ui-static")
