"""audit log: hash chain, content references, append-only triggers

Every audit row gets its chain (the plan id, "" for none), ``seq``, ``prev_hash``,
``row_hash`` and, when it records a submission or a consolidated report, the hash of its
content; ``audit_chain_heads`` holds each chain's last row. Rows already stored are
chained in id order; submissions and reports that no row records (a consolidation's own
answer before this revision) get an 'audit.sealed' row. Both seal what the database
holds at the upgrade: an edit made before it cannot be seen.

Revision ID: 0004_audit_chain
Revises: 0002_portal_idem
Create Date: 2026-12-01 09:00:00
"""

import datetime as dt
from types import SimpleNamespace
from typing import Any

import sqlalchemy as sa
from alembic import op

import engine.store.models
from engine.audit_chain import (
    GENESIS,
    GLOBAL_CHAIN,
    as_stored,
    report_hash,
    row_hash,
    submission_hash,
)
from engine.store.db import drop_audit_guards, install_audit_guards

revision = "0004_audit_chain"
down_revision = "0002_portal_idem"
branch_labels = None
depends_on = None

_UTC = engine.store.models.UTCDateTime(timezone=True)

# The columns this revision reads, as they are at this revision (not the models'
# current tables, which later revisions may extend).
_events = sa.table(
    "audit_events",
    sa.column("id", sa.Integer),
    sa.column("at", _UTC),
    sa.column("actor", sa.String),
    sa.column("action", sa.String),
    sa.column("plan_id", sa.String),
    sa.column("obligation_id", sa.Integer),
    sa.column("remote_addr", sa.String),
    sa.column("data", sa.JSON),
    sa.column("chain", sa.String),
    sa.column("seq", sa.Integer),
    sa.column("prev_hash", sa.String),
    sa.column("row_hash", sa.String),
    sa.column("ref_kind", sa.String),
    sa.column("ref_id", sa.Integer),
    sa.column("content_hash", sa.String),
)
_heads = sa.table(
    "audit_chain_heads",
    sa.column("chain", sa.String),
    sa.column("seq", sa.Integer),
    sa.column("row_hash", sa.String),
)
_submissions = sa.table(
    "submissions",
    *(sa.column(n, sa.Integer) for n in ("id", "obligation_id", "version")),
    sa.column("values", sa.JSON),
    sa.column("summary", sa.Text),
    sa.column("file_ids", sa.JSON),
    sa.column("submitted_at", _UTC),
    sa.column("source", sa.String),
    sa.column("on_time", sa.Boolean),
)
_reports = sa.table(
    "consolidated_reports",
    *(sa.column(n, sa.Integer) for n in ("id", "cycle_id", "revision", "document_file_id")),
    sa.column("consolidation_id", sa.String),
    sa.column("by_unit_id", sa.String),
    sa.column("aggregates", sa.JSON),
    sa.column("status_table", sa.JSON),
    sa.column("created_at", _UTC),
)
_files = sa.table("files", sa.column("id", sa.Integer), sa.column("sha256", sa.String))
_obligations = sa.table(
    "obligations", sa.column("id", sa.Integer), sa.column("cycle_id", sa.Integer)
)
_cycles = sa.table("cycles", sa.column("id", sa.Integer), sa.column("instance_id", sa.Integer))
_instances = sa.table(
    "plan_instances", sa.column("id", sa.Integer), sa.column("plan_id", sa.String)
)


