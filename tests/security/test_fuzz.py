"""Schemathesis against the running API's own OpenAPI document: for every operation, requests built
from the schema (valid ones, and invalid ones: wrong types, missing fields, out-of-range values), sent
with an editor's token and with an admin's; no answer may be a 5xx (a crash, an unhandled database
error). Failures are gathered over all operations and reported together, with the request that broke
the API.

Kept CI-sized: EXAMPLES per operation, generation mode and role (about a minute). What fuzzing
created (users, sites, sources) is removed afterwards, so the rest of the session is not disturbed.
Left out: the two event streams (GET /runs/{id}/events, GET /ui/stream) — they never end by design;
tests/security/test_routes.py and the engine tests cover them — and GET /ready, which asks the
workers and has nothing to fuzz.
"""

from __future__ import annotations

import json
import os
import time
import warnings

import pytest

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "20"))
SKIP = {("GET", "/runs/{run_id}/events"), ("GET", "/ui/stream"), ("GET", "/ready")}


@pytest.fixture
def cleanup(stack_env):
    """Ids of users, sites and sources before fuzzing; whatever fuzzing added is deleted afterwards."""
    from sqlalchemy import delete, select

    from app.core.db import session_scope
    from app.models import Site, Source, User

    models = (User, Site, Source)
    with session_scope() as session:
        before = {m: set(session.execute(select(m.id)).scalars()) for m in models}
    yield
    with session_scope() as session:
        for model in (Source, Site, User):
            session.execute(delete(model).where(model.id.not_in(before[model])))


@pytest.mark.timeout(600)
def test_fuzzing_the_openapi_document_finds_no_server_error(api, anon, editor_token, admin_token, cleanup):
    import hypothesis
    import requests
    import schemathesis
    from schemathesis import GenerationMode

    schema = schemathesis.openapi.from_dict(anon.get("/openapi.json").json())
    operations = []
    for result in schema.get_all_operations():
        operation = result.ok()  # raises on an operation the document describes wrongly
        if (operation.method.upper(), operation.path) not in SKIP:
            operations.append(operation)
    assert len(operations) >= 40

    failures: list[dict] = []
    counts: dict[str, int] = {}
    session = requests.Session()
    started = time.monotonic()
    for role, token in (("editor", editor_token), ("admin", admin_token)):
        headers = {"Authorization": f"Bearer {token}"}
        for operation in operations:
            for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
                label = f"{role} {mode.value} {operation.label}"
                probe = make_probe(label, operation, mode, api, session, headers, counts, failures)
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    try:
                        probe()
                    except hypothesis.errors.Unsatisfiable:
                        pass  # nothing invalid can be made for this operation (e.g. no parameters)
    elapsed = time.monotonic() - started
    print(f"\nfuzzed {len(operations)} operations × 2 modes × 2 roles: {sum(counts.values())} requests "
          f"in {elapsed:.0f}s, {len(failures)} server error(s)")  # fmt: skip
    assert not failures, json.dumps(failures[:20], indent=1, default=str)


def make_probe(label, operation, mode, api, session, headers, counts, failures):
    from hypothesis import HealthCheck, Phase, given, settings

    @settings(
        max_examples=EXAMPLES, deadline=None, database=None, derandomize=True,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )  # fmt: skip
    @given(case=operation.as_strategy(generation_mode=mode))
    def probe(case):
        counts[label] = counts.get(label, 0) + 1
        response = case.call(base_url=api, session=session, headers=headers, timeout=30)
        if response.status_code >= 500:
            failures.append({
                "operation": label, "status": response.status_code, "body": response.text[:300],
                "request": {"method": case.method, "path": case.formatted_path,
                            "query": case.query, "body": repr(case.body)[:300]},
            })  # fmt: skip

    return probe
