"""Logs of a full run, with every secret we can configure for real: none of them appears in any line the
API or the workers write, and the lines say which run, step and document they are about."""

from __future__ import annotations

import json
import secrets
import subprocess
from urllib.parse import urlsplit

import pytest

from tests.fixtures.oss import oss_settings
from tests.fixtures.stack import RedisServer
from tests.observability.helpers import api_logs, json_lines
from tests.samples import docx
from tests.support import starts, wait_for_port, wait_run

pytestmark = [pytest.mark.worker, pytest.mark.postgres, pytest.mark.redis, pytest.mark.oss, pytest.mark.llm]


def test_api_lines_carry_a_request_id_and_the_run_and_never_a_query_string(client, anon, workers):
    run = client.post("/workflows/t_fanout/runs", json={"count": 0}).json()
    wait_run(client, run["id"])
    upload = client.post("/documents", files={"file": ("ids.docx", docx("Request ids", seed=5150))})
    article_id = wait_run(client, upload.json()["run"]["id"])["article_id"]
    preview = client.get(f"/articles/{article_id}").json()["preview_url"]
    token = preview.split("token=")[1]
    with api_logs() as log:
        mine = client.get(f"/runs/{run['id']}", headers={"X-Request-ID": "trace-42.a:b"})
        odd = client.get(f"/runs/{run['id']}", headers={"X-Request-ID": "not a\tplain token"})
        link = urlsplit(preview)
        assert anon.get(f"{link.path}?{link.query}").status_code == 200
    assert mine.headers["x-request-id"] == "trace-42.a:b"
    assert len(odd.headers["x-request-id"]) == 32 and odd.headers["x-request-id"] != "not a\tplain token"
    records = json_lines(log.getvalue())
    [line] = [r for r in records if r.get("request_id") == "trace-42.a:b"]
    assert line["run_id"] == run["id"] and line["path"] == f"/runs/{run['id']}" and line["status"] == 200
    assert any(r.get("request_id") == odd.headers["x-request-id"] for r in records)
    [seen] = [r for r in records if r.get("path", "").startswith("/preview/")]
    assert seen["article_id"] == article_id
    assert token not in log.getvalue()  # the preview link's token never reaches a log


class PasswordRedis(RedisServer):
    """A private Redis that wants a password (so REDIS_URL carries one, as in production)."""

    def __init__(self, password: str) -> None:
        self.password = password
        super().__init__()

    @property
    def url(self) -> str:
        return f"redis://:{self.password}@127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.process = subprocess.Popen(
            [self.binary, "--bind", "127.0.0.1", "--port", str(self.port), "--save", "", "--appendonly", "no",
             "--dir", str(self.dir), "--requirepass", self.password],
            stdin=subprocess.DEVNULL, stdout=open(self.dir / "redis.log", "ab"), stderr=subprocess.STDOUT,
        )
        wait_for_port(self.port)


@pytest.fixture
@starts("worker")
def secret_stack(stack_env, oss_server, llm_server, tmp_path):
    """Workers and the API with OSS storage, the OpenAI-compatible server, a password-protected broker
    and a Flower password: every secret Copydesk has that a test can configure for real."""
    import oss2  # noqa: F401 - imported here, not first in an API request thread (it crashed there once)

    from tests.fixtures.stack import isolated_stack

    broker = PasswordRedis(f"redis-pw-{secrets.token_hex(10)}")
    overrides = {
        "REDIS_URL": broker.url,
        **oss_settings(oss_server),
        "OPENAI_API_KEY": llm_server.api_key,
        "OPENAI_BASE_URL": llm_server.base_url,
        "OPENAI_TIMEOUT": "10",
        "FLOWER_PASSWORD": f"flower-pw-{secrets.token_hex(10)}",
        "LOG_LEVEL": "DEBUG",  # the most a log can say
    }
    try:
        with isolated_stack(stack_env, tmp_path, overrides) as stack:
            with api_logs() as api_log:
                yield {**stack, "api_log": api_log, "log_dir": tmp_path}
    finally:
        broker.stop()
    from app.core.logging import configure_logging

    configure_logging()  # the session's settings again


def test_a_full_run_logs_no_secret_and_names_its_run_step_and_document(client, secret_stack):
    from app.core.config import get_settings

    settings = get_settings()
    configured = {
        "OSS_ACCESS_KEY_SECRET": settings.oss_access_key_secret.get_secret_value(),
        "OPENAI_API_KEY": settings.openai_api_key.get_secret_value(),
        "FLOWER_PASSWORD": settings.flower_password.get_secret_value(),
        "JWT_SECRET_KEY": settings.jwt_secret_key.get_secret_value(),
        "ENCRYPTION_KEY": settings.encryption_key.get_secret_value(),
        "REDIS_URL password": secret_stack["env"]["REDIS_URL"].split(":")[2].split("@")[0],
    }
    assert set(settings.secret_values()) >= set(configured.values())

    upload = client.post("/documents", files={"file": ("secret-run.docx", docx("Logs and secrets", images=2, seed=31337))})
    assert upload.status_code == 201, upload.text
    run_id, document_id = upload.json()["run"]["id"], upload.json()["document"]["id"]
    run = wait_run(client, run_id)
    assert run["state"] == "succeeded", run["error"]
    assert run["usage"]["engine"].startswith("openai:") and run["usage"]["requests"] >= 1  # the key was used
    # A failing request too: the API's error path logs (a 404 and a 409).
    assert client.get("/runs/00000000-0000-0000-0000-000000000000").status_code == 404
    assert client.post(f"/runs/{run_id}/approve").status_code == 409
    for w in secret_stack["workers"]:
        w.stop()  # flush and close the worker logs

    worker_logs = {p.name: p.read_text(errors="replace") for p in secret_stack["log_dir"].glob("*.log")}
    api_log = secret_stack["api_log"].getvalue()
    assert run_id in api_log and any(run_id in text for text in worker_logs.values())
    for name, secret in configured.items():
        assert secret not in api_log, f"{name} is in the API log"
        for log_name, text in worker_logs.items():
            assert secret not in text, f"{name} is in the worker log {log_name}"

    # Every line written while a step runs names the run, the step and the document (whichever library
    # wrote it); the runner's own lines name the run; the API's lines about this run carry its id
    # (from the path) and a request id.
    records = [r for text in worker_logs.values() for r in json_lines(text)]
    in_steps = [r for r in records if r.get("step")]
    assert in_steps, "no line was written inside a step"
    for record in in_steps:
        assert record["run_id"] == run_id and record["document_id"] == document_id, record
    finished = [r for r in records if r.get("logger") == "copydesk.runner" and "run finished" in r["message"]]
    assert finished and all(r.get("run_id") == run_id for r in finished)
    api_records = [r for r in json_lines(api_log) if run_id in r.get("path", "")]
    assert api_records and all(r.get("run_id") == run_id and r.get("request_id") for r in api_records)


def test_a_fan_out_logs_no_traceback_for_the_task_its_chord_replaces(client, workers):
    run = client.post("/workflows/t_fanout/runs", json={"count": 3}).json()
    assert wait_run(client, run["id"])["state"] == "succeeded"
    lines = [r for w in workers for r in json_lines(w.log()) if r.get("run_id") == run["id"]]
    # Celery still says, in one INFO line, that the fan-out's task was replaced by its chord…
    [replaced] = [r for r in lines if r["message"].endswith(" ignored")]
    assert replaced["level"] == "INFO" and "copydesk.step.t_item" in replaced["message"]
    # …and no line about the run carries a traceback.
    assert not [r for r in lines if "Traceback" in json.dumps(r)]