def upgrade() -> None:
    op.create_table(
        "audit_chain_heads",
        sa.Column("chain", sa.String(length=80), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("row_hash", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("chain", name=op.f("pk_audit_chain_heads")),
    )
    with op.batch_alter_table("audit_events", schema=None) as batch_op:
        batch_op.add_column(sa.Column("chain", sa.String(length=80), nullable=True))
        batch_op.add_column(sa.Column("seq", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("prev_hash", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("row_hash", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("ref_kind", sa.String(length=20), nullable=True))
        batch_op.add_column(sa.Column("ref_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("content_hash", sa.String(length=64), nullable=True))
    _chain_stored_rows(op.get_bind())
    with op.batch_alter_table("audit_events", schema=None) as batch_op:
        for name in ("chain", "seq", "prev_hash", "row_hash"):
            batch_op.alter_column(name, nullable=False)
        batch_op.create_unique_constraint(batch_op.f("uq_audit_events_chain_seq"), ["chain", "seq"])
        batch_op.create_index("ix_audit_events_ref", ["ref_kind", "ref_id"], unique=False)
    install_audit_guards(op.get_bind())  # after the batch: SQLite recreated the table


def downgrade() -> None:
    drop_audit_guards(op.get_bind())
    with op.batch_alter_table("audit_events", schema=None) as batch_op:
        batch_op.drop_index("ix_audit_events_ref")
        batch_op.drop_constraint(batch_op.f("uq_audit_events_chain_seq"), type_="unique")
        for name in ("content_hash", "ref_id", "ref_kind", "row_hash", "prev_hash", "seq"):
            batch_op.drop_column(name)
        batch_op.drop_column("chain")
    op.drop_table("audit_chain_heads")


# ---------------------------------------------------------------- chaining stored rows


_WRITTEN = ("chain", "seq", "prev_hash", "row_hash", "ref_kind", "ref_id", "content_hash")


def _chain_stored_rows(connection: sa.Connection) -> None:
    submissions, reports = _contents(connection)
    heads: dict[str, tuple[int, str]] = {}
    referenced: set[tuple[str, int]] = set()
    rows = connection.execute(sa.select(_events).order_by(_events.c.id)).mappings().all()
    for stored in rows:
        row = dict(stored)
        row.update(_ref_of(row, submissions, reports))
        if row["ref_kind"]:
            referenced.add((row["ref_kind"], row["ref_id"]))
        _link(row, heads)
        connection.execute(
            sa.update(_events)
            .where(_events.c.id == row["id"])
            .values({k: row[k] for k in _WRITTEN})
        )
    sealed = [
        _sealing_row(kind, key, content, heads)
        for kind, contents in (("submission", submissions), ("report", reports))
        for key, content in sorted(contents.items())
        if (kind, key) not in referenced
    ]
    if sealed:
        connection.execute(sa.insert(_events), sealed)
    if heads:
        connection.execute(
            sa.insert(_heads),
            [{"chain": c, "seq": s, "row_hash": h} for c, (s, h) in heads.items()],
        )


def _link(row: dict[str, Any], heads: dict[str, tuple[int, str]]) -> None:
    row["chain"] = row["plan_id"] or GLOBAL_CHAIN
    row["data"] = as_stored(row["data"] or {})
    seq, prev = heads.get(row["chain"], (0, GENESIS))
    row["seq"], row["prev_hash"] = seq + 1, prev
    row["row_hash"] = row_hash(row)
    heads[row["chain"]] = (row["seq"], row["row_hash"])


def _ref_of(
    row: dict[str, Any], submissions: dict[int, dict], reports: dict[int, dict]
) -> dict[str, Any]:
    data = row["data"] or {}
    if row["action"] == "submission.recorded" and data.get("submission_id") in submissions:
        found = submissions[data["submission_id"]]
        return {"ref_kind": "submission", "ref_id": found["id"], "content_hash": found["hash"]}
    consolidated = row["action"] in ("cycle.consolidated", "cycle.reconsolidated")
    if consolidated and data.get("report_id") in reports:
        found = reports[data["report_id"]]
        return {"ref_kind": "report", "ref_id": found["id"], "content_hash": found["hash"]}
    return {"ref_kind": None, "ref_id": None, "content_hash": None}


def _sealing_row(
    kind: str, key: int, content: dict, heads: dict[str, tuple[int, str]]
) -> dict[str, Any]:
    row: dict[str, Any] = {
        "at": dt.datetime.now(dt.UTC),
        "actor": "system:migration",
        "action": "audit.sealed",
        "plan_id": content["plan_id"],
        "obligation_id": content.get("obligation_id"),
        "remote_addr": None,
        "data": {"reason": "recorded before the audit chain (migration 0004_audit_chain)"},
        "ref_kind": kind,
        "ref_id": key,
        "content_hash": content["hash"],
    }
    _link(row, heads)
    return row


def _contents(connection: sa.Connection) -> tuple[dict[int, dict], dict[int, dict]]:
    """{id: {hash, plan_id, …}} of every stored submission and consolidated report."""
    plan_of_cycle = {
        cycle_id: plan_id
        for cycle_id, plan_id in connection.execute(
            sa.select(_cycles.c.id, _instances.c.plan_id).join(
                _instances, _instances.c.id == _cycles.c.instance_id
            )
        )
    }
    cycle_of = {
        key: cycle
        for key, cycle in connection.execute(sa.select(_obligations.c.id, _obligations.c.cycle_id))
    }
    submissions = {}
    for stored in connection.execute(sa.select(_submissions)).mappings():
        row = SimpleNamespace(**stored)
        submissions[row.id] = {
            "id": row.id,
            "hash": submission_hash(row),
            "plan_id": plan_of_cycle.get(cycle_of.get(row.obligation_id)),
            "obligation_id": row.obligation_id,
        }
    sha_of = {key: sha for key, sha in connection.execute(sa.select(_files.c.id, _files.c.sha256))}
    reports = {}
    for stored in connection.execute(sa.select(_reports)).mappings():
        row = SimpleNamespace(**stored)
        digest = sha_of.get(row.document_file_id)
        reports[row.id] = {
            "id": row.id,
            "hash": report_hash(row, digest),
            "plan_id": plan_of_cycle.get(row.cycle_id),
        }
    return submissions, reports
