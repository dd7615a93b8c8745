"""Authentication and roles on the real API."""

from __future__ import annotations

import base64
import json
import time

import httpx
import pytest
from jose import jwt

from tests.conftest import login, make_user

pytestmark = [pytest.mark.postgres]


def test_login_gives_a_token_that_opens_the_api(anon):
    email, password = make_user("editor")
    response = anon.post("/auth/token", data={"username": email, "password": password})
    assert response.status_code == 200
    body = response.json()
    assert body["token_type"] == "bearer" and body["expires_in"] > 0
    me = anon.get("/users/me", headers={"Authorization": f"Bearer {body['access_token']}"})
    assert me.status_code == 200 and me.json()["email"] == email and me.json()["role"] == "editor"


def test_wrong_password_and_unknown_user_look_the_same(anon):
    email, _ = make_user("editor")
    wrong = anon.post("/auth/token", data={"username": email, "password": "not the password"})
    unknown = anon.post("/auth/token", data={"username": "nobody@example.com", "password": "whatever12"})
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.json()["detail"] == unknown.json()["detail"] == "wrong e-mail or password"


def _forge(claims: dict, key: str, alg: str = "HS256") -> str:
    return jwt.encode(claims, key, algorithm=alg)


def _none_token(claims: dict) -> str:
    def b64(data: dict) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()

    return f"{b64({'alg': 'none', 'typ': 'JWT'})}.{b64(claims)}."


@pytest.mark.parametrize("case", ["missing", "garbage", "alg_none", "wrong_key", "expired", "tampered", "no_sub"])
def test_bad_tokens_get_401_with_a_reason(anon, stack_env, case):
    email, password = make_user("editor")
    good = login(anon.base_url, email, password)
    claims = jwt.get_unverified_claims(good)
    secret = stack_env["env"]["JWT_SECRET_KEY"]
    token = {
        "missing": None,
        "garbage": "not-a-token",
        "alg_none": _none_token(claims),
        "wrong_key": _forge(claims, "x" * 40),
        "expired": _forge({**claims, "exp": int(time.time()) - 10}, secret),
        "tampered": good[:-4] + ("AAAA" if not good.endswith("AAAA") else "BBBB"),
        "no_sub": _forge({k: v for k, v in claims.items() if k != "sub"}, secret),
    }[case]
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    response = anon.get("/runs", headers=headers)
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert response.json()["detail"]
    if case == "expired":
        assert "expired" in response.json()["detail"]


def test_admin_routes_refuse_editors(client, admin_client):
    assert client.get("/users").status_code == 403
    assert client.post("/users", json={"email": "x@example.com", "password": "12345678"}).status_code == 403
    created = admin_client.post("/users", json={"email": "new-editor@example.com", "password": "long enough"})
    assert created.status_code == 201 and created.json()["role"] == "editor"
    assert "password" not in created.text and "hashed" not in created.text
    again = admin_client.post("/users", json={"email": "new-editor@example.com", "password": "long enough"})
    assert again.status_code == 409


def test_cli_creates_users_that_can_log_in(stack_env, api):
    from typer.testing import CliRunner

    from app.cli import app

    result = CliRunner().invoke(
        app, ["users", "create", "cli-admin@example.com", "--role", "admin"], env={"COPYDESK_PASSWORD": "from the cli"}
    )
    assert result.exit_code == 0, result.output
    token = login(api, "cli-admin@example.com", "from the cli")
    assert httpx.get(f"{api}/users", headers={"Authorization": f"Bearer {token}"}).status_code == 200
    duplicate = CliRunner().invoke(app, ["users", "create", "cli-admin@example.com"], env={"COPYDESK_PASSWORD": "x" * 9})
    assert duplicate.exit_code == 1


def test_openapi_docs_are_served(anon):
    assert anon.get("/docs").status_code == 200
    paths = anon.get("/openapi.json").json()["paths"]
    assert "/documents" in paths and "/runs/{run_id}/events" in paths
