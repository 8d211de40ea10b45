"""The audit log is append-only and hash-chained, and what it records is checked.

The attack of issue 13: someone with the database's admin rights changes a unit's
figures from 0 to 999 fires and deletes that unit's audit rows. ``kehoach audit --verify``
names the first broken row; the next revision of the consolidated report leaves the
forged figures out and says so; the sweep does not take in a submission no row records.
"""

from __future__ import annotations

import hashlib
import json
import threading
from pathlib import Path

import docx
import pytest
from alembic import command
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import event, func, select, text
from sqlalchemy.exc import DBAPIError, IntegrityError

from cli import main
from engine import audit_chain
from engine.audit import write_audit
from engine.audit_verify import verify
from engine.consolidation import consolidate
from engine.lifecycle import activate, intake, record_submission, sweep
from engine.store import connect, session_scope
from engine.store.db import _alembic_config, drop_audit_guards
from engine.store.models import (
    AuditChainHead,
    AuditEvent,
    ConsolidatedReport,
    Obligation,
    Submission,
)
from tests.approval_support import docx_text
from tests.lifecycle_factory import (
    CONSOLIDATION,
    DISTRICT,
    GOOD_REPORT,
    PROVINCE,
    lc_settings,
    obligation,
    prepared,
    vn,
)

UNITS = ("ca-huyen", "phong-vh", "phong-kt", "xa-a", "xa-b", "xa-moi")
AN_LAC = "Ủy ban nhân dân xã An Lạc"  # xa-a


def _send(url: str, unit: str, day: int, fires: str, note: str = "Đã rà soát") -> int:
    with session_scope(url) as session:
        submission = record_submission(
            session,
            obligation(session, unit).id,
            values={**GOOD_REPORT, "so-vu-chay": fires, "ghi-chu": note},
            now=vn(2027, 9, day),
        )
        intake(session, submission.id, now=vn(2027, 9, day))
        return submission.id


def _consolidated(url: str, home: Path) -> None:
    """Every unit reports 0 fires by 9/9/2027; the district police consolidate early."""
    prepared(url)
    with session_scope(url) as session:
        activate(session, PROVINCE, now=vn(2027, 1, 4))
        activate(session, DISTRICT, now=vn(2027, 1, 4))
    for day, unit in enumerate(UNITS, start=4):
        _send(url, unit, day, "0")
    with session_scope(url) as session:
        first = consolidate(
            session,
            DISTRICT,
            "2027",
            CONSOLIDATION,
            now=vn(2027, 9, 9, 16),
            settings=lc_settings(home),
        )
        assert first.aggregates["so-vu-chay"] == 0


def _attack(url: str, unit: str) -> int:
    """As an administrator of the database: drop the guards, set the unit's figures to
    999 fires, delete every audit row about its obligation. Returns the submission id."""
    with connect(url).begin() as conn:
        drop_audit_guards(conn)
        obligation_id, submission_id, values = conn.execute(
            text(
                'SELECT s.obligation_id, s.id, s."values" FROM submissions s '
                "JOIN obligations o ON o.id = s.obligation_id "
                "WHERE o.unit_id = :unit AND o.deliverable_id = 'bao-cao-nam' "
                "ORDER BY s.version DESC LIMIT 1"
            ),
            {"unit": unit},
        ).one()
        forged = {**(json.loads(values) if isinstance(values, str) else values)}
        forged.update({"so-vu-chay": 999, "ghi-chu": "SỐ LIỆU GIẢ MẠO"})
        conn.execute(
            text('UPDATE submissions SET "values" = :v WHERE id = :id'),
            {"v": json.dumps(forged), "id": submission_id},
        )
        deleted = conn.execute(
            text("DELETE FROM audit_events WHERE obligation_id = :o"), {"o": obligation_id}
        ).rowcount
        assert deleted >= 2  # 'submission.recorded' and 'submission.intake' at least
    return submission_id


