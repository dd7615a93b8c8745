"""The .doc attachments of one poll are converted with one LibreOffice start; each run's convert step
then finds its .docx ready."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import select

from tests.documents.test_legacy import _soffice_convert
from tests.fixtures.dovecot import make_message
from tests.mailbox.helpers import drive, folder_counts, runs, settled
from tests.samples import docx
from tests.support import require_program

pytestmark = [pytest.mark.imap, pytest.mark.libreoffice, pytest.mark.worker, pytest.mark.postgres, pytest.mark.redis]


def test_legacy_attachments_of_one_poll_are_converted_in_one_batch(make_source, dovecot, imap_user, tmp_path):
    from app.core.db import session_scope
    from app.models import Step

    soffice = require_program("soffice", "LibreOffice", "libreoffice-writer-nogui")
    sources = []
    for n in range(3):
        path = tmp_path / f"chapter-{n}.docx"
        path.write_bytes(docx(f"Chapter {n}", paragraphs=2, seed=7100 + n))
        sources.append(path)
    _soffice_convert(soffice, sources, "doc", tmp_path)
    attachments = [(f"chapter-{n}.doc", (tmp_path / f"chapter-{n}.doc").read_bytes(), "application/msword")
                   for n in range(3)]
    source_id = make_source(imap_user)
    dovecot.deliver(imap_user, make_message(subject="Three legacy chapters", attachments=attachments))
    [row] = drive(lambda: settled(source_id, 1), timeout=180, message="the three runs to end and the mail to move")

    found = runs(source_id)
    assert len(found) == 3 and all(r.state == "succeeded" for r in found), [r.error for r in found]
    assert row.state == "processed"
    with session_scope() as session:
        converts = session.execute(
            select(Step).where(Step.run_id.in_([uuid.UUID(str(r.id)) for r in found]), Step.name == "to_docx")
        ).scalars().all()
        assert len(converts) == 3
        assert all(s.state == "succeeded" and "was already converted" in s.summary for s in converts)
    assert folder_counts(dovecot, imap_user) == {"INBOX": 0, "Processed": 1, "Failed": 0}
