"""registry history: dated change sets and the unit versions they write

Revision ID: 0010_registry_history
Revises: 0008_sweep_index

``registry_changes`` holds each applied change set (``kehoach registry apply``), and
``registry_unit_versions`` the versions of units it wrote (new attributes from a date,
a unit's end with its successors). Both are append-only: the registry as of a date is
the loaded registry plus the change sets effective by then (engine.registry_history).
New tables only (no batch copy of a table holding data).
"""

import sqlalchemy as sa
from alembic import op

import engine.store.models

revision = "0012_registry_history"
down_revision = "0010_authority_messages"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "registry_changes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("registry_id", sa.String(length=80), nullable=False),
        sa.Column("change_id", sa.String(length=80), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("effective", sa.Date(), nullable=False),
        sa.Column("content_hash", sa.String(length=64), nullable=False),
        sa.Column("source_path", sa.Text(), nullable=True),
        sa.Column("source_text", sa.Text(), nullable=False),
        sa.Column("definition", sa.JSON(), nullable=False),
        sa.Column("applied_at", engine.store.models.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_registry_changes")),
        sa.UniqueConstraint(
            "registry_id", "change_id", name=op.f("uq_registry_changes_registry_id_change_id")
        ),
    )
    op.create_index(
        op.f("ix_registry_changes_registry_id"), "registry_changes", ["registry_id"], unique=False
    )
    op.create_table(
        "registry_unit_versions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("change_row_id", sa.Integer(), nullable=False),
        sa.Column("registry_id", sa.String(length=80), nullable=False),
        sa.Column("unit_id", sa.String(length=80), nullable=False),
        sa.Column("event", sa.String(length=20), nullable=False),
        sa.Column("valid_from", sa.Date(), nullable=False),
        sa.Column("attrs", sa.JSON(), nullable=False),
        sa.Column("successors", sa.JSON(), nullable=False),
        sa.Column("rule", sa.JSON(), nullable=True),
        sa.ForeignKeyConstraint(
            ["change_row_id"],
            ["registry_changes.id"],
            name=op.f("fk_registry_unit_versions_change_row_id_registry_changes"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_registry_unit_versions")),
    )
    op.create_index(
        op.f("ix_registry_unit_versions_change_row_id"),
        "registry_unit_versions",
        ["change_row_id"],
        unique=False,
    )
    op.create_index(
        "ix_registry_unit_versions_unit",
        "registry_unit_versions",
        ["registry_id", "unit_id"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_table("registry_unit_versions")
    op.drop_table("registry_changes")