def test_a_cycle_verifies_and_its_log_prints_in_vietnamese(db_url, tmp_path, capsys):
    _consolidated(db_url, tmp_path)
    capsys.readouterr()
    assert main(["--database-url", db_url, "audit", "--verify"]) == 0
    line, anchored = capsys.readouterr().out.splitlines()
    assert anchored.startswith("Khớp ") and "mốc neo" in anchored
    assert line.startswith("Nhật ký kiểm tra nguyên vẹn: ") and line.endswith("khớp mã băm.")
    assert len(line) <= 100
    with session_scope(db_url) as session:
        rows = session.scalar(select(func.count(AuditEvent.id)))
        heads = session.scalars(select(AuditChainHead)).all()
        referenced = session.scalar(
            select(func.count(AuditEvent.id)).where(AuditEvent.content_hash.is_not(None))
        )
        submissions = session.scalar(select(func.count(Submission.id)))
    assert f"{rows} dòng" in line and sum(h.seq for h in heads) == rows
    # every submission (the units', the duty's, the one upward) and the report: recorded
    assert referenced == submissions + 1

    assert main(["--database-url", db_url, "audit", DISTRICT, "--cycle", "2027"]) == 0
    printed = capsys.readouterr().out.splitlines()
    assert printed[0].startswith(f"Nhật ký kiểm tra kế hoạch {DISTRICT}, kỳ 2027: ")
    assert all(len(line) <= 100 for line in printed)
    # 4/9/2027 09:00 in Viet Nam, the unit's name, the action and its details
    recorded = next(i for i, line in enumerate(printed) if "04/09/2027 09:00:00" in line)
    assert "Ghi nhận báo cáo" in printed[recorded]
    assert "Công an huyện" in printed[recorded + 1] and "phiên bản 1" in printed[recorded + 1]
    assert any("Tổng hợp báo cáo" in line for line in printed)


def test_edited_figures_and_deleted_audit_rows_are_seen_by_verify_and_consolidation(
    db_url, tmp_path, capsys
):
    _consolidated(db_url, tmp_path)
    forged_id = _attack(db_url, "xa-a")

    capsys.readouterr()
    assert main(["--database-url", db_url, "audit", "--verify", DISTRICT]) == 1
    report = capsys.readouterr().out
    assert f"Nhật ký kiểm tra kế hoạch {DISTRICT} KHÔNG nguyên vẹn" in report
    first = report.splitlines()[1]
    assert first.startswith(f"Chỗ sai đầu tiên: chuỗi {DISTRICT}, dòng số ") and " id " in first
    assert "đã bị xoá" in report.splitlines()[2]
    assert f"báo cáo #{forged_id} (phiên bản 1) không có dòng nhật ký nào ghi nhận nó" in report

    # Another unit corrects its report before the due date: revision 2 is written, from
    # the genuine figures only; the forged ones are named, not printed.
    _send(db_url, "phong-vh", 10, "1")
    with session_scope(db_url) as session:
        second = consolidate(
            session,
            DISTRICT,
            "2027",
            CONSOLIDATION,
            now=vn(2027, 9, 10, 16),
            settings=lc_settings(tmp_path),
            revise=True,
        )
        assert second.revision == 2
        assert second.aggregates["so-vu-chay"] == 1
        assert "SỐ LIỆU GIẢ MẠO" not in json.dumps(second.aggregates, ensure_ascii=False)
        [warning] = [w for w in second.warnings if AN_LAC in w]
        assert "bị từ chối" in warning and "không có dòng nhật ký" in warning
        document = docx_text(second.document_path)
        assert "999" not in document and "GIẢ MẠO" not in document
        assert "999" not in second.markdown and "không khớp nhật ký kiểm tra" in document
        refused = session.scalars(
            select(AuditEvent).where(AuditEvent.action == "consolidation.tampered_refused")
        ).all()
        assert [r.obligation_id for r in refused] == [obligation(session, "xa-a").id]


