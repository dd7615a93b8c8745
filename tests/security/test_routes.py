"""Every route the API serves — in the OpenAPI document or not (the web page's shells, the docs, static
files) — is classified here, and each class is checked against the running API:

- PUBLIC: answers without a token (an explicit list, with the reason);
- LINK: an unguessable link (a preview token, a signed storage URL): refused (403) with a wrong one,
  never served without one;
- USER: 401 (with WWW-Authenticate: Bearer) without a token or with a bad one; an editor gets in;
- ADMIN: 401 without a token; 403 for an editor; an admin gets in.

A route added to the API without being added here fails test_every_route_is_classified: deciding
who may call it is part of adding it.
"""

from __future__ import annotations

import re
import uuid

import httpx
import pytest
from starlette.routing import Mount, Route

pytestmark = [pytest.mark.postgres]

PUBLIC = {
    ("POST", "/auth/token"): "the login itself",
    ("GET", "/health"): "liveness probe, no data",
    ("GET", "/ready"): "readiness probe: which dependency is down, no data",
    ("GET", "/metrics"): "aggregate counts for Prometheus (see app/api/routes/observability.py)",
    ("GET", "/media/{key:path}"): "published images: public by design, content-addressed names",
    ("GET", "/openapi.json"): "the API's description",
    ("GET", "/docs"): "Swagger UI (a static page; every call from it needs a token)",
    ("GET", "/docs/oauth2-redirect"): "Swagger UI's login helper",
    ("GET", "/redoc"): "ReDoc (a static page)",
    ("GET", "/"): "redirect to the web page",
    ("GET", "/ui"): "redirect to the web page",
    ("GET", "/ui/"): "the web page's shell: its data comes from the API, with the user's token",
    ("GET", "/ui/login"): "the login form",
    ("GET", "/ui/runs/{run_id}"): "a run page's shell: no data until the script calls the API with a token",
    ("MOUNT", "/ui/static"): "the web page's script and style",
}
LINK = {
    ("GET", "/files/{key:path}"): "a signed, expiring storage URL (expires + signature)",
    ("GET", "/preview/{article_id}"): "the article's preview, with its unguessable token",
    ("GET", "/ui/original/{article_id}"): "the article as converted, with the preview's token",
}
USER = {
    ("GET", "/users/me"),
    ("POST", "/documents"),
    ("GET", "/documents"),
    ("GET", "/documents/{document_id}"),
    ("GET", "/documents/{document_id}/original"),
    ("GET", "/workflows"),
    ("GET", "/workflows/{name}"),
    ("POST", "/workflows/{name}/runs"),
    ("GET", "/runs"),
    ("GET", "/runs/{run_id}"),
    ("GET", "/runs/{run_id}/events"),
    ("POST", "/runs/{run_id}/cancel"),
    ("POST", "/runs/{run_id}/resume"),
    ("POST", "/runs/{run_id}/approve"),
    ("POST", "/runs/{run_id}/reject"),
    ("GET", "/articles"),
    ("GET", "/articles/{article_id}"),
    ("GET", "/articles/{article_id}/diff"),
    ("GET", "/sites"),
    ("GET", "/sites/{site_id}"),
    ("GET", "/sites/{site_id}/categories"),
    ("GET", "/ui/stream"),
}
ADMIN = {
    ("GET", "/users"),
    ("POST", "/users"),
    ("GET", "/sources"),
    ("POST", "/sources"),
    ("GET", "/sources/{source_id}"),
    ("PATCH", "/sources/{source_id}"),
    ("DELETE", "/sources/{source_id}"),
    ("GET", "/sources/{source_id}/messages"),
    ("POST", "/sources/{source_id}/test"),
    ("POST", "/sources/{source_id}/poll"),
    ("POST", "/sites"),
    ("PATCH", "/sites/{site_id}"),
    ("DELETE", "/sites/{site_id}"),
    ("POST", "/sites/{site_id}/test"),
    ("GET", "/sources/{source_id}/replies"),
    ("PUT", "/sources/{source_id}/replies"),
    ("GET", "/webhooks"),
    ("POST", "/webhooks"),
    ("GET", "/webhooks/{webhook_id}"),
    ("PATCH", "/webhooks/{webhook_id}"),
    ("DELETE", "/webhooks/{webhook_id}"),
    ("GET", "/webhooks/{webhook_id}/deliveries"),
}
STREAMS = {("GET", "/runs/{run_id}/events"), ("GET", "/ui/stream")}


def served_routes(app) -> set[tuple[str, str]]:
    """(method, path) of every route the application serves; ("MOUNT", path) for mounted apps."""
    out: set[tuple[str, str]] = set()

    def add(route, path: str) -> None:
        if isinstance(route, Mount):
            out.add(("MOUNT", path))
            return
        for method in getattr(route, "methods", None) or ():
            if method != "HEAD":  # Starlette answers HEAD wherever GET is
                out.add((method, path))

    for route in app.routes:
        if hasattr(route, "effective_route_contexts"):  # FastAPI ≥ 0.16x keeps included routers as such
            for context in route.effective_route_contexts():
                add(context.original_route, context.path)
        elif isinstance(route, (Route, Mount)) or hasattr(route, "path"):
            add(route, route.path)
        else:  # pragma: no cover - a kind of route this walker does not know: fail loudly
            out.add(("UNKNOWN", repr(route)))
    return out


