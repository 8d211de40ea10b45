"""The audit log's hash chain: canonical content, SHA-256, and appending at commit.

Every audit row belongs to the chain of its plan ("" for rows about no plan). It carries
``seq`` (1, 2, … within the chain, so a deleted row leaves a gap), ``prev_hash`` (the
previous row's ``row_hash``; :data:`GENESIS` for the first) and ``row_hash``, the
SHA-256 of its canonical content (sorted-key JSON, UTC timestamps) including
``prev_hash``. A row that records a submission or a consolidated report names it
(``ref_kind``, ``ref_id``) with the hash of its content (:func:`content_ref`).

Rows are queued in the session and chained when the transaction commits
(``before_commit``): the chain head's row lock (PostgreSQL) or the write lock (SQLite)
is then the last lock the transaction takes and is held only for the INSERT and the
COMMIT. Taken at the first audit row, it would be held across the rest of the
transaction and deadlock with the row locks other transactions take in another order
(an intake batch and a portal POST; docs/DECISIONS.md).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, cast

from sqlalchemy import (
    CTE,
    Connection,
    LargeBinary,
    Table,
    Text,
    bindparam,
    event,
    func,
    insert,
    literal_column,
    select,
    update,
)
from sqlalchemy import cast as sql_cast
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import ORMExecuteState, Session, SessionTransaction

from engine.store import json_codec
from engine.store.models import (
    AuditChainHead,
    AuditEvent,
    ConsolidatedReport,
    StoredFile,
    Submission,
)

GENESIS = "0" * 64
FORMAT = 1  # part of every hashed content: a new canonical form would be format 2
GLOBAL_CHAIN = ""  # rows about no plan (e.g. a refused link that names none)

_EVENTS = cast(Table, AuditEvent.__table__)
_HEADS = cast(Table, AuditChainHead.__table__)
_PENDING = "kehoach.audit_pending"

ROW_FIELDS = (
    "chain",
    "seq",
    "at",
    "actor",
    "action",
    "plan_id",
    "obligation_id",
    "remote_addr",
    "data",
    "ref_kind",
    "ref_id",
    "content_hash",
    "prev_hash",
)


# ---------------------------------------------------------------- canonical content


def as_stored(value: Any) -> Any:
    """``value`` as a JSON column gives it back (tuples as lists, keys as strings; read
    with the columns' codec). Never fails on a row read back: Infinity or NaN edited into
    the database hash as such (the codec refuses to write them, not to hash them)."""
    return json_codec.loads(json.dumps(value))


def canonical(value: Any) -> bytes:
    """Sorted-key, compact, UTF-8 JSON: one spelling per content."""
    return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":")).encode()


def sha256(value: Any) -> str:
    return hashlib.sha256(canonical(value)).hexdigest()


def utc_text(moment: dt.datetime | None) -> str | None:
    """An explicit UTC timestamp to the microsecond (what both databases keep)."""
    if moment is None:
        return None
    if moment.tzinfo is None:
        raise ValueError("naive datetime in audited content")
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def row_hash(row: Mapping[str, Any]) -> str:
    """The hash of one audit row (a mapping of :data:`ROW_FIELDS`, as stored)."""
    content = {name: row[name] for name in ROW_FIELDS}
    content["at"] = utc_text(content["at"])
    content["v"] = FORMAT
    return sha256(content)


def submission_hash(submission: Any) -> str:
    """What a unit sent (never changed after it is recorded; review fields are not in it)."""
    return sha256(
        {
            "v": FORMAT,
            "kind": "submission",
            "id": submission.id,
            "obligation_id": submission.obligation_id,
            "version": submission.version,
            "values": as_stored(submission.values),
            "summary": submission.summary,
            "file_ids": as_stored(submission.file_ids),
            "submitted_at": utc_text(submission.submitted_at),
            "source": submission.source,
            "on_time": submission.on_time,
        }
    )


def report_hash(report: Any, document_sha256: str | None) -> str:
    """A consolidated report's figures, status table and document (by its SHA-256).
    ``upward_submission_id`` is set after the report is recorded and is not in it."""
    return sha256(
        {
            "v": FORMAT,
            "kind": "report",
            "id": report.id,
            "cycle_id": report.cycle_id,
            "consolidation_id": report.consolidation_id,
            "revision": report.revision,
            "by_unit_id": report.by_unit_id,
            "aggregates": as_stored(report.aggregates),
            "status_table": as_stored(report.status_table),
            "document_file_id": report.document_file_id,
            "document_sha256": document_sha256,
            "created_at": utc_text(report.created_at),
        }
    )


def content_ref(session: Session, obj: Submission | ConsolidatedReport) -> dict[str, Any]:
    """(``ref_kind``, ``ref_id``, ``content_hash``) of an audit row recording ``obj``."""
    if obj.id is None:
        session.flush()
    if isinstance(obj, Submission):
        return {"ref_kind": "submission", "ref_id": obj.id, "content_hash": submission_hash(obj)}
    document = session.get(StoredFile, obj.document_file_id) if obj.document_file_id else None
    digest = document.sha256 if document is not None else None
    return {"ref_kind": "report", "ref_id": obj.id, "content_hash": report_hash(obj, digest)}


# ---------------------------------------------------------------- appending


@dataclass
class _Pending:
    """Rows queued in one transaction, each with the savepoint it was written in."""

    root: SessionTransaction
    rows: list[tuple[dict[str, Any], SessionTransaction | None]] = field(default_factory=list)
    dead: list[SessionTransaction] = field(default_factory=list)  # savepoints rolled back

    def live(self) -> list[dict[str, Any]]:
        def alive(savepoint: SessionTransaction | None) -> bool:
            while savepoint is not None:
                if any(savepoint is d for d in self.dead):
                    return False
                savepoint = savepoint.parent
            return True

        return [row for row, savepoint in self.rows if alive(savepoint)]


def append(
    session: Session,
    *,
    at: dt.datetime,
    actor: str,
    action: str,
    plan_id: str | None = None,
    obligation_id: int | None = None,
    remote_addr: str | None = None,
    data: Mapping[str, Any] | None = None,
    ref: Mapping[str, Any] | None = None,
) -> None:
    """Queue one audit row in the caller's transaction; it is chained and written when
    the transaction commits (or when the transaction reads the log: see :func:`flush`)."""
    if at.tzinfo is None:
        raise ValueError("naive datetime given to the audit log")
    row: dict[str, Any] = {
        "at": at.astimezone(dt.UTC),
        "actor": actor[:200],
        "action": action[:80],
        "plan_id": plan_id,
        "obligation_id": obligation_id,
        "remote_addr": (remote_addr or "")[:80] or None,
        "data": as_stored(dict(data or {})),
        "chain": plan_id or GLOBAL_CHAIN,
        "ref_kind": None,
        "ref_id": None,
        "content_hash": None,
        **(ref or {}),
    }
    session.connection()  # the transaction exists from here on
    root = session.get_transaction()
    assert root is not None
    pending = session.info.get(_PENDING)
    if pending is None or pending.root is not root:  # left over from an ended transaction
        pending = session.info[_PENDING] = _Pending(root)
    pending.rows.append((row, session.get_nested_transaction()))


def pending_refs(session: Session, kind: str) -> dict[int, str]:
    """{ref id: content hash} of rows of this transaction not written yet."""
    pending = session.info.get(_PENDING)
    if pending is None or pending.root is not session.get_transaction():
        return {}
    return {r["ref_id"]: r["content_hash"] for r in pending.live() if r["ref_kind"] == kind}


def flush(session: Session) -> None:
    """Chain and write the queued rows now (commit does it; so does reading the log)."""
    pending = session.info.pop(_PENDING, None)
    if pending is None or pending.root is not session.get_transaction():
        return
    rows = pending.live()
    if rows:
        _write(session.connection(), rows)


# Built once: the portal writes audit rows on its hot path.
_INSERT = insert(_EVENTS)
_CLAIM = (
    update(_HEADS)
    .where(_HEADS.c.chain == bindparam("head"))
    .values(seq=_HEADS.c.seq + bindparam("count"))
    .returning(_HEADS.c.seq, _HEADS.c.row_hash)
)
_SET_HASH = (
    update(_HEADS).where(_HEADS.c.chain == bindparam("head")).values(row_hash=bindparam("last"))
)
_SEED = {
    name: make(_HEADS)
    .values(chain=bindparam("head"), seq=0, row_hash=GENESIS)
    .on_conflict_do_nothing()
    for name, make in (("postgresql", pg_insert), ("sqlite", sqlite_insert))
}


def _write(connection: Connection, rows: list[dict[str, Any]]) -> None:
    chains = {row["chain"] for row in rows}
    if (
        connection.dialect.name == "postgresql"
        and len(chains) == 1
        and len(rows) <= ONE_STATEMENT_ROWS
    ):
        _write_one_statement(connection, rows)
        return
    counts: dict[str, int] = {}
    for row in rows:
        counts[row["chain"]] = counts.get(row["chain"], 0) + 1
    heads: dict[str, tuple[int, str]] = {}
    for chain in sorted(counts):  # one lock order for every transaction: no deadlock
        last, prev = _claim(connection, chain, counts[chain])
        heads[chain] = (last - counts[chain], prev)
    for row in rows:  # in the order they were written, whatever their chain
        seq, prev = heads[row["chain"]]
        row["seq"], row["prev_hash"] = seq + 1, prev
        row["row_hash"] = row_hash(row)
        heads[row["chain"]] = (seq + 1, row["row_hash"])
    connection.execute(_INSERT, rows)
    connection.execute(_SET_HASH, [{"head": c, "last": h} for c, (_, h) in heads.items()])


def _claim(connection: Connection, chain: str, count: int) -> tuple[int, str]:
    """Lock the chain's head and move it on by ``count``: (its new seq, the hash of the
    row before the claimed ones). An UPDATE, not a SELECT: on SQLite it takes the write
    lock before the head is read; on PostgreSQL a second appender waits on the row and
    then reads the head the first one committed (READ COMMITTED)."""
    found = connection.execute(_CLAIM, {"head": chain, "count": count}).first()
    if found is None:
        connection.execute(_SEED[connection.dialect.name], {"head": chain})
        found = connection.execute(_CLAIM, {"head": chain, "count": count}).one()
    return int(found[0]), str(found[1])


# ---------------------------------------------------------------- one statement (PostgreSQL)
#
# The chain head's row lock is held from the statement that takes it to the COMMIT, and
# every answer to a plan waits for it. Taken by an UPDATE, then the INSERT of the rows,
# then the head's new hash, then the COMMIT, it is held over four round trips, each of
# which, on a loaded machine, waits for the CPU and for the interpreter's lock before the
# next is sent (measured: 8 ms from the claim to the COMMIT and 7 ms for the COMMIT, p50,
# at load 10; the answers to one plan queued behind it at 50/s). On PostgreSQL the
# rows of one chain are therefore chained by the database in one statement: it locks the
# head (SELECT ... FOR UPDATE, which under READ COMMITTED reads the head the previous
# holder committed), hashes each row with SHA-256 over the row's canonical content,
# computed here around its two unknowns (prev_hash and seq, see :func:`hash_pieces`),
# inserts the rows and moves the head. The lock is then held for that statement and the
# COMMIT. The hashes it returns are checked against :func:`row_hash` before the commit.

ONE_STATEMENT_ROWS = 8  # more rows (a sweep, an intake batch) take the path above


def hash_pieces(row: Mapping[str, Any]) -> tuple[bytes, bytes, bytes]:
    """(before, between, after): the canonical content of ``row`` (:func:`row_hash`) is
    ``before + prev_hash + between + str(seq) + after``, UTF-8."""
    content: dict[str, Any] = {name: row[name] for name in ROW_FIELDS if name in _STORED}
    content.update(chain=row["chain"], at=utc_text(content["at"]), v=FORMAT)
    values = {key: canonical(value).decode() for key, value in content.items()}
    # Placeholders: canonical JSON escapes control characters, so neither occurs in it.
    values["prev_hash"], values["seq"] = '"\x00"', "\x01"
    text = "{" + ",".join(f"{json.dumps(key)}:{values[key]}" for key in sorted(values)) + "}"
    before, rest = text.split("\x00")
    between, after = rest.split("\x01")
    return before.encode(), between.encode(), after.encode()


def _hash_sql(prev: Any, seq: Any, index: int) -> Any:
    text_bytes = LargeBinary()
    concatenated = (
        bindparam(f"before_{index}", type_=text_bytes)
        .op("||")(func.convert_to(prev, "UTF8"))
        .op("||")(bindparam(f"between_{index}", type_=text_bytes))
        .op("||")(func.convert_to(sql_cast(seq, Text), "UTF8"))
        .op("||")(bindparam(f"after_{index}", type_=text_bytes))
    )
    return func.encode(func.sha256(concatenated), "hex")


_STORED = [name for name in ROW_FIELDS if name not in ("chain", "seq", "prev_hash")]
_ONE_STATEMENT: dict[int, Any] = {}


def _one_statement(count: int) -> Any:
    """The statement for ``count`` rows of one chain, built once per count."""
    built = _ONE_STATEMENT.get(count)
    if built is not None:
        return built
    head = (
        select(_HEADS.c.chain, _HEADS.c.seq, _HEADS.c.row_hash)
        .where(_HEADS.c.chain == bindparam("head"))
        .with_for_update()
        .cte("head")
        .prefix_with("MATERIALIZED")
    )
    ctes: list[CTE] = [head]
    prev_seq, prev_hash = head.c.seq, head.c.row_hash
    links: list[CTE] = []
    source: Any = head
    for index in range(1, count + 1):
        seq = prev_seq + 1
        link = (
            select(
                seq.label("seq"),
                prev_hash.label("prev"),
                _hash_sql(prev_hash, seq, index).label("hash"),
            )
            .select_from(source)
            .cte(f"link_{index}")
            .prefix_with("MATERIALIZED")
        )
        links.append(link)
        ctes.append(link)
        source, prev_seq, prev_hash = link, link.c.seq, link.c.hash
        columns = [_EVENTS.c[name] for name in _STORED]
        # typed parameters (psycopg: "%(x)s::JSON"); no CAST to the column's type, which
        # would cut a too-long value to VARCHAR(n) where the INSERT refuses it
        values = [bindparam(f"{name}_{index}", type_=_EVENTS.c[name].type) for name in _STORED]
        ctes.append(
            insert(_EVENTS)
            .from_select(
                [*columns, _EVENTS.c.chain, _EVENTS.c.seq, _EVENTS.c.prev_hash, _EVENTS.c.row_hash],
                select(*values, bindparam("head"), link.c.seq, link.c.prev, link.c.hash),
            )
            .returning(_EVENTS.c.id)
            .cte(f"row_{index}")
        )
    last = links[-1]
    built = (
        update(_HEADS)
        .where(_HEADS.c.chain == head.c.chain)
        .values(
            seq=select(last.c.seq).scalar_subquery(),
            row_hash=select(last.c.hash).scalar_subquery(),
        )
        .add_cte(*ctes)
        .returning(
            head.c.seq.label("from_seq"),
            head.c.row_hash.label("from_hash"),
            _HEADS.c.seq,
            _HEADS.c.row_hash,
            *[literal_column(f"(SELECT count(*) FROM row_{i})") for i in range(1, count + 1)],
        )
    )
    _ONE_STATEMENT[count] = built
    return built


def _write_one_statement(connection: Connection, rows: list[dict[str, Any]]) -> None:
    chain = rows[0]["chain"]
    params: dict[str, Any] = {"head": chain}
    for index, row in enumerate(rows, start=1):
        before, between, after = hash_pieces(row)
        params[f"before_{index}"], params[f"between_{index}"] = before, between
        params[f"after_{index}"] = after
        for name in _STORED:
            params[f"{name}_{index}"] = row[name]
    statement = _one_statement(len(rows))
    found = connection.execute(statement, params).first()
    if found is None:  # the chain's first rows: its head does not exist yet
        connection.execute(_SEED["postgresql"], {"head": chain})
        found = connection.execute(statement, params).one()
    seq, prev = int(found[0]), str(found[1])
    for row in rows:  # what the database wrote, as row_hash computes it
        seq += 1
        row["seq"], row["prev_hash"] = seq, prev
        prev = row["row_hash"] = row_hash(row)
    written = [int(n) for n in found[4:]]
    if (int(found[2]), str(found[3])) != (seq, prev) or written != [1] * len(rows):
        raise RuntimeError(
            f"audit chain {chain!r}: the database chained {written} rows to "
            f"({found[2]}, {found[3]}), expected {len(rows)} to ({seq}, {prev})"
        )


# ---------------------------------------------------------------- session events


@event.listens_for(Session, "before_commit")
def _before_commit(session: Session) -> None:
    if not session.in_nested_transaction():  # a RELEASE SAVEPOINT is not the commit
        flush(session)


@event.listens_for(Session, "after_soft_rollback")
def _after_soft_rollback(session: Session, previous: SessionTransaction) -> None:
    pending = session.info.get(_PENDING)
    if pending is None:
        return
    if previous.nested:
        pending.dead.append(previous)
    elif previous.parent is None:
        session.info.pop(_PENDING, None)


@event.listens_for(Session, "after_transaction_end")
def _after_transaction_end(session: Session, transaction: SessionTransaction) -> None:
    if transaction.parent is None:
        session.info.pop(_PENDING, None)


_LOG_MAPPERS = (AuditEvent, AuditChainHead)


@event.listens_for(Session, "do_orm_execute")
def _reading_the_log(state: ORMExecuteState) -> None:
    # A transaction that reads the log sees its own rows: they are written first (and
    # the chain lock taken early; only tests and tools read the log while writing).
    if state.session.info.get(_PENDING) is None or not state.is_select:
        return
    if any(m.class_ in _LOG_MAPPERS for m in _mappers(state)):
        flush(state.session)


def _mappers(state: ORMExecuteState) -> Iterable[Any]:
    try:
        return state.all_mappers
    except Exception:  # pragma: no cover - a statement SQLAlchemy cannot introspect
        return ()