def test_figures_edited_in_place_are_refused_even_with_the_log_intact(sqlite_url, tmp_path):
    _consolidated(sqlite_url, tmp_path)
    with connect(sqlite_url).begin() as conn:  # the figures only; the guards stay
        conn.execute(
            text(
                'UPDATE submissions SET "values" = json_set("values", \'$.so-vu-chay\', 999) '
                "WHERE id = (SELECT max(s.id) FROM submissions s JOIN obligations o "
                "ON o.id = s.obligation_id WHERE o.unit_id = 'xa-b' AND o.kind = 'report')"
            )
        )
    with session_scope(sqlite_url) as session:
        checked = verify(session, DISTRICT)
        assert [b.what.split(" khác với lúc ghi nhận")[0] for b in checked.breaks] == [
            f"báo cáo #{obligation(session, 'xa-b').submissions[-1].id} (phiên bản 1)"
        ]
    _send(sqlite_url, "phong-kt", 10, "2")
    with session_scope(sqlite_url) as session:
        second = consolidate(
            session,
            DISTRICT,
            "2027",
            CONSOLIDATION,
            now=vn(2027, 9, 10, 16),
            settings=lc_settings(tmp_path),
            revise=True,
        )
        assert second.aggregates["so-vu-chay"] == 2
        assert any("số liệu khác với lúc ghi nhận" in w for w in second.warnings)


def test_the_sweep_does_not_take_in_a_submission_no_row_records(sqlite_url, tmp_path):
    prepared(sqlite_url)
    with session_scope(sqlite_url) as session:
        activate(session, DISTRICT, now=vn(2027, 1, 4))
        target = obligation(session, "xa-b").id
    with connect(sqlite_url).begin() as conn:  # inserted straight into the database
        conn.execute(
            text(
                'INSERT INTO submissions (obligation_id, version, "values", file_ids, '
                "submitted_at, source, on_time, review_state, intake_done) VALUES "
                "(:o, 1, '{\"so-vu-chay\": 999}', '[]', '2027-09-05 02:00:00', 'portal', 1, "
                "'received', 0)"
            ),
            {"o": target},
        )
    with session_scope(sqlite_url) as session:
        swept = sweep(session, DISTRICT, today=vn(2027, 9, 6).date())
        [(forged, why)] = swept.tampered.items()
        assert "không có dòng nhật ký" in why and forged not in swept.intakes
        assert "1 báo cáo không tiếp nhận vì không khớp nhật ký kiểm tra" in swept.summary()
        assert session.get(Obligation, target).status == "pending"


def test_the_database_refuses_update_and_delete_of_the_log(db_url):
    prepared(db_url)
    with session_scope(db_url) as session:
        activate(session, DISTRICT, now=vn(2027, 1, 4))
    for statement in (
        "UPDATE audit_events SET actor = 'x'",
        "DELETE FROM audit_events",
        "DELETE FROM audit_chain_heads",
        "UPDATE audit_chain_heads SET seq = 0",
    ):
        with pytest.raises(DBAPIError, match="append-only"), connect(db_url).begin() as conn:
            conn.execute(text(statement))
    with session_scope(db_url) as session:
        assert verify(session).intact


def _appending_at_once(url: str, names: str, transaction) -> list[int]:  # type: ignore[no-untyped-def]
    """Each name's thread runs ``transaction(session, name, i)`` in its own transactions
    at the same moment; returns the seqs of the district's chain (any failure raised)."""
    start, failures = threading.Barrier(len(names)), []

    def writer(name: str) -> None:
        start.wait()
        try:
            for i in range(25):
                with session_scope(url) as session:
                    transaction(session, name, i)
        except Exception as exc:  # collected: the assertion below shows it
            failures.append(exc)

    threads = [threading.Thread(target=writer, args=(n,)) for n in names]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    with session_scope(url) as session:
        return list(
            session.scalars(
                select(AuditEvent.seq).where(AuditEvent.chain == DISTRICT).order_by(AuditEvent.seq)
            )
        )


def test_two_transactions_appending_at_once_do_not_fork_the_chain(postgres_url):
    """PostgreSQL: two threads append to the same plan's chain and to the global one."""
    prepared(postgres_url)

    def two_chains(session, name: str, i: int) -> None:  # type: ignore[no-untyped-def]
        for chain in (DISTRICT, None):
            write_audit(session, "test.append", at=vn(2027, 1, 5), plan_id=chain, who=name, i=i)
        session.execute(select(func.pg_sleep(0.001)))

    assert _appending_at_once(postgres_url, "ab", two_chains) == list(range(1, 51))
    with session_scope(postgres_url) as session:
        checked = verify(session)
        assert checked.intact and checked.rows == 100


