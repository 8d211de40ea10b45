"""outbox.raw compressed with lz4 on PostgreSQL

Revision ID: 0020_outbox_raw_lz4
Revises: 0018_answer_drafts

Every sent message keeps its exact bytes (~11 KiB for an assignment with its calendar
file). PostgreSQL compresses such values with pglz by default; lz4 (PostgreSQL 14 and
later, when built with it) takes a quarter less of the server's CPU for the dispatcher's
3,500 messages here (benchmarks/bench_dispatch.py) and still compresses. Rows already
stored keep their compression; a server without lz4 keeps pglz. SQLite: nothing to do.
"""

import sqlalchemy as sa
from alembic import op

revision = "0020_outbox_raw_lz4"
down_revision = "0018_answer_drafts"
branch_labels = None
depends_on = None


def _has_lz4() -> bool:
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return False
    choices = bind.execute(
        sa.text("SELECT enumvals FROM pg_settings WHERE name = 'default_toast_compression'")
    ).scalar()
    return "lz4" in (choices or [])


def upgrade() -> None:
    if _has_lz4():
        op.execute("ALTER TABLE outbox ALTER COLUMN raw SET COMPRESSION lz4")


def downgrade() -> None:
    if _has_lz4():
        op.execute("ALTER TABLE outbox ALTER COLUMN raw SET COMPRESSION default")
