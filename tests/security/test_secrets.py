"""No configured secret leaves through the API: a full run (OSS storage, the LLM server, a real
WordPress) with every secret Copydesk can be given set to a value of its own — JWT_SECRET_KEY,
ENCRYPTION_KEY, OSS_ACCESS_KEY_SECRET, WP_APP_PASSWORD, OPENAI_API_KEY, IMAP_PASSWORD, SMTP_PASSWORD,
FLOWER_PASSWORD, plus the passwords of a site and a mailbox and a webhook's secret saved through the
API — then every GET route the API
serves is called with the run's real ids (as an editor and as an admin, the event streams read to
their end), and no answer (body or headers) holds any of those secrets, in any of the shapes they
could leak in (as is, without the spaces of an application password, inside a Basic auth header).
The workers' logs of that run are searched too.

A GET route added to the API must get its path parameters here (or the test fails), so a new route
is walked as well.
"""

from __future__ import annotations

import base64
import re
import secrets
import uuid

import httpx
import pytest

from tests.fixtures.oss import oss_settings
from tests.security.test_routes import served_routes
from tests.support import starts, wait_run
from tests.wordpress.conftest import manuscript, picture

pytestmark = [
    pytest.mark.oss, pytest.mark.llm, pytest.mark.wordpress, pytest.mark.worker, pytest.mark.postgres,
    pytest.mark.redis,
]  # fmt: skip

SITE_PASSWORD = "Site " + " ".join(secrets.token_hex(2) for _ in range(5))
SOURCE_PASSWORD = f"mailbox-{secrets.token_urlsafe(16)}"
IMAP_PASSWORD = f"imap-env-{secrets.token_urlsafe(16)}"
FLOWER_PASSWORD = f"flower-{secrets.token_urlsafe(16)}"
SMTP_PASSWORD = f"smtp-{secrets.token_urlsafe(16)}"


def shapes(secret: str) -> set[str]:
    """The ways a secret could show: itself, without spaces, inside Basic auth, URL-quoted."""
    from urllib.parse import quote

    out = {secret, secret.replace(" ", ""), quote(secret, safe="")}
    for user in ("admin", "copydesk", ""):
        out.add(base64.b64encode(f"{user}:{secret}".encode()).decode())
    return {s for s in out if len(s) >= 8}


@pytest.fixture
@starts("worker")
def secret_stack(stack_env, api, oss_server, llm_server, wordpress, tmp_path):
    from tests.fixtures.stack import isolated_stack

    overrides = {
        **oss_settings(oss_server, public_urls=False),
        "OPENAI_API_KEY": llm_server.api_key,
        "OPENAI_BASE_URL": llm_server.base_url,
        "WP_URL": wordpress.url,
        "WP_USER": wordpress.user,
        "WP_APP_PASSWORD": wordpress.app_password,
        # A mailbox from the environment, never polled here (no beat): its password is still configured.
        "IMAP_HOST": "127.0.0.1",
        "IMAP_PORT": "1",
        "IMAP_USER": "desk@example.org",
        "IMAP_PASSWORD": IMAP_PASSWORD,
        # An SMTP server for replies, never reached here: its password is still configured.
        "SMTP_HOST": "127.0.0.1",
        "SMTP_PORT": "1",
        "SMTP_USER": "desk@example.org",
        "SMTP_PASSWORD": SMTP_PASSWORD,
        "FLOWER_PASSWORD": FLOWER_PASSWORD,
    }
    wordpress.reset()
    with isolated_stack(stack_env, tmp_path, overrides, cpu=1, io=4) as stack:
        yield stack
    from kombu import pools

    pools.reset()


def read(client: httpx.Client, path: str, params: dict | None = None, *, stream_for: float | None = None) -> str:
    """Status line, headers and body of a GET, as one text. An event stream is read until it ends, or
    for `stream_for` seconds when it never does."""
    if stream_for is None:
        response = client.get(path, params=params)
        body = response.text if "text" in response.headers.get("content-type", "") or "json" in response.headers.get("content-type", "") else response.content.decode("latin-1")
        return f"{response.status_code}\n{response.headers}\n{body}"
    chunks = []
    with client.stream("GET", path, params=params, timeout=httpx.Timeout(stream_for, read=stream_for)) as response:
        try:
            for chunk in response.iter_text():
                chunks.append(chunk)
        except httpx.ReadTimeout:
            pass
    return f"{response.status_code}\n{response.headers}\n{''.join(chunks)}"


