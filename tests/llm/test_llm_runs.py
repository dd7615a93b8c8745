"""publish_document runs edited by the "model": real Celery workers whose OPENAI_API_KEY and
OPENAI_BASE_URL point at the OpenAI-compatible test server (in this process, on loopback), real
PostgreSQL and Redis. Request counts are the server's own log."""

from __future__ import annotations

import json
import re
import uuid

import httpx
import pytest

from tests.llm.documents import press_release, sectioned
from tests.llm.helpers import steps, submit, submit_with_payload
from tests.support import starts, wait_broker_drained, wait_run

pytestmark = [pytest.mark.llm, pytest.mark.worker, pytest.mark.postgres, pytest.mark.redis]


@pytest.fixture(scope="module")
@starts("worker")
def llm_stack(stack_env, api, llm_server_session, tmp_path_factory):
    from tests.fixtures.stack import isolated_stack

    overrides = {
        "OPENAI_API_KEY": llm_server_session.api_key,
        "OPENAI_BASE_URL": llm_server_session.base_url,
        "OPENAI_TIMEOUT": "10",
    }
    with isolated_stack(stack_env, tmp_path_factory.mktemp("llm-workers"), overrides, cpu=1, io=4) as stack:
        yield stack


@pytest.fixture
def server(llm_server, llm_stack):
    return llm_server


def chat(server) -> list[dict]:
    return server.chat_requests


def article(client, run: dict) -> dict:
    return client.get(f"/articles/{run['article_id']}").json()


def editing_warnings(run: dict) -> list[str]:
    return [w for w in run["warnings"] if w.startswith("editing:")]


def test_a_document_with_images_a_table_and_links_is_edited_and_published(client, server):
    data, title = press_release(101)
    run = wait_run(client, submit(client, data, "press-101.docx"))
    assert run["state"] == "succeeded", run["error"]

    # One request: the whole article and the post fields in one structured answer.
    assert len(chat(server)) == 1
    prompt = json.dumps(chat(server)[0]["json"]["messages"])
    assert "copydesk-image:" not in prompt and "example.org" not in prompt  # placeholders only
    assert 'src=\\"image:1\\"' in prompt and 'href=\\"link:1\\"' in prompt
    assert "Polish this article for the web" in prompt  # the workflow's instructions

    art = article(client, run)
    assert art["edit_engine"] == "openai:gpt-4o-mini"
    assert art["title"] == title and art["slug"] == re.sub(r"[^a-z0-9]+", "-", title.lower())
    assert art["excerpt"].startswith("In order to save water") and "Quimby" in art["tags"]
    html = art["html"]
    assert "To save water" in html and "will use reverse osmosis" in html and "In order to" not in html
    assert "<h1" not in html and title not in html  # the title is the post's, not a heading in the body
    assert "copydesk-image:" not in html
    assert len(re.findall(r'<img [^>]*src="http://127\.0\.0\.1:\d+/media/[0-9a-f]{64}\.png"', html)) == 2
    assert "<figcaption>The plant at dawn</figcaption>" in html
    assert 'href="https://example.org/report?plant=101"' in html
    assert 'href="mailto:press@springfield.example"' in html
    assert html.count("<tr>") == 3 and "<td>3.5</td>" in html
    assert art["blocks"] == ""  # the converter's blocks hold the old text: the edited HTML is published
    assert art["edit_warnings"] == [] and editing_warnings(run) == []

    # Tokens, requests and the estimated cost: on the article and summed on the run.
    assert art["usage"]["requests"] == 1 and art["usage"]["cost_usd"] > 0 and not art["usage"]["cached"]
    usage = run["usage"]
    assert usage["engine"] == "openai:gpt-4o-mini" and usage["requests"] == 1
    assert usage["prompt_tokens"] > 100 and usage["completion_tokens"] > 100
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
    expected = (usage["prompt_tokens"] * 0.15 + usage["completion_tokens"] * 0.60) / 1_000_000
    assert usage["cost_usd"] == pytest.approx(expected)
    transform = steps(run)["transform"]
    assert transform["attempts"] == 1 and "tokens, $" in transform["summary"]

    # The preview shows the title once, the edited body and its images.
    preview = httpx.get(art["preview_url"]).text
    assert preview.count(title) == 2  # <title> and the one <h1 class="title">
    assert "To save water" in preview and preview.count('/media/') == 2

    # The diff an editor reads before approving: the polish, the title heading gone, images equal.
    diff = client.get(f"/articles/{art['id']}/diff").json()
    assert diff["engine"] == "openai:gpt-4o-mini" and diff["warnings"] == [] and diff["changed"]
    assert diff["usage"]["requests"] == 1 and 0 < diff["similarity"] < 1
    replaced = [op for op in diff["ops"] if op["op"] == "replace"]
    assert any(["insert", "To"] in op["words"] for op in replaced)
    assert f"-h1: {title}" in diff["unified"]
    equal = [line for op in diff["ops"] if op["op"] == "equal" for line in op["original"]]
    figures = [line for line in equal if line.startswith("figure:")]
    assert len(figures) == 2 and all("/media/" in f for f in figures)


