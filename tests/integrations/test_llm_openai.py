"""The OpenAI editor against the OpenAI-compatible test server: structure kept and checked, failures,
retries with exact request counts, chunking, the cache, a wrong key."""

from __future__ import annotations

import json
from dataclasses import replace
import re
import time

import openai
import pytest

from app.core.errors import (
    AuthenticationFailed,
    ConfigurationError,
    ConnectionFailed,
    NotFound,
    PermissionDenied,
    RateLimited,
    RemoteError,
    ServiceUnavailable,
    TimedOut,
)
from app.documents.result import placeholder_keys
from app.integrations.llm import (
    CachedEditor,
    EditRequest,
    MemoryEditCache,
    OfflineEditor,
    OpenAIEditor,
    diff_html,
    editor_from_settings,
    estimate_tokens,
    markup,
)
from tests.support import free_port

pytestmark = pytest.mark.llm

IMAGE_1 = "copydesk-image:" + "1a" * 32 + ".png"
IMAGE_2 = "copydesk-image:" + "2b" * 32 + ".jpeg"
ARTICLE = f"""<h1>Springfield opens its water recycling plant</h1>
<p>In order to save water, the Springfield council, led by Mayor Jane Quimby, approved 12.5 million dollars
for a plant that will serve 40,000 homes from March 2026.</p>
<p><img src="{IMAGE_1}" alt="The plant at dawn"></p>
<h2>What it costs</h2>
<table><tr><th>Item</th><th>Cost (million $)</th></tr><tr><td>Pipes</td><td>3.5</td></tr>
<tr><td>Filters</td><td>9</td></tr></table>
<p>The engineers at Hydroworks will utilize reverse osmosis. Read <a href="https://example.org/report?id=7">the
full report</a> or <a href="mailto:press@springfield.example">write to the press office</a>.</p>
<h2>What comes next</h2>
<p>A second plant in Shelbyville is planned for 2028, a question for local politics.</p>
<p><img src="{IMAGE_2}" alt=""></p>"""


def article_request(**changes) -> EditRequest:
    fields = dict(
        html=ARTICLE,
        text=markup.text_of(ARTICLE),
        title="Springfield opens its water recycling plant",
        keywords=["water", "Springfield"],
        categories=["Environment", "Politics", "Sport"],
        instructions="Polish for the web, keep every fact, keep headings, tables and images.",
        language="en",
    )
    fields.update(changes)
    return EditRequest(**fields)


def complaint_of(request_log: dict) -> str:
    return request_log["json"]["messages"][-1]["content"]


class RecordedSleep:
    """Stands in for time.sleep: records tenacity's waits instead of waiting."""

    def __init__(self):
        self.waits: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


# --- the happy path ------------------------------------------------------------------------------


def test_full_transform_keeps_images_table_and_links(llm_server, make_openai_editor):
    editor = make_openai_editor()
    result = editor.edit(article_request())

    assert len(llm_server.chat_requests) == 1
    sent = llm_server.chat_requests[0]["json"]
    # What the model sees: short placeholders, never the image keys or the URLs.
    prompt = json.dumps(sent["messages"])
    assert 'src=\\"image:1\\"' in prompt and 'href=\\"link:2\\"' in prompt
    assert "1a1a1a" not in prompt and "example.org" not in prompt
    assert sent["response_format"]["type"] == "json_schema"
    assert sent["response_format"]["json_schema"]["strict"] is True
    assert sent["temperature"] == 0.2
    # Each attempt is the SDK's first: it retries nothing itself.
    assert llm_server.chat_requests[0]["headers"]["x-stainless-retry-count"] == "0"

    assert placeholder_keys(result.html) == placeholder_keys(ARTICLE)
    assert 'href="https://example.org/report?id=7"' in result.html
    assert 'href="mailto:press@springfield.example"' in result.html
    assert 'alt="The plant at dawn"' in result.html
    assert markup.structure_of(result.html).tables == [(3, 2)]
    assert markup.headings_of(result.html) == ["What it costs", "What comes next"]  # h1 = post title
    assert "To save water" in result.html and "will use reverse osmosis" in result.html  # the polish
    assert result.title == "Springfield opens its water recycling plant"
    assert result.slug == "springfield-opens-its-water-recycling-plant"
    assert result.excerpt.startswith("In order to save water")
    assert "Quimby" in result.tags and result.category == "Politics"
    assert result.engine == "openai:gpt-4o-mini"
    assert result.warnings == [] and not result.kept_original_body and not result.cached
    assert (
        result.usage.requests == 1 and result.usage.prompt_tokens > 0 and result.usage.completion_tokens > 0
    )
    assert result.usage.cost_usd > 0 and result.usage.note == ""

    changes = diff_html(ARTICLE, result.html)
    assert changes.changed and "+p: To save water" in changes.unified
    assert any(op.op == "replace" and ("insert", "use") in op.words for op in changes.ops)


