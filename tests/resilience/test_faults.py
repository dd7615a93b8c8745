"""Every service behind Copydesk failing ~30% of its requests at once — OSS (the OSS-protocol test
server), the LLM (the OpenAI-compatible test server) and a real WordPress — with 429 + Retry-After,
500 and timeouts, seeded (tests/servers/faults.py): a batch of manuscripts with images still ends with
every run succeeded, exactly one post per document on the site, every image stored once in OSS and
imported once into WordPress's media library, and the retries that made it possible are on record
(step and item attempt logs, the publish step's request retries, the LLM usage, the clients' logs).

The first tests check the fault modes themselves (seeded, reproducible, the promised mix), so the
big test's figures mean what they say.
"""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from collections import Counter

import httpx
import pytest

from app.core.errors import TRANSIENT_KINDS
from tests.fixtures.oss import OSS_BUCKET, oss_settings
from tests.servers.faults import RandomFaults, pick, uniforms
from tests.support import starts, wait_until
from tests.wordpress.conftest import manuscript, picture, posts_of

TERMINAL = ("succeeded", "failed", "cancelled")
RATIO = 0.3
SEED = 20240610

# Client timeouts in this test, and how long a "timeout" fault holds a request (past them).
OPENAI_TIMEOUT = 3.0
WP_TIMEOUT, WP_UPLOAD_TIMEOUT = 3.0, 4.0
# The site's request-level retries (Site.options "attempts"; None: the default, 4). With 1 (only the
# publish step's policy retrying whole attempts of 7-15 requests) 6 of these 10 runs failed.
WP_REQUEST_ATTEMPTS = None


def expected_kinds(seed, count: int, ratio: float = RATIO, mix=None) -> list[str]:
    mix = mix or {"429": 1, "500": 1, "timeout": 1}
    out = []
    for n in range(1, count + 1):
        u1, u2, _ = uniforms(seed, n)
        out.append(pick(mix, u2) if u1 < ratio else "")
    return out


# --- the fault modes ----------------------------------------------------------------------------------


def test_random_faults_are_seeded_and_mixed():
    first = RandomFaults(RATIO, seed=7)
    decisions = [first.take("GET", "/x") for _ in range(3000)]
    again = RandomFaults(RATIO, seed=7)
    assert [again.take("GET", "/x") for _ in range(3000)] == decisions  # reproducible
    other = [RandomFaults(RATIO, seed=8).take("GET", "/x") for _ in range(50)]
    assert [d and d.kind for d in other] != [d and d.kind for d in decisions[:50]]
    kinds = Counter(d.kind for d in decisions if d)
    assert 0.27 < sum(kinds.values()) / 3000 < 0.33
    assert set(kinds) == {"429", "500", "timeout"} and min(kinds.values()) > 200
    filtered = RandomFaults(1.0, seed=7, method="PUT", path=r"^/b/media/")
    assert filtered.take("GET", "/b/media/x") is None and filtered.take("PUT", "/b/artifacts/x") is None
    assert filtered.take("PUT", "/b/media/x") is not None and filtered.seen == 1


@pytest.mark.oss
def test_oss_server_fails_at_random_before_storing(oss_server):
    oss_server.fail_randomly(0.5, seed=3)
    statuses = []
    with httpx.Client(base_url=oss_server.endpoint, timeout=5) as c:
        for i in range(40):
            try:
                statuses.append(c.put(f"/{OSS_BUCKET}/anon-{i}", content=b"x").status_code)
            except httpx.TransportError:
                statuses.append(0)  # dropped: the timeout kind
    want = {"": 403, "429": 429, "500": 500, "timeout": 0}  # anonymous PUT: AccessDenied when not failed
    assert statuses == [want[k] for k in expected_kinds(3, 40, 0.5)]
    assert oss_server.random_faults()["total"] == sum(1 for s in statuses if s != 403)
    throttled = [r for r in oss_server.requests if r.fault == "429"]
    assert throttled and all(r.code == "TooManyRequests" for r in throttled)
    assert oss_server.stored_keys(OSS_BUCKET) == []