def test_options_from_the_run_the_source_and_the_workflow_reach_the_model(client, server):
    from app.core.db import session_scope
    from app.core.security import encrypt_secret
    from app.models import Source

    with session_scope() as session:
        source = Source(
            name=f"newsroom-{uuid.uuid4().hex[:6]}", host="imap.invalid", username="desk",
            password_encrypted=encrypt_secret("unused"), enabled=False,
            defaults={
                "llm": {"instructions": "Write for teenagers.", "model": "test-model", "temperature": 0.0}
            },
        )
        session.add(source)
        session.flush()
        source_id = source.id
    data, _ = press_release(102)
    payload = {"llm": {"model": "gpt-4o", "temperature": 0.7}, "site_categories": ["Sport", "Environment"]}
    run = wait_run(client, submit_with_payload(data, "press-102.docx", payload, source_id=source_id))
    assert run["state"] == "succeeded", run["error"]

    sent = chat(server)[0]["json"]
    assert sent["model"] == "gpt-4o" and sent["temperature"] == 0.7  # the run's payload beats the source
    assert "Write for teenagers." in sent["messages"][0]["content"]  # the source beats the workflow
    assert "Polish this article" not in sent["messages"][0]["content"]
    category = sent["response_format"]["json_schema"]["schema"]["properties"]["category"]
    assert category["anyOf"][0]["enum"] == ["Sport", "Environment"]
    art = article(client, run)
    assert art["categories"] == ["Environment"] and art["edit_engine"] == "openai:gpt-4o"
    assert run["usage"]["engine"] == "openai:gpt-4o" and run["usage"]["cost_usd"] > 0
    assert steps(run)["transform"]["result"]["options"] == {
        "instructions": "the source's defaults",
        "model": "the run's payload",
        "temperature": "the run's payload",
    }


def test_directives_of_the_sender_beat_the_model(client, server):
    payload = {"category": "Opinion", "tags": ["water"], "slug": "our-plant", "site_categories": ["Sport"]}
    run = wait_run(client, submit_with_payload(press_release(108)[0], "press-108.docx", payload))
    assert run["state"] == "succeeded", run["error"]
    schema = chat(server)[0]["json"]["response_format"]["json_schema"]["schema"]
    assert "category" not in schema["properties"]  # chosen by the sender: not asked of the model
    art = article(client, run)
    assert art["categories"] == ["Opinion"] and art["tags"] == ["water"] and art["slug"] == "our-plant"
    assert art["excerpt"].startswith("In order to save water")  # not given: the model's


def test_a_rewrite_that_drops_an_image_twice_keeps_the_original_body_with_a_warning(client, server):
    server.rewrite("drop_image", times=2)
    data, title = press_release(103)
    run = wait_run(client, submit(client, data, "press-103.docx"))
    assert run["state"] == "succeeded", run["error"]
    assert len(chat(server)) == 2  # the answer, and one more chance with the complaint
    assert "images missing" in chat(server)[1]["json"]["messages"][-1]["content"]

    [warning] = editing_warnings(run)
    assert "the original body is kept" in warning and "images missing" in warning
    art = article(client, run)
    assert art["edit_warnings"] == [warning.removeprefix("editing: ")]
    html = art["html"]
    assert "In order to save water" in html and html.count("/media/") == 2  # the original, images and all
    assert art["title"] == title and art["tags"]  # the generated post fields are still used
    # The original body is published from the converter's blocks, without the title heading.
    assert art["blocks"].startswith("<!-- wp:paragraph -->") and title not in art["blocks"]
    assert "original body kept" in steps(run)["transform"]["summary"]
    assert run["usage"]["requests"] == 2


def test_a_429_with_retry_after_is_waited_out_by_the_editor(client, server):
    server.rate_limit(retry_after=1)
    run = wait_run(client, submit(client, press_release(104)[0], "press-104.docx"))
    assert run["state"] == "succeeded", run["error"]
    requests = chat(server)
    assert [r["status"] for r in requests] == [429, 200]
    assert requests[1]["time"] - requests[0]["time"] >= 1.0
    transform = steps(run)["transform"]
    assert transform["attempts"] == 1 and transform["attempt_log"] == []  # no step retry on top
    assert run["usage"]["requests"] == 2


