"""unit_messages.file_id, form_key: a supporting unit's contribution, its file, its form

Revision ID: 0014_support_contributions
Revises: 0012_registry_history

A supporting unit (phối hợp) of a tracked task contributes through its own portal link
(engine.task_contributions); the contribution is a unit message of kind
``contribution`` addressed to the task's lead, with at most one file; ``form_key``
names the form it was posted from, so a form posted twice is kept once. Nullable
columns (ADD COLUMN, no batch copy): existing messages have neither.
"""

import sqlalchemy as sa
from alembic import op

revision = "0016_support_contributions"
down_revision = "0014_report_approval"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("unit_messages", sa.Column("file_id", sa.Integer(), nullable=True))
    op.add_column("unit_messages", sa.Column("form_key", sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("unit_messages") as batch_op:
        batch_op.drop_column("form_key")
        batch_op.drop_column("file_id")
