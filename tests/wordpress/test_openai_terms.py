"""The OpenAI editor publishing to a real WordPress: workers whose OPENAI_* point at the test server
and whose default site is the test WordPress. The model is offered the site's tags and categories;
the tags it proposes are new terms only where the site allows them; a site that asks for Latin slugs
gets them.
"""

from __future__ import annotations

import io
import random
import string
import uuid

import pytest
from docx import Document

from tests.llm.documents import press_release
from tests.wordpress.conftest import make_site, published, tag_count, tag_names

pytestmark = [pytest.mark.wordpress, pytest.mark.llm, pytest.mark.worker, pytest.mark.postgres, pytest.mark.redis]


@pytest.fixture(scope="module")
def openai_wp_stack(stack_env, api, wordpress, llm_server_session, tmp_path_factory):
    from tests.fixtures.stack import isolated_stack

    overrides = {
        "WP_URL": wordpress.url,
        "WP_USER": wordpress.user,
        "WP_APP_PASSWORD": wordpress.app_password,
        "OPENAI_API_KEY": llm_server_session.api_key,
        "OPENAI_BASE_URL": llm_server_session.base_url,
        "OPENAI_TIMEOUT": "10",
    }
    with isolated_stack(stack_env, tmp_path_factory.mktemp("openai-wp-workers"), overrides, cpu=1, io=4) as stack:
        yield stack
    from kombu import pools

    pools.reset()  # back on the session's broker (see tests/wordpress/conftest.py wp_stack)


@pytest.fixture
def server(llm_server, openai_wp_stack):
    return llm_server










def test_the_model_sees_the_sites_terms_and_its_new_tags_are_made(client, server, wordpress):
    from app.services.sites import env_wordpress_site, forget_site_terms

    with wordpress.client() as c:
        for name in ("Water Recycling", "Springfield Council"):
            c.post("wp/v2/tags", json={"name": name})  # 400 term_exists when it is there already
    forget_site_terms(env_wordpress_site())
    before = tag_count(wordpress)
    data, title = press_release(701)
    run, result, post = published(client, wordpress, data, "plant-701.docx")

    (request,) = server.chat_requests
    prompt = request["json"]["messages"][-1]["content"]
    offered = next(line for line in prompt.splitlines() if line.startswith("Tags the site already has"))
    assert "Water Recycling" in offered and "Springfield Council" in offered
    assert "Categories to choose from: " in prompt and "Uncategorized" in prompt
    assert "ASCII" not in prompt
    # The model's tags are the post's: the ones the site lacked were made (the default allows the
    # OpenAI editor's), and nothing else.
    article = client.get(f"/articles/{run['article_id']}").json()
    assert tag_names(wordpress, post["tags"]) == sorted(article["tags"]) and article["tags"]
    assert tag_count(wordpress) == before + len(result["terms_created"]) and result["terms_left_out"] == []


def test_a_site_that_takes_only_the_senders_terms_leaves_the_models_out(client, admin_client, server, wordpress):
    invented = "Q" + "".join(random.Random(uuid.uuid4().int).choices(string.ascii_lowercase, k=9))
    doc = Document()
    doc.core_properties.title = "Harbour news"
    doc.add_heading("Harbour news", level=1)
    doc.add_paragraph(f"The harbour master, said {invented} on Monday, opens the new quay for the summer season.")
    doc.add_paragraph(f"Visitors can meet {invented} at the quay every morning, weather permitting.")
    out = io.BytesIO()
    doc.save(out)
    site = make_site(admin_client, wordpress, options={"create_terms": "sender"})
    try:
        before = tag_count(wordpress)
        run, result, post = published(client, wordpress, out.getvalue(), "harbour.docx", site=site["name"])
        assert invented in client.get(f"/articles/{run['article_id']}").json()["tags"]  # the model's choice
        assert invented not in (tag_names(wordpress, post["tags"]) if post["tags"] else [])
        assert f"tags:{invented}" in result["terms_left_out"] and tag_count(wordpress) == before
        (warning,) = [w for w in run["warnings"] if w.startswith("Tags not on")]
        assert "proposed by the OpenAI editor" in warning and "'sender'" in warning
    finally:
        admin_client.delete(f"/sites/{site['id']}")


def test_a_site_that_wants_latin_slugs_gets_pinyin(client, admin_client, server, wordpress):
    title = "北京图书馆重新开放"
    doc = Document()
    doc.core_properties.title = title
    doc.add_heading(title, level=1)
    doc.add_paragraph("北京市图书馆今天宣布，经过两年的翻修，图书馆将于明年春天重新开放。新馆将增加三万册新书。")
    out = io.BytesIO()
    doc.save(out)
    site = make_site(admin_client, wordpress, options={"transliterate_slugs": True})
    try:
        run, result, post = published(client, wordpress, out.getvalue(), "beijing.docx", site=site["name"], status="publish")
        slug = client.get(f"/articles/{run['article_id']}").json()["slug"]
        assert slug == "bei-jing-tu-shu-guan-zhong-xin-kai-fang" and post["slug"] == slug
    finally:
        admin_client.delete(f"/sites/{site['id']}")
