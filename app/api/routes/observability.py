"""GET /metrics: Prometheus metrics of the whole system (runs, steps, retries, queues, LLM usage).

No login: Prometheus scrapers usually carry no token, and like Flower's own /metrics this endpoint
exposes only aggregate counts labelled by workflow, step kind, queue and state — no titles, file
names, addresses, ids or secrets. Keep the API's /metrics (like Flower) on a private network, or
block it at the reverse proxy, if even those counts must stay private. See app/core/metrics.py.
"""

from __future__ import annotations

from fastapi import APIRouter, Response
from prometheus_client import CONTENT_TYPE_LATEST

from app.core import metrics

router = APIRouter(tags=["observability"])


@router.get(
    "/metrics",
    response_class=Response,
    responses={200: {"content": {CONTENT_TYPE_LATEST: {}}, "description": "Prometheus text format"}},
)
async def prometheus_metrics() -> Response:
    """Runs started/finished per workflow, runs by state, step durations per kind, retries, queue
    lengths and LLM tokens, read from PostgreSQL and Redis at scrape time (cached a few seconds)."""
    body = await metrics.render()
    return Response(body, media_type=CONTENT_TYPE_LATEST, headers={"Cache-Control": "no-store"})
