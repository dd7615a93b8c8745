"""The page's own routes, over plain HTTP: what they refuse and the headers that keep them safe."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest

from tests.samples import docx
from tests.support import wait_run

pytestmark = [pytest.mark.worker, pytest.mark.postgres, pytest.mark.redis]


def test_the_original_needs_the_preview_token_and_runs_no_script(client, anon, workers):
    upload = client.post("/documents", files={"file": ("original.docx", docx("Original text", images=1, seed=9090))})
    assert upload.status_code == 201, upload.text
    run_id = upload.json()["run"]["id"]
    run = wait_run(client, run_id)
    article = client.get(f"/articles/{run['article_id']}").json()
    token = parse_qs(urlsplit(article["preview_url"]).query)["token"][0]

    assert anon.get(f"/ui/original/{article['id']}", params={"token": "0" * 32}).status_code == 403
    assert anon.get(f"/ui/original/{article['id']}", params={"token": "é" * 32}).status_code == 403
    assert anon.get(f"/ui/original/{article['id']}").status_code == 422  # no token at all
    page = anon.get(f"/ui/original/{article['id']}", params={"token": token})
    assert page.status_code == 200
    assert "<h1>Original text</h1>" in page.text and "copydesk-image:" not in page.text
    csp = page.headers["content-security-policy"]
    assert "default-src 'none'" in csp and "script-src" not in csp and "frame-ancestors 'self'" in csp
    assert page.headers["referrer-policy"] == "no-referrer"


def test_the_live_list_needs_a_login(anon):
    assert anon.get("/ui/stream").status_code == 401
    shell = anon.get("/ui/")  # the page shell itself holds no data: its script asks the API with a token
    assert shell.status_code == 200 and "text/html" in shell.headers["content-type"]
    assert shell.headers["x-content-type-options"] == "nosniff"
    assert anon.get("/", follow_redirects=False).headers["location"] == "/ui/"
