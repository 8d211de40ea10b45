"""outbox: an index in claim order (the dispatcher claims a few rows at a time)

Revision ID: 0006_mail
Revises: 0004_audit_chain
"""

from alembic import op

revision = "0006_mail"
down_revision = "0004_audit_chain"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_outbox_due", "outbox", ["status", "next_attempt_at", "id"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_outbox_due", table_name="outbox")