NOTES_AND_CODE = """<h2 id="setup">Setup</h2>
<p>Install the tool<sup><a href="#fn-1" id="fnref-1">1</a></sup> and compute
<math><mi>x</mi><mn>2</mn></math>.</p>
<pre><code>pip install  copydesk   # in order to keep the spacing</code></pre>
<p>See <a href="#setup">the setup</a> again.</p>
<section class="footnotes"><ol><li id="fn-1"><p>Version 3 or later. <a href="#fnref-1">↩</a></p></li></ol>
</section>"""


def test_code_formulas_and_footnotes_are_never_sent_for_editing(llm_server, make_openai_editor):
    result = make_openai_editor().edit(EditRequest(html=NOTES_AND_CODE, text="", title="Setup guide"))
    prompt = llm_server.chat_requests[0]["json"]["messages"][-1]["content"]
    assert "pip install" not in prompt and "<math>" not in prompt and "Version 3" not in prompt
    assert '<img src="keep:1">' in prompt and 'id="setup"' in prompt
    # Back verbatim: the code keeps its spacing (the echo's polish would have changed "in order to").
    assert "<pre><code>pip install  copydesk   # in order to keep the spacing</code></pre>" in result.html
    assert '<sup><a href="#fn-1" id="fnref-1">1</a></sup>' in result.html
    assert '<li id="fn-1"><p>Version 3 or later. <a href="#fnref-1">↩</a></p></li>' in result.html
    assert "<math><mi>x</mi><mn>2</mn></math>" in result.html and '<a href="#setup">' in result.html
    assert not result.kept_original_body


def test_a_dropped_id_is_complained_about(llm_server, make_openai_editor):
    llm_server.rewrite("drop_id")
    result = make_openai_editor().edit(EditRequest(html=NOTES_AND_CODE, text="", title="Setup guide"))
    assert 'id attributes missing: keep id="setup"' in complaint_of(llm_server.chat_requests[1])
    assert '<h2 id="setup">' in result.html and not result.kept_original_body


def test_a_converted_word_document(llm_server, make_openai_editor):
    from app.documents.convert import word_to_article
    from tests.integrations.test_llm_offline import press_release_docx

    converted = word_to_article(press_release_docx(), "press.docx")
    request = EditRequest(
        html=converted.html, text=converted.text, title=converted.title, keywords=converted.metadata.keywords
    )
    result = make_openai_editor().edit(request)
    assert len(llm_server.chat_requests) == 1 and result.warnings == []
    assert placeholder_keys(result.html) == [image.key for image in converted.images]
    assert "<figure>" in result.html and 'width="53"' in result.html
    assert result.title == "Springfield opens its water recycling plant"


def test_model_and_temperature_per_request(llm_server, make_openai_editor):
    editor = make_openai_editor(model="gpt-4o", temperature=None, prices={})
    result = editor.edit(article_request(model="test-model"))
    editor.edit(article_request(temperature=0.7))
    first, second = (r["json"] for r in llm_server.chat_requests)
    assert first["model"] == "test-model" and "temperature" not in first  # None: not sent
    assert second["model"] == "gpt-4o" and second["temperature"] == 0.7
    assert result.engine == "openai:test-model"
    assert result.usage.cost_usd == 0 and "no price known for model 'test-model'" in result.usage.note


