"""Files from local storage (the default backend): public media, signed private links, previews."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, HTTPException, Request, status
from fastapi.responses import FileResponse, HTMLResponse
from fastapi.templating import Jinja2Templates

from app.api.deps import Session, previewed_article
from app.integrations.storage import IMMUTABLE_CACHE, LocalStorage, guess_type
from app.services import storage

router = APIRouter(tags=["media"])
templates = Jinja2Templates(directory=str(__import__("pathlib").Path(__file__).parents[1] / "templates"))


def _local() -> LocalStorage:
    backend = storage()
    if not isinstance(backend, LocalStorage):
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail="media are served by the object storage, not here")
    return backend


@router.get("/media/{key:path}", response_class=FileResponse)
async def media(key: str) -> FileResponse:
    """A published image (public, content-addressed, cached forever)."""
    backend = _local()
    path = backend.path(f"media/{key}")
    if not path.is_file():
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail="no such media")
    return FileResponse(path, media_type=guess_type(key), headers={"Cache-Control": IMMUTABLE_CACHE})


@router.get("/files/{key:path}", response_class=FileResponse)
async def signed_file(key: str, expires: int, signature: str) -> FileResponse:
    """A private object through a signed, expiring link (what `Storage.url(key, expires=…)` gives)."""
    backend = _local()
    if not backend.verify(key, expires, signature):
        raise HTTPException(status.HTTP_403_FORBIDDEN, detail="the link is invalid or has expired")
    path = backend.path(key)
    if not path.is_file():
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail="no such file")
    return FileResponse(path, media_type=guess_type(key))


@router.get("/preview/{article_id}", response_class=HTMLResponse)
async def preview(article_id: uuid.UUID, token: str, request: Request, session: Session) -> HTMLResponse:
    """The article as it will read, with its images (link from the run: no login needed)."""
    article = await previewed_article(session, article_id, token)
    return templates.TemplateResponse(request, "preview.html", {"article": article})
