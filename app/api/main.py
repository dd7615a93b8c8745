"""The FastAPI application factory (`uvicorn app.api.main:app`)."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import ValidationError

from app.core.config import get_settings
from app.core.errors import CopydeskError
from app.core.logging import configure_logging

log = logging.getLogger("copydesk.api")

STATUS_BY_CODE = {
    "invalid_document": 422,
    "encrypted_document": 422,
    "limit_exceeded": 413,
    "not_found": 404,
    "forbidden": 403,
    "auth_failed": 502,  # a service behind us refused Copydesk's credentials (not the caller's)
    "invalid_state": 409,
    "invalid_workflow": 422,
    "configuration": 500,
    "dependency_missing": 503,
    "remote_error": 502,
}


def _status_for(exc: CopydeskError) -> int:
    if exc.code in STATUS_BY_CODE:
        return STATUS_BY_CODE[exc.code]
    return 503 if exc.transient else 400


def create_app() -> FastAPI:
    settings = get_settings()
    configure_logging()
    app = FastAPI(
        title="Copydesk",
        version="0.1.0",
        description="Word manuscripts in, WordPress posts out. Every route but /auth/token, /health, "
        "/ready, public media and preview links needs a bearer token.",
    )

    @app.exception_handler(CopydeskError)
    async def copydesk_error(request: Request, exc: CopydeskError) -> JSONResponse:
        status = _status_for(exc)
        if status >= 500:
            log.error("%s %s failed: %s", request.method, request.url.path, exc.message)
        return JSONResponse({"detail": exc.message, "code": exc.code}, status_code=status)

    @app.exception_handler(ValidationError)
    async def validation_error(request: Request, exc: ValidationError) -> JSONResponse:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'value'}: {e['msg']}" for e in exc.errors()
        )
        return JSONResponse({"detail": problems, "code": "invalid_request"}, status_code=422)

    @app.exception_handler(RequestValidationError)
    async def request_validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'][1:]) or e['loc'][0]}: {e['msg']}" for e in exc.errors()
        )
        return JSONResponse({"detail": problems, "code": "invalid_request"}, status_code=422)

    from app.api.routes import articles, auth, documents, health, media, runs, users, workflows

    for module in (auth, users, documents, workflows, runs, articles, media, health):
        app.include_router(module.router)
    app.state.settings = settings
    return app


def __getattr__(name: str):
    # `uvicorn app.api.main:app` builds the app on first access, after settings are in place.
    if name == "app":
        global app
        app = create_app()
        return app
    raise AttributeError(name)
