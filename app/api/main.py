"""The FastAPI application factory (`uvicorn app.api.main:app`)."""

from __future__ import annotations

import logging
import re
import time
import uuid

import sqlalchemy.exc
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import ValidationError

from app.api.routes import (
    articles,
    auth,
    documents,
    health,
    media,
    notifications,
    observability,
    runs,
    sites,
    sources,
    users,
    web,
    workflows,
)
from app.core.config import get_settings
from app.core.errors import CopydeskError
from app.core.logging import configure_logging, log_context
from app.services import storage

log = logging.getLogger("copydesk.api")
access_log = logging.getLogger("copydesk.api.access")

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


# Ids in a path that name what a request is about, attached to every log line of the request.
_PATH_IDS = re.compile(r"^/(?:ui/)?(runs|documents|articles|preview)/([0-9a-fA-F-]{36})(?:/|$)")
_PATH_ID_FIELD = {
    "runs": "run_id", "documents": "document_id", "articles": "article_id", "preview": "article_id",
}
_SAFE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")
_QUIET_PATHS = ("/health", "/ready", "/metrics")


class RequestLogContext:
    """ASGI middleware: every log line of a request carries a request id (the caller's X-Request-ID
    when it is a plain token, else a new one; echoed in the response) and the run, document or
    article id found in the path; one access line per request (path only: query strings can carry
    preview tokens and signatures)."""

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = dict(scope.get("headers") or []).get(b"x-request-id", b"").decode("latin-1")
        request_id = incoming if _SAFE_REQUEST_ID.match(incoming) else uuid.uuid4().hex
        path = scope.get("path", "")
        fields = {"request_id": request_id}
        if match := _PATH_IDS.match(path):
            fields[_PATH_ID_FIELD[match.group(1)]] = match.group(2).lower()
        status_code = 500
        started = time.perf_counter()
        logged = False

        def log_access() -> None:
            nonlocal logged
            logged = True
            ms = (time.perf_counter() - started) * 1000
            access_log.log(
                logging.DEBUG if path in _QUIET_PATHS else logging.INFO,
                "%s %s %s %.0fms",
                scope.get("method"),
                path,
                status_code,
                ms,
                extra={
                    "method": scope.get("method"),
                    "path": path,
                    "status": status_code,
                    "duration_ms": round(ms, 1),
                },
            )

        async def send_with_id(message) -> None:
            nonlocal status_code
            if message["type"] == "http.response.start":
                status_code = message["status"]
                message["headers"] = [*message.get("headers", []), (b"x-request-id", request_id.encode())]
            elif message["type"] == "http.response.body" and not message.get("more_body") and not logged:
                log_access()  # before the last byte leaves: the line exists once the client has the answer
            await send(message)

        with log_context(**fields):
            try:
                await self.app(scope, receive, send_with_id)
            finally:
                if not logged:  # no complete response (an error, or the client went away)
                    log_access()


def _refused_value(exc: sqlalchemy.exc.DBAPIError) -> bool:
    """A data exception (SQLSTATE class 22), from the server or the driver's own check of a parameter."""
    if isinstance(exc, sqlalchemy.exc.DataError):
        return True
    for error in (exc.orig, getattr(exc.orig, "__cause__", None)):
        state = str(getattr(error, "sqlstate", None) or getattr(error, "pgcode", None) or "")
        if state.startswith("22") or type(error).__name__ == "DataError":
            return True
    return False


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

    @app.exception_handler(sqlalchemy.exc.OperationalError)
    @app.exception_handler(sqlalchemy.exc.InterfaceError)
    async def database_unavailable(request: Request, exc: Exception) -> JSONResponse:
        log.error("%s %s: the database is unavailable (%s)", request.method, request.url.path, type(exc).__name__)
        return JSONResponse(
            {"detail": "the database is unavailable; try again shortly", "code": "unavailable"},
            status_code=503,
            headers={"Retry-After": "5"},
        )

    @app.exception_handler(sqlalchemy.exc.DBAPIError)
    async def value_refused(request: Request, exc: sqlalchemy.exc.DBAPIError) -> JSONResponse:
        # PostgreSQL (or its driver) refused a value that came with the request: a NUL character in a
        # text, a number beyond 64 bits (schemathesis found both). The caller's mistake, not a crash.
        if not _refused_value(exc):
            raise exc
        return JSONResponse(
            {"detail": "a value in the request cannot be stored or searched for (out of range, or a "
             "character such as NUL that text fields cannot hold)", "code": "invalid_request"},
            status_code=422,
        )

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

    for module in (
        auth, users, documents, workflows, runs, articles, media, health, sources, sites, observability, notifications
    ):
        app.include_router(module.router)
    web.mount(app)
    app.add_middleware(RequestLogContext)
    app.state.settings = settings
    # Build the storage backend now: a configuration error stops start-up, and oss2 is imported once,
    # in the main thread, not by the first request that needs it.
    storage()
    return app


def __getattr__(name: str):
    # `uvicorn app.api.main:app` builds the app on first access, after settings are in place.
    if name == "app":
        global app
        app = create_app()
        return app
    raise AttributeError(name)
