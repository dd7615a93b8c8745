"""A wrong OPENAI_API_KEY: the transform step fails at once with the server's message (one request,
no retry), and the key is not in what the run shows."""

from __future__ import annotations

import pytest

from tests.llm.documents import press_release
from tests.llm.helpers import steps, submit
from tests.support import wait_run

pytestmark = [pytest.mark.llm, pytest.mark.worker, pytest.mark.postgres, pytest.mark.redis]

WRONG_KEY = "sk-wrong-0123456789abcdefWXYZ"


def test_a_wrong_key_fails_the_step_at_once_with_the_servers_message(
    client, api, stack_env, llm_server, tmp_path
):
    from tests.fixtures.stack import isolated_stack

    overrides = {"OPENAI_API_KEY": WRONG_KEY, "OPENAI_BASE_URL": llm_server.base_url}
    with isolated_stack(stack_env, tmp_path, overrides, cpu=1, io=2):
        run = wait_run(client, submit(client, press_release(201)[0], "press-201.docx"))
    assert run["state"] == "failed" and run["error_step"] == "transform"
    transform = steps(run)["transform"]
    assert transform["error_code"] == "auth_failed" and transform["attempts"] == 1
    assert "refused the API key (401)" in transform["error"]
    assert "Incorrect API key provided" in transform["error"]
    assert [r["status"] for r in llm_server.chat_requests] == [401]
    assert WRONG_KEY not in str(run) and WRONG_KEY[-20:] not in str(run)
    assert run["usage"]["requests"] == 1 and run["usage"]["cost_usd"] == 0