@pytest.mark.llm
def test_llm_server_fails_at_random(llm_server):
    llm_server.fail_randomly(0.5, seed=4, delay=0.3)
    body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "<article>\n<p>Hi.</p>\n</article>"}]}
    headers = {"Authorization": f"Bearer {llm_server.api_key}"}
    got = []
    with httpx.Client(timeout=5) as c:
        for _ in range(30):
            r = c.post(f"{llm_server.base_url}/chat/completions", json=body, headers=headers)
            got.append((r.status_code, r.headers.get("retry-after")))
    kinds = expected_kinds(4, 30, 0.5)
    assert [s for s, _ in got] == [{"429": 429, "500": 500}.get(k, 200) for k in kinds]
    assert all(ra == "1" for s, ra in got if s == 429)
    logged = [r.get("fault", "") for r in llm_server.chat_requests]
    assert logged == kinds  # the "timeout" ones were held 0.3 s, then answered
    assert llm_server.random_faults()["total"] == sum(1 for k in kinds if k)


@pytest.mark.wordpress
def test_wordpress_fails_at_random_like_the_python_model(wordpress):
    wordpress.reset()
    try:
        wordpress.fail_randomly(0.5, seed=5, delay=0.2, route="#^/wp/v2/types#")
        got = []
        with httpx.Client(base_url=wordpress.rest_url, auth=(wordpress.user, wordpress.app_password), timeout=30) as c:
            for _ in range(24):
                r = c.get("wp/v2/types")
                got.append((r.status_code, r.headers.get("retry-after")))
            assert c.get("wp/v2/statuses").status_code == 200  # another route: never failed
        kinds = expected_kinds(5, 24, 0.5)
        assert [s for s, _ in got] == [{"429": 429, "500": 500, "timeout": 503}.get(k, 200) for k in kinds]
        assert all(ra == "1" for s, ra in got if s == 429)
        with wordpress.client() as harness:  # the harness's own reads are never failed
            assert all(harness.get("wp/v2/types").status_code == 200 for _ in range(10))
        served = wordpress.random_faults()
        assert served["seen"] == 24 and served["total"] == sum(1 for k in kinds if k)
        logged = [r.get("fault", "") for r in wordpress.requests() if r["route"] == "/wp/v2/types"]
        assert logged[:24] == kinds
    finally:
        wordpress.reset()


# --- the whole workflow under faults ------------------------------------------------------------------


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def submit(data: bytes, filename: str, *, payload: dict, options: dict) -> tuple[str, int]:
    """Intake, as POST /documents and the mailbox do it (the original kept in OSS, then the document and
    its run), with document options the upload form does not take. A transient failure (OSS still
    failing after its client's retries) is tried again, as a client does with a 503.
    (the run id, the number of failed submissions)"""
    from app.core.db import session_scope
    from app.core.errors import TransientError
    from app.workflows import engine, intake

    errors = 0
    for _ in range(4):
        try:
            with session_scope() as session:
                submission = intake.submit(session, data, filename, origin="api", payload=payload, options=options)
        except TransientError:
            errors += 1
            continue
        assert not submission.duplicate
        engine.send(submission.run)
        return str(submission.run.id), errors
    pytest.fail(f"{filename}: intake kept failing")


def wait_all(client: httpx.Client, run_ids: list[str], timeout: float) -> list[dict]:
    def done():
        runs = [client.get(f"/runs/{r}").json() for r in run_ids]
        return runs if all(r["state"] in TERMINAL for r in runs) else None

    return wait_until(done, timeout=timeout, interval=1.0, message="every run to end")


def media_of(wordpress, images: list[bytes]) -> Counter:
    """How many media items the site holds for each image (by its content slug copydesk-<sha prefix>)."""
    slugs = {f"copydesk-{sha(i)[:32]}": sha(i) for i in images}
    found: list[dict] = []
    names = list(slugs)
    with wordpress.client() as c:
        for start in range(0, len(names), 50):
            r = c.get("wp/v2/media", params={"slug": ",".join(names[start : start + 50]), "per_page": 100,
                                             "context": "edit"})
            r.raise_for_status()
            found += r.json()
    return Counter(slugs[m["slug"]] for m in found)


