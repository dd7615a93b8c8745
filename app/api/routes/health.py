from __future__ import annotations

import asyncio

from fastapi import APIRouter, Response, status
from fastapi.concurrency import run_in_threadpool
from sqlalchemy import text

from app.core.broker import celery_app
from app.core.config import get_settings
from app.core.connections import async_redis_client
from app.core.db import async_engine

router = APIRouter(tags=["health"])


@router.get("/health")
async def health() -> dict[str, str]:
    """The process is up (no dependency checked)."""
    return {"status": "ok"}


@router.get("/ready")
async def ready(response: Response) -> dict:
    """Database, Redis (the broker) reachable, and at least one worker seen recently."""
    checks: dict[str, str] = {}

    async def database() -> None:
        async with async_engine().connect() as conn:
            await conn.execute(text("select 1"))

    async def redis_ping() -> None:
        client = async_redis_client(get_settings().redis_url or "redis://invalid")
        try:
            await client.ping()
        finally:
            await client.aclose()

    async def worker() -> None:
        replies = await run_in_threadpool(lambda: celery_app.control.ping(timeout=1.0))
        if not replies:
            raise RuntimeError("no worker answered a ping")

    for name, check in (("database", database), ("redis", redis_ping), ("worker", worker)):
        try:
            await asyncio.wait_for(check(), timeout=3)
            checks[name] = "ok"
        except Exception as exc:  # report, do not raise: this endpoint is a diagnosis
            checks[name] = f"unavailable: {type(exc).__name__}: {exc}"[:300]
    ok = all(v == "ok" for v in checks.values())
    response.status_code = status.HTTP_200_OK if ok else status.HTTP_503_SERVICE_UNAVAILABLE
    return {"status": "ready" if ok else "not ready", "checks": checks}
