"""Settling: moving each message whose runs have ended to the processed folder (every run succeeded)
or the failed one (with the reasons), and refiling failed messages whose resumed runs succeeded.

Each step is: read what to move (no lock), move it on the IMAP server (no transaction open), then
record it on the rows that are still waiting (locked only for that update). The source's lock keeps
a second settle away; moving a message that is already gone is a no-op, so a crash between the move
and its record only leaves the message to be found moved the next time. Nothing is ever deleted."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from app.core.db import session_scope
from app.core.errors import describe, error_code
from app.core.logging import log_context
from app.integrations.mailbox import MailboxChanged, MailboxConfig, move, refile
from app.models import MailMessage, Run, Source
from app.models.base import utcnow
from app.services.mailboxes import TO_FILE, TO_REFILE, mailbox_config
from app.tasks.mailbox.failures import record_failure
from app.tasks.mailbox.lock import source_lock

SETTLE_BATCH = 200  # messages moved per settle (the rest at the next one)


@dataclass
class Filing:
    """One message to move, and what the move found."""

    row_id: uuid.UUID
    uidvalidity: int
    uid: int
    message_id: str | None
    outcome: str  # processed | failed
    reason: str | None
    error: str | None = None  # it was not where it was to be moved from
    found_at: tuple[int, int] | None = None  # (UIDVALIDITY, UID) it was found again at (the folder was rebuilt)


def settle_source(source_id: uuid.UUID | str) -> dict[str, Any]:
    """Move the messages of a source whose runs have all ended, under the source's lock."""
    source_id = uuid.UUID(str(source_id))
    with source_lock(source_id) as mine:
        if not mine:
            return {"source": str(source_id), "skipped": "the source is being worked on"}
        with session_scope() as session:
            source = session.get(Source, source_id)
            if source is None:
                return {"source": str(source_id), "skipped": "the source no longer exists"}
            name = source.name
        with log_context(source=name, source_id=source_id):
            try:
                with session_scope() as session:
                    config = mailbox_config(session.get(Source, source_id))
                moved = settle(config, source_id)
            except Exception as exc:
                record_failure(source_id, exc)
                return {"source": name, "error": describe(exc), "error_code": error_code(exc)}
            return {"source": name, "settled": moved}


def settle(config: MailboxConfig, source_id: uuid.UUID) -> int:
    """File the messages whose runs have ended, then move on to the processed folder the failed ones
    whose runs were resumed and succeeded. Returns the messages recorded as moved."""
    return file_ended(config, source_id) + refile_resumed(config, source_id)


def file_ended(config: MailboxConfig, source_id: uuid.UUID) -> int:
    groups: dict[tuple[str, int], list[Filing]] = {}
    with session_scope() as session:
        rows = session.execute(
            select(MailMessage)
            .where(TO_FILE, MailMessage.source_id == source_id)
            .order_by(MailMessage.uidvalidity, MailMessage.uid)
            .limit(SETTLE_BATCH)
        ).scalars().all()
        run_ids = {run_id for row in rows for run_id in row.run_ids}
        runs = {run.id: run for run in session.execute(select(Run).where(Run.id.in_(run_ids))).scalars()}
        for row in rows:
            outcome, reason = message_outcome(row, runs)
            folder = config.processed_folder if outcome == "processed" else config.failed_folder
            filing = Filing(row.id, row.uidvalidity, row.uid, row.message_id, outcome, reason)
            groups.setdefault((folder, row.uidvalidity), []).append(filing)
    filed = 0
    for (folder, uidvalidity), group in groups.items():
        _move_group(config, folder, uidvalidity, group)
        filed += _record_filed(folder, group)
    return filed