def test_category_outside_the_sites_list_is_dropped_with_a_warning(llm_server, make_openai_editor):
    # A server without strict schemas may answer any category.
    fields = {"title": "T", "excerpt": "E.", "slug": "t", "tags": ["a"], "category": "Sport"}
    llm_server.queue({"json": {**fields, "category": "Cooking", "body_html": "<p>x</p>"}})
    editor = make_openai_editor(content_attempts=1)
    result = editor.edit(article_request(html="<p>x</p>", text="x", title=""))
    assert result.category is None
    assert any("'Cooking'" in w for w in result.warnings)


# --- transport failures: one owner of retries, exact request counts -------------------------------


def test_rate_limited_once_then_success_is_two_requests(llm_server, make_openai_editor):
    llm_server.rate_limit(retry_after_ms=20)
    sleep = RecordedSleep()
    result = make_openai_editor(sleep=sleep).edit(article_request())
    assert len(llm_server.chat_requests) == 2
    assert [r["status"] for r in llm_server.chat_requests] == [429, 200]
    assert sleep.waits == [pytest.approx(0.02)]  # retry-after-ms honoured
    assert result.usage.requests == 2 and not result.warnings


def test_retry_after_seconds_is_honoured(llm_server, make_openai_editor):
    llm_server.rate_limit(retry_after=1.5, times=2)
    sleep = RecordedSleep()
    make_openai_editor(sleep=sleep).edit(article_request())
    assert sleep.waits == [1.5, 1.5]
    assert len(llm_server.chat_requests) == 3


def test_retry_after_longer_than_max_wait_is_raised_not_waited(llm_server, make_openai_editor):
    llm_server.rate_limit(retry_after=300)
    sleep = RecordedSleep()
    with pytest.raises(RateLimited) as caught:
        make_openai_editor(sleep=sleep, max_wait=30).edit(article_request())
    assert caught.value.retry_after == 300  # the workflow can re-queue the step with this countdown
    assert caught.value.transient and "429" in caught.value.message
    assert len(llm_server.chat_requests) == 1 and sleep.waits == []


def test_server_errors_stop_at_max_attempts_without_multiplication(llm_server, make_openai_editor):
    llm_server.fail(500, times=20)
    with pytest.raises(ServiceUnavailable) as caught:
        make_openai_editor(max_attempts=3).edit(article_request())
    # 3, not 9: the SDK's own retries are off, so tenacity's attempts are the HTTP requests.
    assert len(llm_server.chat_requests) == 3
    assert {r["headers"]["x-stainless-retry-count"] for r in llm_server.chat_requests} == {"0"}
    assert "500" in caught.value.message and "The server had an error" in caught.value.message


def test_server_error_then_success(llm_server, make_openai_editor):
    llm_server.fail(503)
    llm_server.fail(502)
    result = make_openai_editor().edit(article_request())
    assert [r["status"] for r in llm_server.chat_requests] == [503, 502, 200]
    assert result.usage.requests == 3


def test_slow_answer_times_out_then_succeeds(llm_server, make_openai_editor):
    llm_server.slow(30)  # far past the client's timeout: only a client that gave up on it gets an answer
    result = make_openai_editor(timeout=0.3).edit(article_request())
    assert len(llm_server.chat_requests) == 2
    assert result.title


def test_always_slow_fails_as_timed_out_after_max_attempts(llm_server, make_openai_editor):
    llm_server.slow(1.0, times=5)
    with pytest.raises(TimedOut) as caught:
        make_openai_editor(timeout=0.2, max_attempts=2).edit(article_request())
    assert len(llm_server.chat_requests) == 2
    assert "did not answer within 0.2 s" in caught.value.message


def test_connection_refused_is_retried_then_connection_failed():
    sleep = RecordedSleep()
    url = f"http://proxyuser:proxysecret@127.0.0.1:{free_port()}/v1"
    editor = OpenAIEditor("sk-any", base_url=url, max_attempts=3, backoff=0.01, sleep=sleep)
    with pytest.raises(ConnectionFailed) as caught:
        editor.edit(article_request())
    assert len(sleep.waits) == 2  # three attempts
    assert "could not connect" in caught.value.message and caught.value.transient
    assert "proxysecret" not in caught.value.message


