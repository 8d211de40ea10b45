"""answer_drafts: a unit's answer saved in the portal without sending it

Revision ID: 0018_answer_drafts
Revises: 0016_support_contributions

"Lưu nháp" on the portal form keeps what the unit typed, one row per obligation
(replaced by each save, removed when an answer is sent). A draft is never a submission:
nothing counts, consolidates or acknowledges it.
"""

import sqlalchemy as sa
from alembic import op

revision = "0018_answer_drafts"
down_revision = "0016_support_contributions"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "answer_drafts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("obligation_id", sa.Integer(), nullable=False),
        sa.Column("values", sa.JSON(), nullable=False),
        sa.Column("saved_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("saved_by", sa.String(length=200), nullable=False),
        sa.ForeignKeyConstraint(
            ["obligation_id"],
            ["obligations.id"],
            name=op.f("fk_answer_drafts_obligation_id_obligations"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_answer_drafts")),
        sa.UniqueConstraint("obligation_id", name=op.f("uq_answer_drafts_obligation_id")),
    )


def downgrade() -> None:
    op.drop_table("answer_drafts")