def message_outcome(row: MailMessage, runs: dict[uuid.UUID, Run]) -> tuple[str, str | None]:
    """processed when every manuscript of the message was taken and every run it waits for succeeded;
    else failed, with the reasons an editor needs."""
    if not row.documents:
        return "failed", row.reason or "nothing could be taken from the message"
    problems = [f"{entry['filename']}: {entry['error']}" for entry in row.documents if entry.get("error")]
    names = {entry.get("run_id"): entry["filename"] for entry in row.documents if entry.get("run_id")}
    for run_id in row.run_ids:
        run = runs.get(run_id)
        name = names.get(str(run_id), "a document")
        if run is None:
            problems.append(f"{name}: its run was deleted")
        elif run.state != "succeeded":
            problems.append(f"{name}: run {run.id} {run.state}" + (f": {run.error}" if run.error else ""))
    if problems:
        return "failed", "; ".join(problems)
    return "processed", None


def _move_group(config: MailboxConfig, folder: str, uidvalidity: int, group: list[Filing]) -> None:
    """Move the group's messages (one login); when the folder was rebuilt since their UIDs were read,
    find them again by Message-ID and move them so (one more login)."""
    try:
        present = set(move(config, [f.uid for f in group], folder, uidvalidity=uidvalidity))
    except MailboxChanged:
        pass
    else:
        for f in group:
            if f.uid not in present:  # moved by a person, or by us just before a crash: not again
                f.error = f"the message had already left {config.folder} when it was to be moved to {folder}"
        return
    found = refile(config, [f.message_id for f in group if f.message_id], config.folder, folder)
    for f in group:
        where = found.get(f.message_id) if f.message_id else None
        if where is not None and where.uid is not None:
            f.found_at = (where.uidvalidity, where.uid)
        elif where is None or not where.in_target:
            f.error = f"the message was no longer in {config.folder} when it was to be moved to {folder}"


def _record_filed(folder: str, group: list[Filing]) -> int:
    """Record the group as moved, on the rows still waiting to be (none twice)."""
    by_id = {f.row_id: f for f in group}
    with session_scope() as session:
        rows = session.execute(
            select(MailMessage)
            .where(MailMessage.id.in_(by_id), MailMessage.state == "accepted")
            .with_for_update()
        ).scalars().all()
        moment = utcnow()
        for row in rows:
            filing = by_id[row.id]
            row.state, row.folder, row.moved_at = filing.outcome, folder, moment
            if filing.reason:
                row.reason = filing.reason
            if filing.error:
                row.error = filing.error
            if filing.found_at:
                row.uidvalidity, row.uid = filing.found_at
        return len(rows)


def refile_resumed(config: MailboxConfig, source_id: uuid.UUID) -> int:
    """Failed → processed, found in the failed folder by Message-ID (its UID there was never
    recorded), all in one login. A message no longer there (a person moved it) is recorded as
    processed where it is, and said so."""
    with session_scope() as session:
        waiting = dict(
            session.execute(
                select(MailMessage.id, MailMessage.message_id)
                .where(TO_REFILE, MailMessage.source_id == source_id)
                .order_by(MailMessage.moved_at)
                .limit(SETTLE_BATCH)
            ).all()
        )
    if not waiting:
        return 0
    message_ids = [message_id for message_id in waiting.values() if message_id]
    found = refile(config, message_ids, config.failed_folder, config.processed_folder) if message_ids else {}
    with session_scope() as session:
        rows = session.execute(
            select(MailMessage)
            .where(MailMessage.id.in_(waiting), MailMessage.state == "failed", MailMessage.moved_at.is_not(None))
            .with_for_update()
        ).scalars().all()
        moment = utcnow()
        for row in rows:
            where = found.get(row.message_id) if row.message_id else None
            if where is not None and (where.uid is not None or where.in_target):
                row.folder = config.processed_folder
            else:
                row.error = (
                    f"its runs succeeded after a resume, but it was no longer in {config.failed_folder} "
                    f"to be moved to {config.processed_folder}"
                )
            row.state, row.reason, row.moved_at = "processed", None, moment
        return len(rows)
