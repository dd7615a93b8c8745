"""mailbox intake: source health, what became of each message

Revision ID: 0002_mailbox
Revises: 0001
"""

from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

revision = "0002_mailbox"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("sources", sa.Column("last_success_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("sources", sa.Column("last_error_code", sa.String(length=50), nullable=True))

    op.add_column("mail_messages", sa.Column("title", sa.Text(), nullable=True))
    op.add_column("mail_messages", sa.Column("size", sa.BigInteger(), nullable=True))
    op.add_column("mail_messages", sa.Column("reason", sa.Text(), nullable=True))
    op.add_column("mail_messages", sa.Column("moved_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column(
        "mail_messages",
        sa.Column(
            "warnings",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'[]'::jsonb"),
            nullable=False,
        ),
    )
    op.add_column(
        "mail_messages",
        sa.Column(
            "documents",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'[]'::jsonb"),
            nullable=False,
        ),
    )
    op.add_column(
        "mail_messages",
        sa.Column(
            "run_ids",
            postgresql.ARRAY(sa.UUID()),
            server_default=sa.text("'{}'::uuid[]"),
            nullable=False,
        ),
    )
    op.create_index("ix_mail_messages_source_id_state", "mail_messages", ["source_id", "state"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_mail_messages_source_id_state", table_name="mail_messages")
    for column in ("run_ids", "documents", "warnings", "moved_at", "reason", "size", "title"):
        op.drop_column("mail_messages", column)
    op.drop_column("sources", "last_error_code")
    op.drop_column("sources", "last_success_at")
