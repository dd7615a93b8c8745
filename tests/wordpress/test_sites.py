"""The /sites API and the default site from WP_URL, against the real test WordPress (no workers: the
API checks credentials and reads categories itself)."""

from __future__ import annotations

import uuid

import pytest

pytestmark = [pytest.mark.wordpress, pytest.mark.postgres]


@pytest.fixture
def env_site(stack_env, api, wordpress):
    """The test process and its API with WP_URL / WP_USER / WP_APP_PASSWORD set to the test WordPress."""
    from tests.fixtures.stack import process_environment

    overrides = {"WP_URL": wordpress.url, "WP_USER": wordpress.user, "WP_APP_PASSWORD": wordpress.app_password}
    with process_environment(overrides):
        yield overrides
    from kombu import pools

    pools.reset()  # configure() closed the broker's pool, which kombu keeps by URL: a fresh one next time


def site_values(wordpress, **fields) -> dict:
    return {
        "name": f"desk-{uuid.uuid4().hex[:8]}",
        "url": wordpress.url + "/",
        "username": wordpress.user,
        "app_password": wordpress.app_password,
        **fields,
    }


def test_default_site_comes_from_the_environment(admin_client, client, env_site, wordpress):
    from app.core.db import session_scope
    from app.core.security import decrypt_secret
    from app.models import Site

    listed = client.get("/sites")  # editors may read the sites
    assert listed.status_code == 200, listed.text
    default = listed.json()[0]
    assert default["name"] == "default" and default["from_env"] is True and default["is_default"] is True
    assert default["url"] == wordpress.url and default["username"] == wordpress.user
    assert default["app_password_set"] is True and "app_password" not in default
    assert wordpress.app_password not in listed.text
    # Listing again changes nothing (one row, same id).
    again = client.get("/sites").json()
    assert [s["id"] for s in again if s["name"] == "default"] == [default["id"]]
    with session_scope() as session:
        row = session.get(Site, uuid.UUID(default["id"]))
        assert row.app_password_encrypted != wordpress.app_password  # encrypted at rest
        assert decrypt_secret(row.app_password_encrypted) == wordpress.app_password
    # It is changed through the environment, not the API.
    assert admin_client.patch(f"/sites/{default['id']}", json={"body_format": "html"}).status_code == 409
    assert admin_client.delete(f"/sites/{default['id']}").status_code == 409
    assert admin_client.post("/sites", json=site_values(wordpress, is_default=True)).status_code == 409
    assert admin_client.post("/sites", json=site_values(wordpress, name="default")).status_code == 409
    # Its credentials work.
    test = admin_client.post(f"/sites/{default['id']}/test").json()
    assert test["ok"] is True and test["user"]["slug"] == wordpress.user and all(test["can"].values())


def test_site_crud_password_write_only(admin_client, client, anon, env_site, wordpress):
    from app.core.db import session_scope
    from app.core.security import decrypt_secret
    from app.models import Site

    values = site_values(wordpress, body_format="html", import_images=False, options={"timeout": 20})
    assert anon.get("/sites").status_code == 401
    assert client.post("/sites", json=values).status_code == 403  # editors cannot add sites
    created = admin_client.post("/sites", json=values)
    assert created.status_code == 201, created.text
    site = created.json()
    try:
        assert site["url"] == wordpress.url  # normalised (no trailing slash)
        assert (site["body_format"], site["import_images"], site["options"]) == ("html", False, {"timeout": 20})
        assert site["app_password_set"] is True and wordpress.app_password not in created.text
        assert admin_client.post("/sites", json=values).status_code == 409  # the name is taken
        assert admin_client.post("/sites", json={**values, "name": "x", "url": "ftp://nope"}).status_code == 422

        changed = admin_client.patch(f"/sites/{site['id']}", json={"app_password": "new secret value", "default_status": "pending"})
        assert changed.status_code == 200 and "new secret value" not in changed.text
        assert changed.json()["default_status"] == "pending" and changed.json()["body_format"] == "html"
        with session_scope() as session:
            assert decrypt_secret(session.get(Site, uuid.UUID(site["id"])).app_password_encrypted) == "new secret value"
        assert client.patch(f"/sites/{site['id']}", json={"default_status": "draft"}).status_code == 403

        test = admin_client.post(f"/sites/{site['id']}/test").json()
        assert test["ok"] is False and test["error_code"] == "auth_failed" and "new secret value" not in str(test)
        admin_client.patch(f"/sites/{site['id']}", json={"app_password": wordpress.app_password})
        assert admin_client.post(f"/sites/{site['id']}/test").json()["ok"] is True
        assert client.get(f"/sites/{site['id']}").json()["name"] == values["name"]
    finally:
        assert admin_client.delete(f"/sites/{site['id']}").status_code == 204
    assert client.get(f"/sites/{site['id']}").status_code == 404


