"""Publishing through real workers to the test session's real WordPress (tests/servers/wordpress.py).

`wp_stack`: workers of their own (a private broker) configured with WP_URL / WP_USER /
WP_APP_PASSWORD for the test WordPress, the test process and its API pointed at them, for the whole
module. Every assertion on a post reads the site back through its REST API.
"""

from __future__ import annotations

import io
import random
import uuid

import httpx
import pytest
from docx import Document
from docx.shared import Inches
from PIL import Image
from tests.support import starts




# --- manuscripts ------------------------------------------------------------------------------------


def picture(seed: int, size: tuple[int, int] = (320, 240), fmt: str = "PNG") -> bytes:
    """An image whose bytes differ per seed."""
    rng = random.Random(seed)
    image = Image.new("RGB", size, tuple(rng.randrange(256) for _ in range(3)))
    for _ in range(60):
        x, y = rng.randrange(size[0]), rng.randrange(size[1])
        image.putpixel((x, y), tuple(rng.randrange(256) for _ in range(3)))
    out = io.BytesIO()
    image.save(out, fmt)
    return out.getvalue()


def noise_png(megabytes: float, seed: int = 0) -> bytes:
    """A PNG of random pixels (incompressible) of at least `megabytes` MB."""
    side = int((megabytes * 1024 * 1024 / 3) ** 0.5) + 8
    image = Image.frombytes("RGB", (side, side), random.Random(seed).randbytes(side * side * 3))
    out = io.BytesIO()
    image.save(out, "PNG", compress_level=1)
    return out.getvalue()


def manuscript(
    title: str,
    *,
    images: list[bytes] = (),
    alts: list[str] = (),
    captions: list[str] = (),
    paragraphs: int = 3,
    seed: int = 0,
    keywords: str = "",
) -> bytes:
    """A .docx: a heading, paragraphs, then each image (alt text in docPr/@descr, a Caption paragraph)."""
    doc = Document()
    doc.core_properties.title = title
    doc.core_properties.keywords = keywords
    doc.add_heading(title, level=1)
    for i in range(paragraphs):
        p = doc.add_paragraph(f"Paragraph {i + 1} of {title}, seed {seed}, with ")
        p.add_run("bold words").bold = True
        p.add_run(" and 1,234 numbers.")
    for i, data in enumerate(images):
        doc.add_picture(io.BytesIO(data), width=Inches(2))
        if i < len(alts) and alts[i]:
            doc_pr = doc.inline_shapes[-1]._inline.docPr
            doc_pr.set("descr", alts[i])
        if i < len(captions) and captions[i]:
            doc.add_paragraph(captions[i], style="Caption")
    out = io.BytesIO()
    doc.save(out)
    return out.getvalue()


# --- runs ---------------------------------------------------------------------------------------------


def submit(client: httpx.Client, data: bytes, filename: str = "manuscript.docx", **form) -> dict:
    response = client.post("/documents", files={"file": (filename, data)}, data=form)
    assert response.status_code == 201, response.text
    return response.json()



def steps(run: dict) -> dict[str, dict]:
    return {s["name"]: s for s in run["steps"]}


def publish_step(run: dict) -> dict:
    return steps(run)["publish"]


def rerun(document_id: str, payload: dict | None = None) -> str:
    """A new run of publish_document for a document already processed (what a re-submission with
    new directives does): returns its id."""
    from app.core.db import session_scope
    from app.workflows import engine, state
    from app.workflows.schema import get_workflow

    with session_scope() as session:
        run = state.create_run(session, get_workflow("publish_document"), payload or {}, document_id=uuid.UUID(document_id))
        run.launches = 1
    engine.send(run)
    return str(run.id)


def marker(document_id: str) -> str:
    from app.integrations.wordpress.content import marker_token

    return marker_token(document_id)


def posts_of(wordpress, document_id: str) -> list[dict]:
    """The site's posts that carry this document's marker, every status, trash included."""
    token = marker(document_id)
    return [p for p in wordpress.posts(search=token) if f"<!-- {token} -->" in p["content"]["raw"]]


def wp_get(wordpress, route: str, **params) -> httpx.Response:
    with wordpress.client() as c:
        response = c.get(route, params={"context": "edit", **params})
    response.raise_for_status()
    return response


def published(client: httpx.Client, wordpress, data: bytes, filename: str = "m.docx", **form) -> tuple[dict, dict, dict]:
    """Submit, wait for success; (run, publish result, the post as WordPress has it)."""
    from tests.support import wait_run

    body = submit(client, data, filename, **form)
    run = wait_run(client, body["run"]["id"])
    assert run["state"] == "succeeded", (run["error"], publish_step(run))
    result = publish_step(run)["result"]
    post = wp_get(wordpress, f"wp/v2/posts/{result['post_id']}").json()
    return run, result, post


def make_site(admin_client: httpx.Client, wordpress, **fields) -> dict:
    """A site on the test WordPress, created through the API (fields: body_format, options…)."""
    values = {
        "name": f"site-{uuid.uuid4().hex[:8]}",
        "url": wordpress.url,
        "username": wordpress.user,
        "app_password": wordpress.app_password,
        **fields,
    }
    response = admin_client.post("/sites", json=values)
    assert response.status_code == 201, response.text
    return response.json()


def tag_names(wordpress, ids: list[int]) -> list[str]:
    if not ids:
        return []
    return sorted(t["name"] for t in wp_get(wordpress, "wp/v2/tags", include=",".join(map(str, ids))).json())


def tag_count(wordpress) -> int:
    """How many tags the site has."""
    return int(wp_get(wordpress, "wp/v2/tags", per_page=1).headers["X-WP-Total"])


# --- fixtures -----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def wp_env(wordpress) -> dict[str, str]:
    return {
        "WP_URL": wordpress.url,
        "WP_USER": wordpress.user,
        "WP_APP_PASSWORD": wordpress.app_password,
        "MAX_UPLOAD_MB": "40",
    }


@pytest.fixture(scope="module")
@starts("worker")
def wp_stack(stack_env, api, wordpress, wp_env, tmp_path_factory):
    """Workers of their own, configured for the test WordPress as the default site."""
    from tests.fixtures.stack import isolated_stack

    with isolated_stack(stack_env, tmp_path_factory.mktemp("wp-workers"), wp_env, cpu=1, io=4) as stack:
        yield stack
    # Back on the session's broker: kombu keeps one producer pool per broker URL in a global registry,
    # and configure() closed the session's one on the way in; drop them all, so the next task sent to
    # the session's broker gets a fresh pool (else "Acquire on closed pool").
    from kombu import pools

    pools.reset()


@pytest.fixture(autouse=True)
def _no_faults(request):
    """Each test starts and ends with no injected fault (only when the test uses WordPress)."""
    if "wordpress" not in request.fixturenames:
        yield
        return
    wordpress = request.getfixturevalue("wordpress")
    wordpress.reset()
    yield
    wordpress.reset()
