"""portal answers carry an idempotency key

Revision ID: 0002_portal_idem
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002_portal_idem"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("submissions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("form_key", sa.String(length=64), nullable=True))
        batch_op.create_unique_constraint(
            batch_op.f("uq_submissions_obligation_id_form_key"), ["obligation_id", "form_key"]
        )


def downgrade() -> None:
    with op.batch_alter_table("submissions", schema=None) as batch_op:
        batch_op.drop_constraint(
            batch_op.f("uq_submissions_obligation_id_form_key"), type_="unique"
        )
        batch_op.drop_column("form_key")
