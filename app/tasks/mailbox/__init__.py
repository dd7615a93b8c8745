"""Mailbox intake in the running system. The IMAP work itself is `app.integrations.mailbox` (pure);
intake is `app.workflows.intake` (shared with API uploads); what the API and the workers share about
sources is `app.services.mailboxes`. These modules wire them to PostgreSQL, Redis and Celery:

    beat ─▶ copydesk.mailbox.dispatch  only when a mailbox is due or has mail to file (dispatch.WhenDue)
              ├─▶ copydesk.mailbox.poll(source)    each enabled source that is due       (polling, recording)
              └─▶ copydesk.mailbox.settle(source)  each source with messages to file     (settling)

    lock        one poll or settle of a source at a time (redis-py's Lock, kept alive while held)
    dispatch    what is due, claimed in PostgreSQL; beat's schedule
    polling     one poll: file what ended, fetch, record, start the runs, flag what stays
    recording   the messages, their documents and runs, and the cursor, in one transaction
    settling    moving messages whose runs have ended, and refiling resumed ones
    failures    an error shown on the source, and the backoff
    legacy      the .doc attachments of one poll converted in one LibreOffice batch
    tasks       the Celery tasks: thin adapters over the above

Exactly once, step by step:
- One poll or settle of a source at a time: a Redis lock per source, renewed while the work lasts;
  a killed worker's lock expires after STEP_HEARTBEAT_TIMEOUT seconds. The dispatcher also claims a
  due source in PostgreSQL (FOR UPDATE SKIP LOCKED, next_poll_at pushed out) before sending its poll.
- A poll records every message, creates the documents and runs (intake dedupes on the content hash,
  with API uploads too) and stores the cursor, all in ONE transaction. A crash before the commit
  leaves the cursor where it was: the next poll reads the same messages again and records them then.
  The originals are written to storage before that transaction, never while it holds the source's
  row. Runs are sent after the commit (a crash in between leaves queued runs the sweeper re-queues).
- A message read again (a lost cursor, a UIDVALIDITY change, the same message delivered twice) finds
  its row, or its documents find theirs by content hash: it never starts a second run.
- Settling moves a message once all the runs it waits for have ended: to the processed folder when
  they all succeeded, else to the failed one, with the reason. The IMAP moves happen outside any
  transaction; each group moved is then recorded on rows still waiting (locked only for that
  update). Moving a message that is already gone is a no-op, so a retry after a crash cannot move
  twice. Nothing is ever deleted.
"""
