"""Runs stored by an earlier version keep working: a run carries its own definition, whose step and
kind may have an older name (`convert`, now `to_docx`)."""

from __future__ import annotations

import pytest
from sqlalchemy import update

from tests.documents.test_legacy import _soffice_convert
from tests.samples import docx
from tests.support import require_program, wait_run

pytestmark = [pytest.mark.worker, pytest.mark.postgres, pytest.mark.redis, pytest.mark.libreoffice]


def test_a_doc_run_stored_with_the_convert_step_still_converts_and_publishes(client, workers, tmp_path):
    from app.core.db import session_scope
    from app.models import Step
    from app.workflows import engine, intake
    from app.workflows.schema import get_workflow

    soffice = require_program("soffice", "LibreOffice", "libreoffice-writer-nogui")
    (tmp_path / "stored.docx").write_bytes(docx("Stored before the rename", seed=4242))
    _soffice_convert(soffice, [tmp_path / "stored.docx"], "doc", tmp_path)
    definition = get_workflow("publish_document").model_dump(mode="json")
    [step] = [s for s in definition["steps"] if s["id"] == "to_docx"]
    step["id"] = "convert"  # as publish_document named it before
    with session_scope() as session:
        run = intake.submit(session, (tmp_path / "stored.doc").read_bytes(), "stored.doc").run
        run.definition = definition
        session.execute(update(Step).where(Step.run_id == run.id, Step.name == "to_docx").values(name="convert"))
    engine.send(run)

    done = wait_run(client, str(run.id), timeout=180)
    assert done["state"] == "succeeded", done["error"]
    steps = {s["name"]: s for s in done["steps"]}
    assert steps["convert"]["state"] == "succeeded" and "converted stored.doc" in steps["convert"]["summary"]
    assert client.get(f"/articles/{done['article_id']}").json()["title"] == "Stored before the rename"