def test_a_rolled_back_transaction_leaves_no_row_and_no_gap(sqlite_url):
    prepared(sqlite_url)
    with pytest.raises(IntegrityError), session_scope(sqlite_url) as session:
        write_audit(session, "test.lost", at=vn(2027, 1, 5), plan_id=DISTRICT)
        session.add(Submission())  # NOT NULL columns missing: the commit fails
    with session_scope(sqlite_url) as session:
        write_audit(session, "test.kept", at=vn(2027, 1, 5), plan_id=DISTRICT)
    with session_scope(sqlite_url) as session:
        rows = session.scalars(select(AuditEvent)).all()
        assert [(r.action, r.seq) for r in rows] == [("test.kept", 1)]
        assert verify(session).intact


def test_the_migration_chains_rows_stored_before_it(db_url, tmp_path):
    """Down below 0004_audit_chain and up again: the rows are chained anew and the
    contents referenced."""
    _consolidated(db_url, tmp_path)
    with session_scope(db_url) as session:
        referenced = session.scalar(select(func.count()).where(AuditEvent.ref_id.is_not(None)))
    engine = connect(db_url)
    for step in (command.downgrade, command.upgrade):
        with engine.begin() as conn:
            cfg = _alembic_config(db_url)
            cfg.attributes["connection"] = conn
            step(cfg, "0004_audit_chain-1" if step is command.downgrade else "head")
    with session_scope(db_url) as session:
        assert verify(session).intact
        again = session.scalar(select(func.count()).where(AuditEvent.ref_id.is_not(None)))
        assert again == referenced
    with pytest.raises(DBAPIError, match="append-only"), engine.begin() as conn:
        conn.execute(text("DELETE FROM audit_events"))


def test_rows_of_the_transaction_itself_count_before_they_are_written(sqlite_url, tmp_path):
    """Answers recorded and consolidated in one transaction are not taken for forgeries,
    and a transaction that reads the log sees the rows it queued."""
    prepared(sqlite_url)
    with session_scope(sqlite_url) as session:
        activate(session, PROVINCE, now=vn(2027, 1, 4))
        activate(session, DISTRICT, now=vn(2027, 1, 4))
    with session_scope(sqlite_url) as session:
        for day, unit in enumerate(UNITS, start=4):
            submission = record_submission(
                session, obligation(session, unit).id, values=GOOD_REPORT, now=vn(2027, 9, day)
            )
            intake(session, submission.id, now=vn(2027, 9, day))
        done = consolidate(
            session,
            DISTRICT,
            "2027",
            CONSOLIDATION,
            now=vn(2027, 9, 9, 16),
            settings=lc_settings(tmp_path),
        )
        assert done.warnings == [] and done.aggregates["so-vu-chay"] == 12
        seen = session.scalars(
            select(AuditEvent.action).where(AuditEvent.action == "cycle.consolidated")
        ).all()
        assert seen == ["cycle.consolidated"]
    with session_scope(sqlite_url) as session:
        assert verify(session).intact