def test_an_empty_key_is_a_configuration_error():
    with pytest.raises(ConfigurationError):
        OpenAIEditor("")


def test_wrong_key_fails_at_once_with_the_servers_message(llm_server, make_openai_editor):
    wrong = "sk-wrong-0123456789abcdefXYZ"
    with pytest.raises(AuthenticationFailed) as caught:
        make_openai_editor(api_key=wrong).edit(article_request())
    assert len(llm_server.chat_requests) == 1
    assert llm_server.chat_requests[0]["status"] == 401
    message = caught.value.message
    assert "refused the API key (401)" in message and "Incorrect API key provided" in message
    assert wrong not in message and not caught.value.transient
    assert caught.value.code == "auth_failed"


@pytest.mark.parametrize(
    ("status", "error", "message"),
    [
        (400, RemoteError, "Unsupported value: 'temperature' does not support 0.2"),
        (403, PermissionDenied, "Project does not have access to model"),
        (422, RemoteError, "Unprocessable"),
    ],
)
def test_client_errors_fail_at_once(llm_server, make_openai_editor, status, error, message):
    llm_server.fail(status, message=message)
    with pytest.raises(error) as caught:
        make_openai_editor().edit(article_request())
    assert len(llm_server.chat_requests) == 1
    assert message in caught.value.message and not caught.value.transient


def test_unknown_model_is_not_found_at_once(llm_server, make_openai_editor):
    with pytest.raises(NotFound) as caught:
        make_openai_editor(model="gpt-nonexistent").edit(article_request())
    assert len(llm_server.chat_requests) == 1
    assert "The model `gpt-nonexistent` does not exist" in caught.value.message


# --- content failures: one more chance with the complaint, then the original body ----------------


def test_invalid_json_gets_one_more_chance(llm_server, make_openai_editor):
    llm_server.invalid_json()
    result = make_openai_editor().edit(article_request())
    first, second = llm_server.chat_requests
    assert second["json"]["messages"][-2] == {"role": "assistant", "content": first_answer(first)}
    assert "not a valid JSON object" in complaint_of(second)
    assert not result.kept_original_body and result.warnings == []
    assert result.usage.requests == 2


def first_answer(request_log: dict) -> str:
    return request_log["action"]["content"]


def test_invalid_json_twice_keeps_the_original_and_uses_offline_fields(llm_server, make_openai_editor):
    llm_server.invalid_json(times=2)
    result = make_openai_editor().edit(article_request())
    assert len(llm_server.chat_requests) == 2
    assert result.kept_original_body
    assert placeholder_keys(result.html) == placeholder_keys(ARTICLE)
    assert "In order to save water" in result.html  # not edited
    assert result.title == "Springfield opens its water recycling plant"  # from the offline editor
    assert len(result.warnings) == 2 and "offline editor" in result.warnings[1]


def test_a_cut_off_answer_is_asked_again(llm_server, make_openai_editor):
    llm_server.queue({"finish_reason": "length"})
    result = make_openai_editor().edit(article_request())
    assert len(llm_server.chat_requests) == 2 and "cut off" in complaint_of(llm_server.chat_requests[1])
    assert not result.kept_original_body


def test_a_refusal_is_asked_again(llm_server, make_openai_editor):
    llm_server.queue({"refusal": "I cannot help with that."})
    result = make_openai_editor().edit(article_request())
    assert "refused: I cannot help" in complaint_of(llm_server.chat_requests[1])
    assert not result.kept_original_body


@pytest.mark.parametrize(
    ("damage", "complaint"),
    [
        ("drop_image", 'images missing: keep each of <img src="image:1"> exactly once'),
        ("drop_link", 'links missing: keep each of <a href="link:1"> exactly once'),
        ("change_number", "numbers of the original missing or changed: 125"),
        ("drop_heading", "the headings changed: the original has 2 (h2, h2), the answer 1 (h2)"),
        ("drop_table", "the tables changed"),
        ("drop_name", "names of the original missing: Springfield"),
    ],
)
def test_a_damaging_rewrite_is_fixed_on_the_second_chance(llm_server, make_openai_editor, damage, complaint):
    llm_server.rewrite(damage)
    result = make_openai_editor().edit(article_request())
    assert len(llm_server.chat_requests) == 2
    assert complaint in complaint_of(llm_server.chat_requests[1])
    assert not result.kept_original_body and result.warnings == []
    assert placeholder_keys(result.html) == placeholder_keys(ARTICLE)


