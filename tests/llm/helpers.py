"""Starting publish_document runs and waiting for them, through the API or (with a payload the upload
form does not take) through intake, as the mailbox does."""

from __future__ import annotations

import uuid




def submit(client, data: bytes, filename: str) -> str:
    response = client.post("/documents", files={"file": (filename, data)})
    assert response.status_code == 201, response.text
    return response.json()["run"]["id"]


def submit_with_payload(
    data: bytes, filename: str, payload: dict, *, source_id: uuid.UUID | None = None
) -> str:
    from app.core.db import session_scope
    from app.workflows import engine, intake

    with session_scope() as session:
        submission = intake.submit(
            session, data, filename, origin="mail" if source_id else "api", payload=payload, options=payload,
            source_id=source_id,
        )
        assert not submission.duplicate
        run = submission.run
    engine.send(run)
    return str(run.id)



def steps(run: dict) -> dict:
    return {s["name"]: s for s in run["steps"]}