def _rewrite_whole_chain(url: str, unit: str) -> None:
    """The attack the chain alone cannot see: the unit's figures set to 999, then every
    hash of the plan's chain recomputed after it (content hash, links, head), with the
    engine's own functions, as someone who read the source would."""
    from engine.audit_chain import row_hash, submission_hash

    with connect(url).begin() as conn:
        drop_audit_guards(conn)
        submission_id, values = conn.execute(
            text(
                'SELECT s.id, s."values" FROM submissions s '
                "JOIN obligations o ON o.id = s.obligation_id "
                "WHERE o.unit_id = :unit AND o.deliverable_id = 'bao-cao-nam' "
                "ORDER BY s.version DESC LIMIT 1"
            ),
            {"unit": unit},
        ).one()
        forged = {**(json.loads(values) if isinstance(values, str) else values), "so-vu-chay": 999}
        conn.execute(
            text('UPDATE submissions SET "values" = :v WHERE id = :id'),
            {"v": json.dumps(forged), "id": submission_id},
        )
    with session_scope(url) as session:
        content = submission_hash(session.get(Submission, submission_id))
    with connect(url).begin() as conn:
        rows = conn.execute(
            select(AuditEvent.__table__).where(AuditEvent.chain == DISTRICT).order_by("seq")
        ).mappings()
        prev = None
        for found in rows.all():
            row = dict(found)
            if row["ref_kind"] == "submission" and row["ref_id"] == submission_id:
                row["content_hash"] = content
            row["prev_hash"] = prev if prev is not None else row["prev_hash"]
            row["row_hash"] = prev = row_hash(row)
            conn.execute(
                text(
                    "UPDATE audit_events SET content_hash = :c, prev_hash = :p, row_hash = :h "
                    "WHERE id = :id"
                ),
                {"c": row["content_hash"], "p": row["prev_hash"], "h": prev, "id": row["id"]},
            )
        conn.execute(
            text("UPDATE audit_chain_heads SET row_hash = :h WHERE chain = :c"),
            {"h": prev, "c": DISTRICT},
        )


def test_a_chain_rewritten_whole_is_seen_against_the_heads_anchored_outside(
    db_url, tmp_path, monkeypatch, capsys
):
    from engine import config
    from engine.audit_anchor import anchor_path

    anchors = anchor_path(lc_settings(tmp_path))  # where consolidation anchors here
    monkeypatch.setenv("KEHOACH_AUDIT_ANCHOR", str(anchors))  # and the command line
    config.settings.cache_clear()
    _consolidated(db_url, tmp_path)
    [consolidated] = [json.loads(line) for line in anchors.read_text().splitlines()]
    assert consolidated["reason"].startswith(f"tổng hợp {DISTRICT} 2027")
    [head] = [h for h in consolidated["heads"] if h["chain"] == DISTRICT]
    with session_scope(db_url) as session:
        report = session.scalars(select(ConsolidatedReport)).one()
        document = docx.Document(report.document_path)
    # the report carries its chain's head as it was written (its own rows come after)
    assert f"chuỗi nhật ký {DISTRICT}: dòng " in document.core_properties.comments

    capsys.readouterr()
    assert main(["--database-url", db_url, "audit", "--verify"]) == 0
    assert "Khớp 1 mốc neo" in capsys.readouterr().out
    assert len(anchors.read_text().splitlines()) == 2

    _rewrite_whole_chain(db_url, "xa-a")
    with session_scope(db_url) as session:
        assert verify(session).intact, "the rewrite is not consistent: the test proves nothing"
        checked = verify(session, anchors=anchors)
    assert not checked.intact and checked.anchors == 2
    capsys.readouterr()
    assert main(["--database-url", db_url, "audit", "--verify"]) == 1
    printed = capsys.readouterr().out
    print(printed)
    lines = printed.splitlines()
    assert lines[0].startswith("Nhật ký kiểm tra KHÔNG nguyên vẹn")
    assert lines[1].startswith(f"Chỗ sai đầu tiên: chuỗi {DISTRICT}, dòng số {head['seq']}")
    assert "không khớp mốc neo số 1" in printed and f"mã băm {head['hash'][:12]}" in printed
    assert len(anchors.read_text().splitlines()) == 2  # a broken log is never anchored


# ---------------------------------------------------------------- one statement (PostgreSQL)

_TEXT = st.text(st.characters(blacklist_categories=("Cs",)), max_size=12)
_JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**40), 2**40) | _TEXT,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_TEXT, inner, max_size=3),
    max_leaves=8,
)