@pytest.mark.parametrize("damage", ["drop_image", "change_number"])
def test_a_damaging_rewrite_twice_keeps_the_original_body(llm_server, make_openai_editor, damage):
    llm_server.rewrite(damage, times=2)
    result = make_openai_editor().edit(article_request())
    assert len(llm_server.chat_requests) == 2
    assert result.kept_original_body
    original = markup.clean_html(ARTICLE, drop_leading_heading=article_request().title)
    assert markup.block_texts(result.html) == markup.block_texts(original)
    # The generated post fields are still used.
    assert result.title == "Springfield opens its water recycling plant" and result.tags
    assert len(result.warnings) == 1 and "original body is kept" in result.warnings[0]


# --- long articles ---------------------------------------------------------------------------------

NAMES = ["Quimby", "Hydroworks", "Shelbyville", "Ogdenville", "Burns", "Lovejoy", "Krabappel", "Skinner"]


def long_article(words: int = 20_000) -> str:
    """Sections of an h2 and paragraphs, with numbers, names, an image every few sections."""
    parts, count, section = [], 0, 0
    while count < words:
        section += 1
        parts.append(f"<h2>Part {section}: the district report</h2>")
        for paragraph in range(4):
            name = NAMES[(section + paragraph) % len(NAMES)]
            sentence = (
                f"In district {section}, the officer {name} counted {section * 100 + paragraph} "
                f"new pipes and the council approved the budget for the year. "
            )
            text = sentence * 6
            parts.append(f"<p>{text.strip()}</p>")
            count += len(text.split())
        if section % 5 == 0:
            parts.append(f'<p><img src="copydesk-image:{section:064x}.png" alt=""></p>')
    return "\n".join(parts)


