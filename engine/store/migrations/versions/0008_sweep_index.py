"""the sweep reads only what is due: obligations.next_sweep_on and its indexes

Revision ID: 0008_sweep_index
Revises: 0002_portal_idem (chained on main's head when main was merged in; the brief named 0001)
Create Date: 2026-12-01 09:00:00

``next_sweep_on`` is the first day the daily sweep may remind, mark overdue or escalate
a duty (engine.lifecycle.sweep_days). Rows already stored get 1970-01-01: the first
sweep after the upgrade looks at each open duty once, as every sweep did before, and
stores its real day. ``ix_obligations_sweep`` serves the sweep's query (a cycle's open
duties due by a day); ``ix_obligations_cycle_deliverable_status`` the intake's
question whether a deliverable of a cycle has duties left.
"""

import sqlalchemy as sa
from alembic import op

revision = "0008_sweep_index"
down_revision = "0006_mail"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Not in batch mode: on SQLite a batch copies and drops the table, which the foreign
    # keys of a store holding data refuse; ADD COLUMN and CREATE INDEX work in place.
    op.add_column(
        "obligations",
        sa.Column(
            "next_sweep_on", sa.Date(), server_default=sa.text("'1970-01-01'"), nullable=True
        ),
    )
    op.create_index(
        "ix_obligations_sweep",
        "obligations",
        ["cycle_id", "status", "next_sweep_on"],
        unique=False,
    )
    op.create_index(
        "ix_obligations_cycle_deliverable_status",
        "obligations",
        ["cycle_id", "deliverable_id", "status"],
        unique=False,
    )


def downgrade() -> None:
    # Not in batch mode: on SQLite a batch copies and drops the table, which its foreign
    # keys refuse; SQLite (>= 3.35) drops an unindexed column in place.
    op.drop_index("ix_obligations_cycle_deliverable_status", table_name="obligations")
    op.drop_index("ix_obligations_sweep", table_name="obligations")
    if op.get_bind().dialect.name == "sqlite":
        op.execute("ALTER TABLE obligations DROP COLUMN next_sweep_on")
    else:
        op.drop_column("obligations", "next_sweep_on")
