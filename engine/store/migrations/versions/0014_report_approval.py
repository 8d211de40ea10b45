"""consolidated reports go upward only once approved, numbered and signed

Revision ID: 0010_report_approval
Revises: 0008_sweep_index

``consolidated_reports`` gains its way upward (``approval``: draft → approved → signed →
sent, engine.approval), the narrative sections the consolidating unit writes, the number
and the final and signed files. Rows stored before this were handed upward by the
consolidation itself, so they read as 'sent'. ``report_numbers`` is the register of each
issuing body per year: a number is given once (unique constraint) and to one report.
"""

from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0014_report_approval"
down_revision = "0012_registry_history"
branch_labels = None
depends_on = None

_COLUMNS: list[sa.Column[Any]] = [
    sa.Column("approval", sa.String(length=20), server_default="sent", nullable=False),
    sa.Column("narrative", sa.JSON(), nullable=True),
    sa.Column("number_text", sa.String(length=60), nullable=True),
    sa.Column("approved_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("approved_by", sa.String(length=200), nullable=True),
    sa.Column("final_docx_file_id", sa.Integer(), nullable=True),
    sa.Column("final_pdf_file_id", sa.Integer(), nullable=True),
    sa.Column("signed_file_id", sa.Integer(), nullable=True),
    sa.Column("signed_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("signed_by", sa.String(length=200), nullable=True),
    sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
]


def upgrade() -> None:
    # Not in batch mode: on SQLite a batch copies and drops the table, which the foreign
    # keys of a store holding data refuse; ADD COLUMN works in place.
    for column in _COLUMNS:
        op.add_column("consolidated_reports", column)
    op.create_table(
        "report_numbers",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("issuer_id", sa.String(length=80), nullable=False),
        sa.Column("year", sa.Integer(), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("symbol", sa.String(length=40), nullable=False),
        sa.Column("report_id", sa.Integer(), nullable=False),
        sa.Column("assigned_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("assigned_by", sa.String(length=200), nullable=False),
        sa.ForeignKeyConstraint(
            ["report_id"],
            ["consolidated_reports.id"],
            name=op.f("fk_report_numbers_report_id_consolidated_reports"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_report_numbers")),
        sa.UniqueConstraint(
            "issuer_id", "year", "number", name=op.f("uq_report_numbers_issuer_id_year_number")
        ),
        sa.UniqueConstraint("report_id", name=op.f("uq_report_numbers_report_id")),
    )


def downgrade() -> None:
    op.drop_table("report_numbers")
    for column in reversed(_COLUMNS):
        if op.get_bind().dialect.name == "sqlite":
            op.execute(f"ALTER TABLE consolidated_reports DROP COLUMN {column.name}")
        else:
            op.drop_column("consolidated_reports", column.name)
