"""unit_messages: reports and comments units send unasked under a plan

Revision ID: 0010_authority_messages
Revises: 0008_sweep_index
Create Date: 2026-12-01 17:00:00

A unit may report on its own initiative or comment on a plan through the portal link of
one of its duties (engine.unit_messages); each message is kept here, audited, and mailed
to the unit that gathers that duty's answers. A new table: no data is copied.
"""

import sqlalchemy as sa
from alembic import op

from engine.store.models import UTCDateTime

revision = "0010_authority_messages"
down_revision = "0008_sweep_index"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "unit_messages",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("plan_id", sa.String(length=80), nullable=False),
        sa.Column("cycle_id", sa.Integer(), sa.ForeignKey("cycles.id"), nullable=False),
        sa.Column("obligation_id", sa.Integer(), sa.ForeignKey("obligations.id"), nullable=False),
        sa.Column("unit_id", sa.String(length=80), nullable=False),
        sa.Column("to_unit_id", sa.String(length=80), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("subject", sa.Text(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("created_at", UTCDateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_unit_messages_plan_id", "unit_messages", ["plan_id"])
    op.create_index("ix_unit_messages_cycle_id", "unit_messages", ["cycle_id"])


def downgrade() -> None:
    op.drop_index("ix_unit_messages_cycle_id", table_name="unit_messages")
    op.drop_index("ix_unit_messages_plan_id", table_name="unit_messages")
    op.drop_table("unit_messages")