def test_a_20000_word_article_is_edited_in_chunks(llm_server, make_openai_editor):
    html = long_article()
    assert len(markup.text_of(html).split()) >= 20_000
    editor = make_openai_editor(chunk_tokens=6_000)
    request = EditRequest(html=html, text="", title="The district reports", categories=["Sport", "Pipes"])
    result = editor.edit(request)

    requests = llm_server.chat_requests
    assert result.chunks >= 5 and len(requests) == result.chunks + 1  # one per part + the post fields
    for number, sent in enumerate(requests[:-1], 1):
        part = re.search(r"<article>\n(.*)\n</article>", sent["json"]["messages"][-1]["content"], re.S).group(
            1
        )
        assert estimate_tokens(part) <= 6_000
        assert f"part {number} of {result.chunks}" in sent["json"]["messages"][-1]["content"]
        assert part.startswith("<h2>")  # cut at headings
        schema = sent["json"]["response_format"]["json_schema"]["schema"]
        assert list(schema["properties"]) == ["body_html"]
    fields_schema = requests[-1]["json"]["response_format"]["json_schema"]["schema"]
    assert "body_html" not in fields_schema["properties"]

    assert markup.headings_of(result.html) == markup.headings_of(html)
    assert placeholder_keys(result.html) == placeholder_keys(html)
    assert markup.text_of(result.html) == markup.text_of(html)  # the echo keeps every word
    assert result.title == "The district reports" and result.category == "Pipes"
    server_usage = [json.loads(json.dumps(r["json"]["messages"])) for r in requests]
    assert result.usage.requests == len(server_usage)
    assert result.usage.prompt_tokens == sum(max(1, len(json.dumps(m)) // 4) for m in server_usage)
    assert not result.kept_original_body and result.warnings == []


def test_a_rejected_edit_uses_only_the_post_fields_that_pass_their_checks(llm_server, make_openai_editor):
    # Twice an answer whose body breaks the checks, with a generic title, excerpt and slug ("stub" was
    # seen published) and tags of which one is generic and one in another script.
    answer = {
        "title": "stub",
        "excerpt": "Untitled",
        "slug": "stub",
        "tags": ["stub", "water recycling", "水の再利用"],
        "body_html": "<p>stub</p>",
        "category": "Environment",
    }
    llm_server.queue({"json": answer}, {"json": answer})
    request = article_request()
    result = make_openai_editor().edit(request)
    assert result.kept_original_body
    own = OfflineEditor().edit(request)
    assert result.title == own.title == "Springfield opens its water recycling plant"
    assert result.excerpt == own.excerpt and result.excerpt.startswith("In order to save water")
    assert result.slug == "springfield-opens-its-water-recycling-plant"
    assert result.tags == ["water recycling"]  # the one that passes
    assert any("title 'stub' was not used (generic" in w for w in result.warnings)
    assert any("'水の再利用'" in w for w in result.warnings)


def test_a_rejected_edit_in_japanese_keeps_the_documents_own_title(llm_server, make_openai_editor):
    html = (
        "<h1>東京に新しい図書館</h1><p>東京都は二十日、新しい市立図書館を来年春に開館すると発表した。"
        "図書館は約30万冊の本を所蔵する予定だ。</p>"
    )
    answer = {"title": "New library", "excerpt": "Tokyo opens a library.", "slug": "new-library",
              "tags": ["library"], "body_html": "<p>Tokyo</p>"}  # the number 30 is missing: rejected
    llm_server.queue({"json": answer}, {"json": answer})
    request = EditRequest(html=html, text=markup.text_of(html), title="東京に新しい図書館", language="ja")
    result = make_openai_editor().edit(request)
    assert result.kept_original_body
    assert result.title == "東京に新しい図書館" and result.excerpt.startswith("東京都は二十日")
    assert result.slug == "東京-に-新しい-図書館"  # the model's English slug is not in the article's script
    llm_server.queue({"json": answer}, {"json": answer})
    transliterated = make_openai_editor().edit(replace(request, transliterate_slug=True))
    assert transliterated.slug == "new-library"  # a site that wants Latin slugs keeps it


def test_a_chunk_that_fails_twice_keeps_only_that_part(llm_server, make_openai_editor):
    html = long_article(3_000)
    llm_server.rewrite("drop_heading", times=2)  # the first part's two answers
    result = make_openai_editor(chunk_tokens=1_500).edit(EditRequest(html=html, text="", title="Reports"))
    assert result.chunks >= 3
    assert len(llm_server.chat_requests) == result.chunks + 2
    assert result.kept_original_body
    assert len(result.warnings) == 1 and result.warnings[0].startswith(f"part 1 of {result.chunks}:")
    assert markup.text_of(result.html) == markup.text_of(html)


# --- the cache -------------------------------------------------------------------------------------


def test_a_cached_result_sends_no_request(llm_server, make_openai_editor):
    cache = MemoryEditCache()
    editor = CachedEditor(make_openai_editor(), cache)
    first = editor.edit(article_request())
    second = editor.edit(article_request())
    assert len(llm_server.chat_requests) == 1 and len(cache) == 1
    assert second.cached and not first.cached
    assert second.html == first.html and second.title == first.title and second.tags == first.tags
    assert second.usage.requests == 0 and second.usage.cost_usd == 0

    editor.edit(article_request(instructions="Shorten it."))
    editor.edit(article_request(temperature=0.7))
    editor.edit(article_request(model="gpt-4o"))
    assert len(llm_server.chat_requests) == 4 and len(cache) == 4


def test_a_cache_that_fails_does_not_fail_the_edit(llm_server, make_openai_editor):
    class Broken:
        def get(self, key):
            raise OSError("database down")

        def put(self, key, result):
            raise OSError("database down")

    result = CachedEditor(make_openai_editor(), Broken()).edit(article_request())
    assert result.title and len(llm_server.chat_requests) == 1


# --- settings and the server itself -------------------------------------------------------------


def test_editor_from_settings_uses_openai_when_a_key_is_set(llm_server, llm_settings):
    editor = editor_from_settings(llm_settings, temperature=0.0, backoff=0.01)
    assert isinstance(editor, OpenAIEditor) and editor.model == "gpt-4o-mini"
    result = editor.edit(article_request())
    assert result.engine == "openai:gpt-4o-mini" and llm_server.chat_requests[0]["json"]["temperature"] == 0.0
    cached = editor_from_settings(llm_settings, cache=MemoryEditCache())
    assert isinstance(cached, CachedEditor) and isinstance(cached.editor, OpenAIEditor)


def test_server_speaks_openai_json_and_streaming(llm_server):
    client = openai.OpenAI(api_key=llm_server.api_key, base_url=llm_server.base_url, max_retries=0)
    assert {m.id for m in client.models.list()} >= {"gpt-4o-mini"}
    messages = [{"role": "user", "content": "Edit this.\n<article>\n<p>In order to go.</p>\n</article>"}]
    plain = client.chat.completions.create(model="gpt-4o-mini", messages=messages)
    assert plain.choices[0].message.content == "<p>To go.</p>"  # no response_format: the text
    stream = client.chat.completions.create(
        model="gpt-4o-mini", messages=messages, stream=True, stream_options={"include_usage": True}
    )
    chunks = list(stream)
    streamed = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert streamed == plain.choices[0].message.content
    assert chunks[-1].usage.total_tokens == plain.usage.total_tokens
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"

    wrong = openai.OpenAI(api_key="sk-nope-123456789", base_url=llm_server.base_url, max_retries=0)
    with pytest.raises(openai.AuthenticationError) as caught:
        wrong.models.list()
    assert caught.value.body["code"] == "invalid_api_key"


def test_server_latency_and_http_scripting(llm_server):
    import httpx

    llm_server.state.latency = 0.05
    httpx.post(f"{llm_server.url}/_test/script", json=[{"status": 500}]).raise_for_status()
    client = openai.OpenAI(api_key=llm_server.api_key, base_url=llm_server.base_url, max_retries=0)
    started = time.monotonic()
    with pytest.raises(openai.InternalServerError):
        client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
    assert time.monotonic() - started >= 0.05
    log = httpx.get(f"{llm_server.url}/_test/requests").json()
    assert [entry["status"] for entry in log] == [500]


def test_the_sites_tags_are_offered_and_slugs_stay_in_the_articles_script(llm_server, make_openai_editor):
    from app.integrations.llm import SiteTerm

    body = "<p>東京都は二十日、新しい市立図書館を来年春に開館すると発表した。図書館は約30万冊の本を所蔵する予定だ。</p>"
    html = f"<h1>東京に新しい図書館</h1>{body}"
    answer = {"title": "東京に新しい図書館", "excerpt": "東京都が新しい図書館を開く。", "slug": "tokyo-new-library",
              "tags": ["図書館", "東京"], "body_html": body}  # fmt: skip
    llm_server.queue({"json": answer})
    site_tags = [SiteTerm("図書館", "%e5%9b%b3%e6%9b%b8%e9%a4%a8"), SiteTerm("Culture", "culture")]
    request = EditRequest(html=html, text=markup.text_of(html), title="東京に新しい図書館", language="ja",
                          site_tags=site_tags)  # fmt: skip
    result = make_openai_editor().edit(request)

    prompt = llm_server.chat_requests[0]["json"]["messages"][-1]["content"]
    assert "Tags the site already has (choose from these where they fit): 図書館; Culture" in prompt
    assert "ASCII" not in prompt and "in the article's own language and script" in prompt
    assert not result.kept_original_body and result.tags == ["図書館", "東京"]
    # The model's slug is English: not the article's own words, so the title's are used (ICU words).
    assert result.slug == "東京-に-新しい-図書館"
    # A site that asks for transliterated slugs gets the model's Latin one.
    llm_server.queue({"json": answer})
    assert make_openai_editor().edit(replace(request, transliterate_slug=True)).slug == "tokyo-new-library"
    # The site's tags are a hint, not part of the cache key: a re-run after the site gained tags hits.
    from app.integrations.llm.cache import cache_key

    assert cache_key(request) == cache_key(replace(request, site_tags=[*site_tags, SiteTerm("New", "new")]))
