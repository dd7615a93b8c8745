"""Uploading manuscripts: bad input gets a 4xx with a reason, and nothing is half-written."""

from __future__ import annotations

import io
import zipfile

import pytest
from sqlalchemy import func, select

from app.core.db import session_scope
from app.models import Document, Run
from tests.samples import docx

pytestmark = [pytest.mark.postgres]


def counts(stack_env) -> tuple[int, int, int]:
    storage = stack_env["state_dir"] / "storage" / "manuscripts"
    files = sum(1 for p in storage.rglob("*") if p.is_file()) if storage.exists() else 0
    with session_scope() as session:
        docs = session.execute(select(func.count()).select_from(Document)).scalar_one()
        runs = session.execute(select(func.count()).select_from(Run)).scalar_one()
    return docs, runs, files


def zip_without_word() -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as zf:
        zf.writestr("hello.txt", "not a document")
    return out.getvalue()


@pytest.mark.parametrize(
    "name, data, status, words",
    [
        ("notes.docx", b"just some text pretending to be Word", 422, "not a Word document"),
        ("empty.docx", b"", 422, "empty"),
        ("archive.docx", zip_without_word(), 422, "not a Word document"),
        ("broken.docx", b"PK\x03\x04" + b"\x00" * 200, 422, "damaged"),
        ("huge.docx", b"PK\x03\x04" + b"0" * (5 * 1024 * 1024 + 10), 413, "larger than the limit of 5 MB"),
    ],
)
def test_bad_uploads_are_refused_and_nothing_is_written(client, stack_env, name, data, status, words):
    before = counts(stack_env)
    response = client.post("/documents", files={"file": (name, data)})
    assert response.status_code == status, response.text
    assert words in response.json()["detail"]
    assert response.json()["code"]
    assert counts(stack_env) == before


def test_missing_file_field_is_a_422(client):
    response = client.post("/documents", data={"status": "draft"})
    assert response.status_code == 422
    assert "file" in response.json()["detail"]


def test_invalid_option_is_refused_before_anything_is_kept(client, stack_env):
    before = counts(stack_env)
    response = client.post("/documents", files={"file": ("a.docx", docx(seed=41))}, data={"status": "published!"})
    assert response.status_code == 422
    assert "status" in response.json()["detail"]
    assert counts(stack_env) == before


def test_upload_without_a_token_is_401(anon):
    response = anon.post("/documents", files={"file": ("a.docx", docx(seed=42))})
    assert response.status_code == 401
