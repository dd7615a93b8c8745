"""WordPress sites: at most one default site

Revision ID: 0003_wordpress
Revises: 0002_mailbox
"""

from alembic import op
import sqlalchemy as sa

revision = "0003_wordpress"
down_revision = "0002_mailbox"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Two sites marked default would make "the default site" a coin toss: keep the first, then index.
    op.execute(
        "UPDATE sites SET is_default = false WHERE is_default AND id <> "
        "(SELECT id FROM sites WHERE is_default ORDER BY created_at, id LIMIT 1)"
    )
    op.create_index(
        "uq_sites_is_default", "sites", ["is_default"], unique=True, postgresql_where=sa.text("is_default")
    )


def downgrade() -> None:
    op.drop_index("uq_sites_is_default", table_name="sites", postgresql_where=sa.text("is_default"))