def concrete(path: str) -> str:
    """A path with made-up values for its parameters (ids that exist nowhere)."""
    return re.sub(r"\{(\w+)(:path)?\}", lambda m: str(uuid.uuid4()) if m.group(1).endswith("_id") else "x", path)


def call(api: str, method: str, path: str, token: str | None, *, stream: bool = False) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    with httpx.Client(base_url=api, timeout=30) as c:
        if stream:  # an event stream never ends by itself: read the status line only
            with c.stream(method, path, headers=headers) as response:
                return response
        return c.request(method, path, headers=headers)


@pytest.fixture(scope="module")
def app(stack_env):
    from app.api.main import create_app

    return create_app()


def test_every_route_is_classified(app, anon):
    classified = set(PUBLIC) | set(LINK) | USER | ADMIN
    assert not (set(PUBLIC) | set(LINK)) & (USER | ADMIN) and not USER & ADMIN
    served = served_routes(app)
    unclassified = served - classified
    assert not unclassified, f"routes nobody decided who may call (add them to tests/security/test_routes.py): {sorted(unclassified)}"
    gone = classified - served
    assert not gone, f"classified routes the API no longer serves: {sorted(gone)}"
    # The OpenAPI document lists the same operations (those not hidden from it), and declares the bearer
    # token exactly on the operations that need one.
    document = anon.get("/openapi.json").json()
    listed = {(m.upper(), p) for p, ops in document["paths"].items() for m in ops}
    assert listed <= {(m, re.sub(r":path\}", "}", p)) for m, p in served}
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            key = next(k for k in classified if k[0] == method.upper() and re.sub(r":path\}", "}", k[1]) == path)
            needs_token = key in USER or key in ADMIN
            assert bool(operation.get("security")) == needs_token, (method, path, operation.get("security"))


@pytest.mark.parametrize("route", sorted(USER | ADMIN), ids=lambda r: f"{r[0]} {r[1]}")
def test_no_token_or_a_bad_one_is_401(api, route):
    method, path = route
    stream = route in STREAMS
    for token in (None, "not-a-token", "eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0."):
        response = call(api, method, concrete(path), token, stream=stream)
        assert response.status_code == 401, (method, path, token, response.status_code)
        assert response.headers.get("www-authenticate") == "Bearer"


@pytest.mark.parametrize("route", sorted(ADMIN), ids=lambda r: f"{r[0]} {r[1]}")
def test_editors_get_403_on_admin_routes_admins_get_in(api, editor_token, admin_token, route):
    method, path = route
    url = concrete(path)
    refused = call(api, method, url, editor_token)
    assert refused.status_code == 403, (method, path, refused.status_code, refused.text)
    assert refused.json()["detail"] == "this needs the admin role"
    admitted = call(api, method, url, admin_token)
    assert admitted.status_code not in (401, 403), (method, path, admitted.status_code, admitted.text)


@pytest.mark.parametrize("route", sorted(USER), ids=lambda r: f"{r[0]} {r[1]}")
def test_editors_get_in_on_user_routes(api, editor_token, route):
    method, path = route
    response = call(api, method, concrete(path), editor_token, stream=route in STREAMS)
    # 404 (no such id), 422 (no body) or 200: past the door, whatever the made-up request deserved
    assert response.status_code not in (401, 403), (method, path, response.status_code, response.text)


@pytest.mark.parametrize("route", sorted(PUBLIC), ids=lambda r: f"{r[0]} {r[1]}")
def test_public_routes_answer_without_a_token(api, route):
    method, path = route
    url = "/ui/static/app.js" if method == "MOUNT" else concrete(path)
    with httpx.Client(base_url=api, timeout=30, follow_redirects=False) as c:
        response = c.request("GET" if method == "MOUNT" else method, url)
    assert response.status_code not in (401, 403), (method, path, response.status_code)
    assert response.status_code < 500 or (path == "/ready" and response.status_code == 503)  # no worker here


@pytest.mark.parametrize("route", sorted(LINK), ids=lambda r: f"{r[0]} {r[1]}")
def test_links_need_their_token(api, editor_token, route):
    method, path = route
    url = concrete(path)
    with httpx.Client(base_url=api, timeout=30) as c:
        missing = c.request(method, url)
        assert missing.status_code == 422  # the token (or signature) is a required parameter
        wrong = {"token": "0" * 32} if "{article_id}" in path else {"expires": "9999999999", "signature": "0" * 64}
        assert c.request(method, url, params=wrong).status_code == 403
        # A user's bearer token is no substitute for the link's own.
        with_bearer = c.request(method, url, params=wrong, headers={"Authorization": f"Bearer {editor_token}"})
        assert with_bearer.status_code == 403


def test_a_route_added_without_a_class_is_caught(stack_env):
    """The walker sees routes of included routers and of the app itself, hidden from OpenAPI or not."""
    from fastapi import APIRouter

    from app.api.main import create_app

    app = create_app()
    router = APIRouter(prefix="/brand-new")

    @router.get("/{thing_id}", include_in_schema=False)
    async def hidden(thing_id: str) -> dict:
        return {}

    app.include_router(router)

    @app.post("/also-new")
    async def direct() -> dict:
        return {}

    classified = set(PUBLIC) | set(LINK) | USER | ADMIN
    assert served_routes(app) - classified == {("GET", "/brand-new/{thing_id}"), ("POST", "/also-new")}
