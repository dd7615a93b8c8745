"""replies to senders and webhooks: notifications, webhooks, what to notify

Revision ID: 0004_notifications
Revises: 0003_wordpress
"""

from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

revision = "0004_notifications"
down_revision = "0003_wordpress"
branch_labels = None
depends_on = None

TO_NOTIFY = "kind = 'run' AND state IN ('succeeded', 'awaiting_approval', 'failed') AND notified_at IS NULL"


def upgrade() -> None:
    op.create_table(
        "webhooks",
        sa.Column("id", sa.UUID(), nullable=False),
        sa.Column("url", sa.String(length=2000), nullable=False),
        sa.Column("workflow", sa.String(length=200), nullable=True),
        sa.Column("events", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("secret_encrypted", sa.Text(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webhooks")),
        sa.UniqueConstraint("url", name=op.f("uq_webhooks_url")),
    )
    op.create_table(
        "notifications",
        sa.Column("id", sa.UUID(), nullable=False),
        sa.Column("run_id", sa.UUID(), nullable=False),
        sa.Column("event_id", sa.BigInteger(), nullable=False),
        sa.Column("event", sa.String(length=30), nullable=False),
        sa.Column("channel", sa.String(length=20), nullable=False),
        sa.Column("recipient", sa.String(length=2000), nullable=False),
        sa.Column("source_id", sa.UUID(), nullable=True),
        sa.Column("webhook_id", sa.UUID(), nullable=True),
        sa.Column("state", sa.String(length=20), nullable=False),
        sa.Column("payload", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("message_id", sa.String(length=1000), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("attempt_log", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("last_error_code", sa.String(length=50), nullable=True),
        sa.Column("claimed_by", sa.String(length=300), nullable=True),
        sa.Column("claimed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.ForeignKeyConstraint(
            ["run_id"], ["runs.id"], name=op.f("fk_notifications_run_id_runs"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["source_id"],
            ["sources.id"],
            name=op.f("fk_notifications_source_id_sources"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["webhook_id"],
            ["webhooks.id"],
            name=op.f("fk_notifications_webhook_id_webhooks"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notifications")),
        sa.UniqueConstraint(
            "event_id", "channel", "recipient", name=op.f("uq_notifications_event_id_channel_recipient")
        ),
    )
    op.create_index(op.f("ix_notifications_run_id"), "notifications", ["run_id"])
    op.create_index(op.f("ix_notifications_source_id"), "notifications", ["source_id"])
    op.create_index(op.f("ix_notifications_webhook_id"), "notifications", ["webhook_id"])
    op.create_index("ix_notifications_state_updated", "notifications", ["state", "updated_at"])

    op.add_column("run_events", sa.Column("notified_at", sa.DateTime(timezone=True), nullable=True))
    # Runs that ended before replies existed are not announced now.
    op.execute(
        "UPDATE run_events SET notified_at = at "
        "WHERE kind = 'run' AND state IN ('succeeded', 'awaiting_approval', 'failed')"
    )
    op.create_index("ix_run_events_to_notify", "run_events", ["id"], postgresql_where=sa.text(TO_NOTIFY))

    op.add_column("sources", sa.Column("reply_error", sa.Text(), nullable=True))
    op.add_column("sources", sa.Column("reply_error_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("mail_messages", sa.Column("language", sa.String(length=20), nullable=True))
    op.add_column(
        "mail_messages",
        sa.Column(
            "references",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'[]'::jsonb"),
            nullable=False,
        ),
    )


def downgrade() -> None:
    op.drop_column("mail_messages", "references")
    op.drop_column("mail_messages", "language")
    op.drop_column("sources", "reply_error_at")
    op.drop_column("sources", "reply_error")
    op.drop_index("ix_run_events_to_notify", table_name="run_events", postgresql_where=sa.text(TO_NOTIFY))
    op.drop_column("run_events", "notified_at")
    op.drop_table("notifications")
    op.drop_table("webhooks")