def test_categories_of_a_site(admin_client, client, env_site, wordpress):
    from app.services.sites import env_wordpress_site, forget_site_terms, site_terms

    name = f"Économie {uuid.uuid4().hex[:6]}"
    with wordpress.client() as c:
        c.post("wp/v2/categories", json={"name": name}).raise_for_status()
    default = next(s for s in client.get("/sites").json() if s["name"] == "default")
    categories = client.get(f"/sites/{default['id']}/categories")
    assert categories.status_code == 200, categories.text
    names = [c["name"] for c in categories.json()]
    assert "Uncategorized" in names and name in names
    # What the transform step asks (tags and categories), kept in Redis for SITE_TERMS_TTL seconds.
    wp = env_wordpress_site()
    forget_site_terms(wp)
    terms = site_terms(wp)
    assert name in terms.categories and terms.error is None
    tag = f"Straße {uuid.uuid4().hex[:6]}"
    with wordpress.client() as c:
        made = c.post("wp/v2/tags", json={"name": tag}).json()
    wordpress.reset()
    assert tag not in [t.name for t in site_terms(wp).tags] and wordpress.requests() == []  # from the cache
    forget_site_terms(wp)
    fresh = site_terms(wp)
    assert (tag, made["slug"]) in [(t.name, t.slug) for t in fresh.tags]
    assert {r["route"] for r in wordpress.requests()} == {"/wp/v2/tags", "/wp/v2/categories"}
    assert site_terms(None).tags == [] and site_terms(None).categories == []
    # A site that cannot be asked: no terms, and why (nothing cached).
    forget_site_terms(wp)
    wordpress.fail_next(1, status=500, route="#^/wp/v2/tags#")
    down = site_terms(wp)
    assert down.tags == [] and "500" in down.error
    assert tag in [t.name for t in site_terms(wp).tags]


def test_default_site_from_the_database_when_no_environment(admin_client, stack_env, api, wordpress):
    """Without WP_URL, the site marked default in the database is the default; only one can be."""
    from app.core.db import session_scope
    from app.services.sites import default_site

    first = admin_client.post("/sites", json=site_values(wordpress, is_default=True)).json()
    second = admin_client.post("/sites", json=site_values(wordpress)).json()
    try:
        with session_scope() as session:
            assert default_site(session).id == uuid.UUID(first["id"])
        assert admin_client.patch(f"/sites/{second['id']}", json={"is_default": True}).json()["is_default"] is True
        assert admin_client.get(f"/sites/{first['id']}").json()["is_default"] is False
        with session_scope() as session:
            assert default_site(session).id == uuid.UUID(second["id"])
    finally:
        admin_client.delete(f"/sites/{first['id']}")
        admin_client.delete(f"/sites/{second['id']}")
    with session_scope() as session:
        assert default_site(session) is None  # and so the local preview


def test_options_of_the_default_site_from_the_environment(client, stack_env, api, wordpress):
    """WP_SITE_OPTIONS gives the default site its options (the API cannot change that site)."""
    import json
    import os

    from app.core.config import reset_settings_cache
    from app.core.errors import ConfigurationError
    from app.services.sites import env_wordpress_site
    from tests.fixtures.stack import configure_process

    options = {"create_terms": "never", "featured_image_in_body": True, "transliterate_slugs": True}
    overrides = {
        "WP_URL": wordpress.url, "WP_USER": wordpress.user, "WP_APP_PASSWORD": wordpress.app_password,
        "WP_SITE_OPTIONS": json.dumps(options),
    }  # fmt: skip
    configure_process({**stack_env["env"], **overrides})
    try:
        default = next(s for s in client.get("/sites").json() if s["name"] == "default")
        assert default["options"] == options and default["from_env"] is True
        wp = env_wordpress_site()
        assert (wp.create_terms, wp.featured_image_in_body, wp.transliterate_slugs) == ("never", True, True)
        os.environ["WP_SITE_OPTIONS"] = json.dumps({"create_terms": "sometimes"})
        reset_settings_cache()
        with pytest.raises(ConfigurationError, match="WP_SITE_OPTIONS: create_terms"):
            env_wordpress_site()
        os.environ.pop("WP_SITE_OPTIONS")
        reset_settings_cache()
        default = next(s for s in client.get("/sites").json() if s["name"] == "default")
        assert default["options"] == {}  # back to the defaults with the variable
    finally:
        for key in overrides:
            os.environ.pop(key, None)
        configure_process(stack_env["env"])
        from kombu import pools

        pools.reset()