def test_a_long_retry_after_puts_the_step_back_on_the_broker(client, server):
    # The editor waits up to llm.max_wait (1 s here) in the worker; the server asks for 3 s, longer
    # than INLINE_RETRY_MAX_WAIT (2 s in the tests): the step goes back to the broker with that countdown.
    server.rate_limit(retry_after=3)
    payload = {"llm": {"max_wait": 1}}
    run = wait_run(client, submit_with_payload(press_release(105)[0], "press-105.docx", payload))
    assert run["state"] == "succeeded", run["error"]
    requests = chat(server)
    assert [r["status"] for r in requests] == [429, 200]
    assert requests[1]["time"] - requests[0]["time"] >= 3.0
    transform = steps(run)["transform"]
    assert transform["attempts"] == 2
    [retry] = transform["attempt_log"]
    assert retry["code"] == "rate_limited" and retry["next_wait"] >= 3 and "429" in retry["error"]
    assert run["usage"]["requests"] == 2  # the handed-up request counts too


def test_a_failing_server_fails_the_step_after_the_configured_attempts_not_more(client, server, llm_stack):
    server.fail(500, times=50)
    payload = {"llm": {"max_attempts": 3}}
    run = wait_run(client, submit_with_payload(press_release(106)[0], "press-106.docx", payload))
    assert run["state"] == "failed" and run["error_step"] == "transform"
    transform = steps(run)["transform"]
    assert transform["error_code"] == "unavailable" and transform["attempts"] == 1
    assert "answered 500" in transform["error"] and "(after 3 attempts)" in transform["error"]
    # Nothing more comes: no step retry (it would be a task on the broker, perhaps held for a countdown),
    # no SDK retry (it would have come before the step failed).
    wait_broker_drained(llm_stack["env"]["REDIS_URL"], message="the failed run's tasks to be done with")
    assert len(chat(server)) == 3
    assert {r["headers"]["x-stainless-retry-count"] for r in chat(server)} == {"0"}
    assert steps(run)["publish"]["state"] != "succeeded"
    assert client.get(f"/runs/{run['id']}").json()["usage"]["requests"] == 3


def test_resume_and_rerun_do_not_pay_twice(client, server):
    payload = {"llm": {"chunk_tokens": 200, "max_attempts": 2}}
    data, title = sectioned(107)
    server.queue({}, {}, {"status": 500}, {"status": 500})  # parts 1 and 2 answer; part 3 fails twice
    run = wait_run(client, submit_with_payload(data, "districts-107.docx", payload))
    assert run["state"] == "failed" and run["error_step"] == "transform"
    assert len(chat(server)) == 4
    spent = run["usage"]
    assert spent["requests"] == 4 and spent["prompt_tokens"] > 0 and spent["cost_usd"] > 0

    # Resume: parts 1 and 2 come from the cache; only part 3 and the post fields are asked.
    server.reset()
    response = client.post(f"/runs/{run['id']}/resume")
    assert response.status_code == 200, response.text
    run = wait_run(client, run["id"])
    assert run["state"] == "succeeded", run["error"]
    sent = [r["json"]["messages"][-1]["content"] for r in chat(server)]
    assert len(sent) == 2 and "part 3 of 3" in sent[0] and "Write the post fields" in sent[1]
    result = steps(run)["transform"]["result"]
    assert result["chunks"] == 3 and result["cached_parts"] == 2 and not result["cached"]
    assert run["usage"]["requests"] == 6 and run["usage"]["cost_usd"] > spent["cost_usd"]
    first = article(client, run)
    assert re.findall(r"<h2>(.*?)</h2>", first["html"]) == ["District 1", "District 2", "District 3"]

    # A re-run: the same manuscript saved again (other bytes, same content) is a new document and a
    # new run; its edit comes from the cache, with no request and no cost.
    server.reset()
    again = sectioned(107, author="Someone Else")[0]
    assert again != data
    rerun = wait_run(client, submit_with_payload(again, "districts-107-again.docx", payload))
    assert rerun["state"] == "succeeded", rerun["error"]
    assert chat(server) == []
    assert steps(rerun)["transform"]["result"]["cached"] is True
    assert "from the cache" in steps(rerun)["transform"]["summary"]
    assert rerun["usage"]["requests"] == 0 and rerun["usage"]["cost_usd"] == 0
    assert rerun["usage"]["cached_edits"] == 1
    second = article(client, rerun)
    assert second["id"] != first["id"] and second["html"] == first["html"] and second["title"] == title
    assert second["usage"]["cached"] is True