@settings(max_examples=200, deadline=None)
@given(
    actor=_TEXT,
    action=_TEXT,
    data=st.dictionaries(st.sampled_from(["prev_hash", "seq", "v", "ghi-chú", "x"]), _JSON),
    seq=st.integers(1, 10**9),
    obligation_id=st.none() | st.integers(1, 10**6),
)
def test_the_hash_around_prev_hash_and_seq_is_the_rows_hash(
    actor, action, data, seq, obligation_id
):
    """The database hashes ``before + prev_hash + between + seq + after``: the same bytes
    as the row's canonical content, whatever the data holds (even keys named prev_hash)."""
    row = {
        "chain": "ha-lang",
        "seq": seq,
        "at": vn(2027, 9, 1),
        "actor": actor,
        "action": action,
        "plan_id": "ha-lang",
        "obligation_id": obligation_id,
        "remote_addr": None,
        "data": audit_chain.as_stored(data),
        "ref_kind": None,
        "ref_id": None,
        "content_hash": None,
        "prev_hash": "ab" * 32,
    }
    before, between, after = audit_chain.hash_pieces(row)
    joined = before + row["prev_hash"].encode() + between + str(seq).encode() + after
    assert hashlib.sha256(joined).hexdigest() == audit_chain.row_hash(row)


def _statements_in_commit(url: str, rows: int) -> list[str]:
    """The statements one transaction with ``rows`` audit rows of one plan sends from the
    chain head's lock to its COMMIT."""
    seen: list[str] = []

    def record(_conn, _cursor, statement, *_args) -> None:
        seen.append(statement)

    engine = connect(url)
    event.listen(engine, "before_cursor_execute", record)
    try:
        with session_scope(url) as session:
            for i in range(rows):
                write_audit(session, "test.append", at=vn(2027, 1, 5), plan_id=DISTRICT, i=i)
            session.flush()
            seen.clear()
    finally:
        event.remove(engine, "before_cursor_execute", record)
    return seen


def test_on_postgresql_one_statement_chains_a_transactions_rows(postgres_url):
    """The chain head's lock is held for one statement and the COMMIT (not four round
    trips); what it writes is what the Python chain computes, and verify accepts it."""
    prepared(postgres_url)
    first = _statements_in_commit(postgres_url, 2)  # the chain's first rows: seeded
    again = _statements_in_commit(postgres_url, 3)
    assert len(again) == 1 and "FOR UPDATE" in again[0] and "sha256" in again[0], again
    assert len(first) == 3  # the head did not exist: seeded, then the same statement
    many = _statements_in_commit(postgres_url, audit_chain.ONE_STATEMENT_ROWS + 1)
    assert len(many) == 3  # a sweep's many rows: claim, insert, the head's hash
    with session_scope(postgres_url) as session:
        rows = session.scalars(
            select(AuditEvent).where(AuditEvent.chain == DISTRICT).order_by(AuditEvent.seq)
        ).all()
        assert [r.seq for r in rows] == list(range(1, 2 + 3 + audit_chain.ONE_STATEMENT_ROWS + 2))
        for previous, row in zip(rows, rows[1:], strict=False):
            assert row.prev_hash == previous.row_hash
        head = session.get(AuditChainHead, DISTRICT)
        assert head is not None and (head.seq, head.row_hash) == (rows[-1].seq, rows[-1].row_hash)
        assert verify(session).intact


def test_on_postgresql_answers_to_one_plan_at_once_keep_one_chain(postgres_url):
    """Four threads append two rows a transaction to one plan's chain at once: the
    one-statement path waits on the head's lock and reads the head committed before it."""
    prepared(postgres_url)

    def two_rows(session, name: str, i: int) -> None:  # type: ignore[no-untyped-def]
        write_audit(session, "test.a", at=vn(2027, 1, 5), plan_id=DISTRICT, who=name)
        write_audit(session, "test.b", at=vn(2027, 1, 5), plan_id=DISTRICT, i=i)

    assert _appending_at_once(postgres_url, "abcd", two_rows) == list(range(1, 201))
    with session_scope(postgres_url) as session:
        assert verify(session).intact


def test_on_postgresql_a_too_long_value_is_refused_not_cut(postgres_url):
    """The one-statement INSERT refuses a plan id longer than its column, as the
    INSERT of the rows did: a cut value would no longer match the row's hash."""
    prepared(postgres_url)
    with pytest.raises(DBAPIError), session_scope(postgres_url) as session:
        write_audit(session, "test.long", at=vn(2027, 1, 5), plan_id="p" * 81)
    with session_scope(postgres_url) as session:
        assert session.scalar(select(func.count()).select_from(AuditEvent)) == 0