def test_no_secret_in_any_api_answer_after_a_full_run(client, admin_client, secret_stack, oss_server, wordpress, stack_env):
    from app.api.main import create_app
    from app.core.config import get_settings
    from app.services import preview_token

    configured = get_settings().secret_values()
    for name in ("OSS_ACCESS_KEY_SECRET", "OPENAI_API_KEY", "WP_APP_PASSWORD", "IMAP_PASSWORD", "SMTP_PASSWORD",
                 "JWT_SECRET_KEY", "ENCRYPTION_KEY", "FLOWER_PASSWORD"):  # fmt: skip
        assert secret_stack["env"][name] in configured, name

    # Secrets saved through the API too: a site (a wrong password: never used) and a mailbox.
    site = admin_client.post("/sites", json={"name": f"other-{uuid.uuid4().hex[:6]}", "url": wordpress.url,
                                             "username": "someone", "app_password": SITE_PASSWORD})  # fmt: skip
    assert site.status_code == 201, site.text
    source = admin_client.post("/sources", json={"name": f"desk-{uuid.uuid4().hex[:6]}", "host": "127.0.0.1",
                                                 "port": 1, "username": "desk", "password": SOURCE_PASSWORD,
                                                 "enabled": False})  # fmt: skip
    assert source.status_code == 201, source.text
    webhook = admin_client.post("/webhooks", json={"url": f"http://127.0.0.1:1/hook-{uuid.uuid4().hex[:6]}"})
    assert webhook.status_code == 201, webhook.text
    wanted = [*configured, SITE_PASSWORD, SOURCE_PASSWORD, webhook.json()["secret"]]

    # A full run: stored in OSS, edited by the LLM, published to WordPress.
    data = manuscript("Nothing to hide", images=[picture(801), picture(802)], seed=801)
    submitted = client.post("/documents", files={"file": ("secret-run.docx", data)})
    assert submitted.status_code == 201, submitted.text
    run_id = submitted.json()["run"]["id"]
    run = wait_run(client, run_id)
    assert run["state"] == "succeeded", run["error"]
    # And a failed call that names a service: the site with the wrong password, tested.
    assert admin_client.post(f"/sites/{site.json()['id']}/test").json()["ok"] is False

    ids = {
        "run_id": run_id,
        "document_id": run["document_id"],
        "article_id": run["article_id"],
        "site_id": site.json()["id"],
        "source_id": source.json()["id"],
        "webhook_id": webhook.json()["id"],
        "name": "publish_document",
        "key": "x",
    }
    extra = {
        "/preview/{article_id}": {"token": preview_token(run["article_id"])},
        "/ui/original/{article_id}": {"token": preview_token(run["article_id"])},
        "/files/{key:path}": {"expires": "1", "signature": "0"},
    }
    texts: dict[str, str] = {}
    gets = sorted(p for m, p in served_routes(create_app()) if m == "GET")
    assert len(gets) >= 30
    for path in gets:
        names = re.findall(r"\{(\w+)(?::path)?\}", path)
        missing = [n for n in names if n not in ids]
        assert not missing, f"GET {path}: give the test a real value for {missing}"
        url = re.sub(r"\{(\w+)(?::path)?\}", lambda m: ids[m.group(1)], path)
        stream_for = 3.0 if path == "/ui/stream" else (20.0 if path.endswith("/events") else None)
        for who, c in (("editor", client), ("admin", admin_client)):
            texts[f"{who} GET {url}"] = read(c, url, extra.get(path), stream_for=stream_for)
    with httpx.Client(base_url=client.base_url, timeout=30) as anonymous:
        for path in ("/health", "/ready", "/metrics", "/openapi.json", "/docs", "/ui/", "/ui/login"):
            texts[f"anonymous GET {path}"] = read(anonymous, path)
    # The answers are the real ones (not a wall of 404s).
    assert texts[f"editor GET /runs/{run_id}"].startswith("200")
    assert texts[f"admin GET /sources/{ids['source_id']}"].startswith("200")
    assert texts[f"admin GET /sites/{ids['site_id']}"].startswith("200")
    assert '"end"' in texts[f"editor GET /runs/{run_id}/events"] or "event: end" in texts[f"editor GET /runs/{run_id}/events"]
    assert texts[f"editor GET /preview/{ids['article_id']}"].startswith("200")

    leaks = [
        (where, secret[:4] + "…")
        for where, text in texts.items()
        for secret in wanted
        for shape in shapes(secret)
        if shape in text
    ]
    assert not leaks, leaks

    admin_client.delete(f"/webhooks/{ids['webhook_id']}")  # no later test's runs are sent to it

    # The workers' logs of the same run.
    for worker in secret_stack["workers"]:
        log = worker.log()
        assert log  # the workers did log the run
        for secret in wanted:
            for shape in shapes(secret):
                assert shape not in log, (worker.name, secret[:4] + "…")
