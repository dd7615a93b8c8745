"""A site's options are typed: checked when saved through the API (a 422 that names the key), kept as
validated, read back as attributes (no WordPress needed: nothing here logs in)."""

from __future__ import annotations

import uuid

import pytest

pytestmark = [pytest.mark.postgres]


def test_site_options_are_checked_on_save_and_read_as_attributes(admin_client):
    from app.core.db import session_scope
    from app.models import Site
    from app.services.sites import wordpress_site

    base = {"name": f"opts-{uuid.uuid4().hex[:8]}", "url": "https://news.example.org", "username": "desk",
            "app_password": "abcd efgh ijkl"}  # fmt: skip
    unknown = admin_client.post("/sites", json={**base, "options": {"timeout": 5, "colour": "red"}})
    assert unknown.status_code == 422 and "options.colour" in unknown.json()["detail"]
    out_of_range = admin_client.post("/sites", json={**base, "options": {"timeout": -1}})
    assert out_of_range.status_code == 422 and "options.timeout" in out_of_range.json()["detail"]
    assert admin_client.post("/sites", json={**base, "options": {"from_env": True}}).status_code == 422

    created = admin_client.post("/sites", json={**base, "options": {"timeout": 5, "verify_tls": False}})
    assert created.status_code == 201, created.text
    site_id = created.json()["id"]
    try:
        assert created.json()["options"] == {"timeout": 5.0, "verify_tls": False}
        changed = admin_client.patch(f"/sites/{site_id}", json={"options": {"attempts": 2}})  # the rest is kept
        assert changed.json()["options"] == {"timeout": 5.0, "verify_tls": False, "attempts": 2}
        assert admin_client.patch(f"/sites/{site_id}", json={"options": {"attempts": 0}}).status_code == 422
        with session_scope() as session:
            site = session.get(Site, uuid.UUID(site_id))
            assert (site.options.attempts, site.options.timeout, site.options.from_env) == (2, 5.0, False)
            wp = wordpress_site(site)
            assert (wp.attempts, wp.timeout, wp.verify_tls, wp.upload_timeout) == (2, 5.0, False, 300.0)
    finally:
        assert admin_client.delete(f"/sites/{site_id}").status_code == 204