def worker_log_lines(stack, pattern: str) -> int:
    return sum(len(re.findall(pattern, w.log())) for w in stack["workers"])


@pytest.fixture
@starts("worker")
def faulty_stack(stack_env, api, oss_server, llm_server, wordpress, tmp_path):
    from tests.fixtures.stack import isolated_stack

    overrides = {
        **oss_settings(oss_server),
        "OPENAI_API_KEY": llm_server.api_key,
        "OPENAI_BASE_URL": llm_server.base_url,
        "OPENAI_TIMEOUT": str(OPENAI_TIMEOUT),
        "MAX_UPLOAD_MB": "40",
    }
    wordpress.reset()
    with isolated_stack(stack_env, tmp_path, overrides, cpu=2, io=8) as stack:
        yield stack
    wordpress.reset()
    from kombu import pools

    pools.reset()


@pytest.mark.oss
@pytest.mark.llm
@pytest.mark.wordpress
@pytest.mark.worker
@pytest.mark.postgres
@pytest.mark.redis
@pytest.mark.slow
@pytest.mark.timeout(900)
def test_thirty_percent_faults_everywhere_every_run_succeeds_once(
    client, admin_client, faulty_stack, oss_server, llm_server, wordpress
):
    documents, images_each = 10, 5
    site = admin_client.post("/sites", json={
        "name": f"flaky-{uuid.uuid4().hex[:6]}", "url": wordpress.url, "username": wordpress.user,
        "app_password": wordpress.app_password, "default_status": "publish",
        "options": {"timeout": WP_TIMEOUT, "upload_timeout": WP_UPLOAD_TIMEOUT,
                    **({"attempts": WP_REQUEST_ATTEMPTS} if WP_REQUEST_ATTEMPTS else {})},
    })  # fmt: skip
    assert site.status_code == 201, site.text
    site = site.json()
    batch = uuid.uuid4().hex[:6]
    pictures = {
        n: [picture(int(sha(f"{batch}/{n}/{i}".encode())[:8], 16)) for i in range(images_each)]
        for n in range(documents)
    }
    scripts = {
        n: manuscript(
            f"Flaky day {batch} number {n}", images=pictures[n], seed=n, paragraphs=4,
            alts=[f"Picture {i} of {n}" for i in range(images_each)], captions=[f"Caption {i}" for i in range(images_each)],
        )
        for n in range(documents)
    }  # fmt: skip
    all_images = [i for imgs in pictures.values() for i in imgs]
    assert len({sha(i) for i in all_images}) == documents * images_each

    # From here on, ~30% of the requests to each service fail.
    oss = oss_server.fail_randomly(RATIO, seed=SEED)  # 429 / 500 / dropped connection, before the work
    llm_server.fail_randomly(RATIO, seed=SEED + 1, delay=OPENAI_TIMEOUT + 1.5)
    wordpress.fail_randomly(RATIO, seed=SEED + 2, delay=WP_UPLOAD_TIMEOUT + 1.5, after=0.3)

    runs, api_5xx = {}, 0
    for n, data in scripts.items():
        # Every retry budget at its default: the editor's 6 attempts lose 1 model call in 1,372 at 30%
        # (4 lost 1 in 123: a batch of 10 failed at transform 1 time in 12).
        payload = {"site": site["name"]}
        run_id, errors = submit(data, f"flaky-{n}.docx", payload=payload, options=payload)
        api_5xx += errors
        runs[n] = run_id
    ended = wait_all(client, list(runs.values()), timeout=780)
    oss_faults, llm_faults, wp_faults = oss.summary(), llm_server.random_faults(), wordpress.random_faults()
    # The figures first (pytest -s shows them), then the verdicts.
    by_step: dict[str, list[int]] = {}
    for run in ended:
        for step in run["steps"]:
            by_step.setdefault(step["name"], []).append(step["attempts"])
    item_retries = sum(
        i["attempts"] - 1 for run in ended for s in run["steps"] if s["name"] == "upload_image" for i in s["items"]
    )
    publish = [next(s for s in run["steps"] if s["name"] == "publish") for run in ended]
    wp_request_retries = sum((p["result"] or {}).get("retries", 0) for p in publish)
    oss_client_retries = worker_log_lines(faulty_stack, r"OSS call failed \(attempt")
    llm_requests = sum(run["usage"].get("requests", 0) for run in ended)
    figures = {
        "runs": Counter(r["state"] for r in ended),
        "oss_faults": oss_faults, "llm_faults": llm_faults, "wordpress_faults": wp_faults,
        "submissions_retried": api_5xx,
        "step_attempts": {k: sum(v) for k, v in by_step.items()},
        "upload_item_retries": item_retries,
        "publish_step_retries": sum(p["attempts"] - 1 for p in publish),
        "publish_request_retries": wp_request_retries,
        "oss_client_retries_logged": oss_client_retries,
        "llm_requests": llm_requests,
        "errors": {r["id"]: (r["error_step"], r["error"]) for r in ended if r["state"] != "succeeded"},
    }  # fmt: skip
    print("\nfault figures:", json.dumps(figures, indent=1, default=str))

    # Every run finished, and succeeded.
    assert [r["state"] for r in ended] == ["succeeded"] * documents, figures["errors"]

    # The services really failed about 30% of the time, with every kind.
    for name, served in (("OSS", oss_faults), ("LLM", llm_faults), ("WordPress", wp_faults)):
        assert served["seen"] >= 10 and 0.1 < served["total"] / served["seen"] < 0.5, (name, served)
    assert set(oss_faults["served"]) == {"429", "500", "timeout"}
    assert set(wp_faults["served"]) == {"429", "500", "timeout"}

    # Exactly one post per document, with its images; each image once in the media library.
    for n, run in zip(scripts, ended):
        posts = posts_of(wordpress, run["document_id"])
        assert len(posts) == 1, (n, [p["id"] for p in posts])
        result = next(s for s in run["steps"] if s["name"] == "publish")["result"]
        assert result["post_id"] == posts[0]["id"] and result["site"] == site["name"]
        assert posts[0]["status"] == "publish" and posts[0]["title"]["raw"] == f"Flaky day {batch} number {n}"
        # every image but the featured one (shown above the post) is in the body
        assert posts[0]["content"]["raw"].count("<!-- wp:image") == images_each - 1
    assert media_of(wordpress, all_images) == Counter({sha(i): 1 for i in all_images})

    # Every image stored once in OSS: one successful PUT per media key, and each key is there.
    media_puts = Counter(r.key for r in oss_server.requests if r.method == "PUT" and r.key.startswith("media/")
                         and r.status == 200)  # fmt: skip
    assert set(media_puts) == {f"media/{sha(i)}.png" for i in all_images}
    assert set(media_puts.values()) == {1}, {k: v for k, v in media_puts.items() if v > 1}
    stored = [k for k in oss_server.stored_keys(OSS_BUCKET) if k.startswith("media/")]
    assert sorted(stored) == sorted(media_puts)

    # The retries are on record. LLM: every failed request was counted on the runs and retried by the
    # editor (a retry per fault; none was given up); WordPress: the publish steps' attempt logs and
    # request retries; OSS: the client's retries in the workers' logs, the items' attempt logs.
    assert llm_faults["total"] >= 1 and llm_requests == len(llm_server.chat_requests) == documents + llm_faults["total"]
    assert figures["publish_step_retries"] + wp_request_retries >= 1
    for p in publish:
        assert len(p["attempt_log"]) == p["attempts"] - 1
        assert all(e["code"] in TRANSIENT_KINDS for e in p["attempt_log"]), p["attempt_log"]
    # (the API's own requests: keeping the originals; its retries are in this process's log)
    worker_oss_faults = sum(
        1 for r in oss_server.requests if r.fault and not (r.key.startswith("manuscripts/") and r.method != "GET")
    )
    assert oss_client_retries + item_retries >= 1
    assert oss_client_retries <= worker_oss_faults
