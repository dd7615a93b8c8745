"""Shared fixtures. Component fixtures live in tests/fixtures/ (one module per real component)."""

from __future__ import annotations

import os
import uuid

import httpx
import pytest

# Tests never read a developer's .env or a running dev stack's runtime.env.
os.environ["COPYDESK_ENV_FILE"] = ""

pytest_plugins = [
    "tests.fixtures.stack",
    "tests.fixtures.oss",
    "tests.fixtures.llm",
    "tests.fixtures.wordpress",
    "tests.fixtures.dovecot",
    "tests.fixtures.smtp",
]


@pytest.hookimpl(tryfirst=True)  # before `-m` deselects by marker
def pytest_collection_modifyitems(items):
    """Markers say what a test starts: each test gets the markers its fixtures declare with
    tests.support.starts, through every fixture it uses directly or indirectly. So `-m "not redis"`
    selects no test that starts redis-server, `-m "not wordpress"` none that starts PHP, and so on."""
    for item in items:
        info = getattr(item, "_fixtureinfo", None)
        if info is None:
            continue
        for name in info.names_closure:
            for fixturedef in info.name2fixturedefs.get(name, ()):
                for marker in getattr(fixturedef.func, "starts", ()):
                    if item.get_closest_marker(marker) is None:
                        item.add_marker(marker)


def make_user(role: str = "editor", password: str = "correct horse battery") -> tuple[str, str]:
    from app.core.db import session_scope
    from app.core.security import hash_password
    from app.models import User

    email = f"{role}-{uuid.uuid4().hex[:8]}@example.com"
    with session_scope() as session:
        session.add(User(email=email, role=role, hashed_password=hash_password(password)))
    return email, password


def login(api_url: str, email: str, password: str) -> str:
    response = httpx.post(f"{api_url}/auth/token", data={"username": email, "password": password})
    response.raise_for_status()
    return response.json()["access_token"]


@pytest.fixture(scope="session")
def editor_token(api):
    return login(api, *make_user("editor"))


@pytest.fixture(scope="session")
def admin_token(api):
    return login(api, *make_user("admin"))


@pytest.fixture
def client(api, editor_token):
    """An HTTP client logged in as an editor."""
    with httpx.Client(base_url=api, headers={"Authorization": f"Bearer {editor_token}"}, timeout=30) as c:
        yield c


@pytest.fixture
def admin_client(api, admin_token):
    with httpx.Client(base_url=api, headers={"Authorization": f"Bearer {admin_token}"}, timeout=30) as c:
        yield c


@pytest.fixture
def anon(api):
    with httpx.Client(base_url=api, timeout=30) as c:
        yield c
