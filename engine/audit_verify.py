"""Checking the audit chain: every row, or only the submissions a step is about to use.

:func:`verify` walks a chain (or all) in ``seq`` order: no gap, each row linked to the
one before, each row's hash recomputed, the head at the last row; then every content a
row references is recomputed from the stored row (submissions, consolidated reports and
their documents), and every submission and report must be referenced by some row.
:func:`tampered_submissions` is the cheap check consolidation and the sweep make of the
rows they use: one query.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

from sqlalchemy import Table, and_, select
from sqlalchemy.orm import Session

from engine.audit_chain import (
    GENESIS,
    ROW_FIELDS,
    pending_refs,
    report_hash,
    row_hash,
    submission_hash,
)
from engine.store.arrays import one_of, pairs_in
from engine.store.models import (
    AuditChainHead,
    AuditEvent,
    ConsolidatedReport,
    Cycle,
    Obligation,
    PlanInstance,
    StoredFile,
    Submission,
)

_EVENTS = cast(Table, AuditEvent.__table__)
_BATCH = 1000


@dataclass(frozen=True)
class Break:
    """One place where the log and the data disagree (``what`` in Vietnamese)."""

    chain: str
    seq: int | None  # the row's place in its chain (None: no row records the content)
    audit_id: int | None
    at: dt.datetime | None
    what: str

    def sort_key(self) -> tuple[str, float, str]:
        return (self.chain, self.seq if self.seq is not None else float("inf"), self.what)


@dataclass
class Verification:
    rows: int = 0
    chains: int = 0
    contents: int = 0  # submissions and reports whose hash was recomputed
    anchors: int = 0  # anchor lines (engine.audit_anchor) compared with the chain
    breaks: list[Break] = field(default_factory=list)

    @property
    def intact(self) -> bool:
        return not self.breaks

    @property
    def first(self) -> Break | None:
        return self.breaks[0] if self.breaks else None


def _short(digest: str | None) -> str:
    return (digest or "—")[:12]


# ---------------------------------------------------------------- the whole chain


def verify(
    session: Session,
    plan_id: str | None = None,
    files_dir: Path | None = None,
    anchors: Path | None = None,
) -> Verification:
    """Check the chain of ``plan_id`` (every chain when None) and what its rows reference;
    with ``anchors``, also every head copied to that file (engine.audit_anchor), which a
    chain rewritten whole, every hash recomputed, no longer matches."""
    result = Verification()
    chains = [plan_id] if plan_id is not None else _chains(session)
    refs: dict[str, dict[int, Any]] = {"submission": {}, "report": {}}
    for chain in chains:
        result.chains += 1
        _walk(session, chain, result, refs)
    _check_submissions(session, refs["submission"], result)
    _check_reports(session, refs["report"], result, files_dir)
    _unrecorded(session, plan_id, refs, result)
    result.breaks.sort(key=Break.sort_key)
    if anchors is not None:
        _check_anchors(session, plan_id, anchors, result)
    return result


def _check_anchors(session: Session, plan_id: str | None, path: Path, result: Verification) -> None:
    """Anchors that no longer match come first: a rewrite leaves nothing else to see."""
    from engine.audit_anchor import check, store_name

    url = session.get_bind().engine.url.render_as_string(hide_password=False)
    result.anchors, found = check(session, path, store_name(url))
    breaks = [
        Break(m.chain, m.seq, m.audit_id, m.at, m.what)
        for m in found
        if plan_id is None or m.chain in (plan_id, "")
    ]
    result.breaks[:0] = breaks


def _chains(session: Session) -> list[str]:
    found = set(session.scalars(select(AuditChainHead.chain)))
    found |= set(session.scalars(select(AuditEvent.chain).distinct()))
    return sorted(found)


def _rows(session: Session, chain: str) -> Iterator[Any]:
    query = select(_EVENTS).where(_EVENTS.c.chain == chain).order_by(_EVENTS.c.seq)
    result = session.connection().execution_options(yield_per=_BATCH).execute(query)
    yield from result.mappings()


def _walk(
    session: Session, chain: str, result: Verification, refs: dict[str, dict[int, Any]]
) -> None:
    expected, prev, last = 1, GENESIS, None
    for row in _rows(session, chain):
        result.rows += 1
        seq = row["seq"]
        if seq != expected:
            missing = f"{expected}–{seq - 1}" if seq - 1 > expected else str(expected)
            what = f"thiếu dòng số {missing} của chuỗi ngay trước dòng này (đã bị xoá)"
            result.breaks.append(_at_row(row, what))
        elif row["prev_hash"] != prev:
            what = (
                f"không nối với dòng trước: ghi mã băm trước {_short(row['prev_hash'])}, "
                f"dòng trước có {_short(prev)}"
            )
            result.breaks.append(_at_row(row, what))
        if row_hash(row) != row["row_hash"]:
            what = "nội dung dòng đã bị sửa: không khớp mã băm của chính nó"
            result.breaks.append(_at_row(row, what))
        if row["ref_kind"] in refs and row["ref_id"] is not None:
            refs[row["ref_kind"]][row["ref_id"]] = row
        expected, prev, last = seq + 1, row["row_hash"], row
    _check_head(session, chain, last, result)


def _check_head(session: Session, chain: str, last: Any, result: Verification) -> None:
    head = session.get(AuditChainHead, chain)
    if head is None and last is None:
        return
    if head is None:
        what = "không có đầu chuỗi (audit_chain_heads) cho chuỗi này"
        result.breaks.append(Break(chain, None, None, None, what))
        return
    at_seq = last["seq"] if last is not None else 0
    if head.seq != at_seq or (last is not None and head.row_hash != last["row_hash"]):
        what = f"đầu chuỗi ghi {head.seq} dòng, chuỗi còn đến dòng {at_seq}: dòng cuối đã bị xoá"
        result.breaks.append(Break(chain, at_seq + 1, None, None, what))


def _at_row(row: Any, what: str) -> Break:
    return Break(row["chain"], row["seq"], row["id"], row["at"], what)


def _batches(ids: Iterable[int]) -> Iterator[list[int]]:
    ordered = sorted(ids)
    for start in range(0, len(ordered), _BATCH):
        yield ordered[start : start + _BATCH]


def _check_submissions(session: Session, recorded: dict[int, Any], result: Verification) -> None:
    for batch in _batches(recorded):
        query = select(Submission).where(Submission.id.in_(batch))
        found = {s.id: s for s in session.scalars(query)}
        for submission_id in batch:
            row = recorded[submission_id]
            submission = found.get(submission_id)
            result.contents += 1
            if submission is None:
                what = f"báo cáo #{submission_id} mà dòng này ghi nhận không còn trong CSDL"
            elif submission_hash(submission) != row["content_hash"]:
                what = (
                    f"báo cáo #{submission_id} (phiên bản {submission.version}) khác với lúc "
                    f"ghi nhận: mã băm ghi {_short(row['content_hash'])}, nay "
                    f"{_short(submission_hash(submission))}"
                )
            else:
                continue
            result.breaks.append(_at_row(row, what))


def _check_reports(
    session: Session, recorded: dict[int, Any], result: Verification, files_dir: Path | None
) -> None:
    for batch in _batches(recorded):
        found = session.execute(
            select(ConsolidatedReport, StoredFile)
            .outerjoin(StoredFile, StoredFile.id == ConsolidatedReport.document_file_id)
            .where(ConsolidatedReport.id.in_(batch))
        ).all()
        by_id = {report.id: (report, document) for report, document in found}
        for report_id in batch:
            row = recorded[report_id]
            result.contents += 1
            what = _report_problem(report_id, by_id.get(report_id), row, files_dir)
            if what:
                result.breaks.append(_at_row(row, what))


def _report_problem(
    report_id: int, found: tuple[Any, Any] | None, row: Any, files_dir: Path | None
) -> str | None:
    if found is None:
        return f"báo cáo tổng hợp #{report_id} mà dòng này ghi nhận không còn trong CSDL"
    report, document = found
    digest = document.sha256 if document is not None else None
    if report_hash(report, digest) != row["content_hash"]:
        return (
            f"báo cáo tổng hợp #{report_id} (lần {report.revision}) khác với lúc ghi nhận "
            "(số liệu, bảng tình hình hoặc tệp văn bản)"
        )
    if files_dir is not None and digest is not None:
        from engine.documents import stored_path

        path = stored_path(files_dir, digest)
        if path.exists() and hashlib.sha256(path.read_bytes()).hexdigest() != digest:
            return f"tệp văn bản của báo cáo tổng hợp #{report_id} đã bị thay ({path.name})"
    return None


def _unrecorded(
    session: Session, plan_id: str | None, refs: dict[str, dict[int, Any]], result: Verification
) -> None:
    """Submissions and reports that no row of the checked chains records."""
    subs = (
        select(Submission.id, Submission.version, Submission.submitted_at, PlanInstance.plan_id)
        .join(Obligation, Obligation.id == Submission.obligation_id)
        .join(Cycle, Cycle.id == Obligation.cycle_id)
        .join(PlanInstance, PlanInstance.id == Cycle.instance_id)
    )
    reports = (
        select(
            ConsolidatedReport.id,
            ConsolidatedReport.revision,
            ConsolidatedReport.created_at,
            PlanInstance.plan_id,
        )
        .join(Cycle, Cycle.id == ConsolidatedReport.cycle_id)
        .join(PlanInstance, PlanInstance.id == Cycle.instance_id)
    )
    if plan_id is not None:
        subs = subs.where(PlanInstance.plan_id == plan_id)
        reports = reports.where(PlanInstance.plan_id == plan_id)
    for key, version, at, plan in session.execute(subs):
        if key not in refs["submission"]:
            what = f"báo cáo #{key} (phiên bản {version}) không có dòng nhật ký nào ghi nhận nó"
            result.breaks.append(Break(plan, None, None, at, what))
    for key, revision, at, plan in session.execute(reports):
        if key not in refs["report"]:
            what = f"báo cáo tổng hợp #{key} (lần {revision}) không có dòng nhật ký nào ghi nhận"
            result.breaks.append(Break(plan, None, None, at, what))


# ---------------------------------------------------------------- the rows a step uses

NO_RECORD = "không có dòng nhật ký ghi nhận (đã bị xoá, hoặc báo cáo được chèn thẳng vào CSDL)"
CHANGED = "số liệu khác với lúc ghi nhận (không khớp mã băm trong nhật ký)"
ROW_CHANGED = "dòng nhật ký ghi nhận báo cáo đã bị sửa hoặc tách khỏi chuỗi"

_SUBMISSIONS = cast(Table, Submission.__table__)
_HEADS = cast(Table, AuditChainHead.__table__)
_CONTENT = (
    "obligation_id",
    "version",
    "values",
    "summary",
    "file_ids",
    "submitted_at",
    "source",
    "on_time",
)


# Submissions whose recording rows one statement reads (an IN list of their ids).
_REFS_AT_ONCE = 1000


def _recording_rows(session: Session, condition: Any) -> Iterator[Mapping[str, Any]]:
    """Submissions matching ``condition``, each with the rows that record it (one
    mapping per recording row, or one with ``a_id`` None when none does), the row after
    each (its ``prev_hash``) and its chain's head.

    One statement for the submissions and one for the rows of each 1,000 of them, not one
    join: on PostgreSQL, with the statistics of a table filled
    since the last ANALYZE (3,500 answers just taken in), the planner took the audit rows
    for a handful and compared every submission with every one of them (12 million
    comparisons, 1.8 s of a 4.2 s consolidation); the rows recording a list of
    submission ids are read by index (``ix_audit_events_ref``) whatever the statistics."""
    sub = _SUBMISSIONS
    found = session.connection().execute(
        select(sub.c.id.label("submission_id"), *(sub.c[n] for n in _CONTENT)).where(condition)
    )
    submissions = [dict(row) for row in found.mappings()]
    recorded: dict[int, list[dict[str, Any]]] = {}
    ids = [row["submission_id"] for row in submissions]
    for start in range(0, len(ids), _REFS_AT_ONCE):
        chunk = ids[start : start + _REFS_AT_ONCE]
        statement = _recording_statement(one_of(session, _EVENTS.c.ref_id, chunk))
        for row in session.connection().execute(statement).mappings():
            recorded.setdefault(row["ref_id"], []).append(dict(row))
    none = {"a_id": None}
    for submission in submissions:
        for recording in recorded.get(submission["submission_id"], [none]):
            yield {**submission, **recording}


def _recording_statement(recording: Any) -> Any:
    following = _EVENTS.alias("following")
    columns: list[Any] = [_EVENTS.c.ref_id]
    columns += [_EVENTS.c[n].label(f"a_{n}") for n in (*ROW_FIELDS, "id", "row_hash")]
    columns += [following.c.prev_hash.label("next_prev"), _HEADS.c.seq.label("head_seq")]
    columns += [_HEADS.c.row_hash.label("head_hash")]
    return (
        select(*columns)
        .select_from(_EVENTS)
        .outerjoin(
            following,
            and_(following.c.chain == _EVENTS.c.chain, following.c.seq == _EVENTS.c.seq + 1),
        )
        .outerjoin(_HEADS, _HEADS.c.chain == _EVENTS.c.chain)
        .where(_EVENTS.c.ref_kind == "submission", recording)
    )


def _tampered(session: Session, condition: Any) -> dict[int, tuple[int, str]]:
    """{submission id: (obligation id, why)} of the matching submissions that fail. Every
    row recording one must be intact and linked; the newest decides its content (as in
    :func:`verify`); a row queued in this transaction counts as the newest."""
    waiting = pending_refs(session, "submission")
    broken: dict[int, tuple[int, str]] = {}
    newest: dict[int, tuple[int, int, str | None, str]] = {}  # id -> (obligation, seq, …)
    for row in _recording_rows(session, condition):
        key, obligation_id = row["submission_id"], row["obligation_id"]
        content = submission_hash(SimpleNamespace(id=key, **{n: row[n] for n in _CONTENT}))
        if key in waiting:
            newest[key] = (obligation_id, 1 << 62, waiting[key], content)
        if row["a_id"] is None:
            newest.setdefault(key, (obligation_id, -1, None, content))
        elif not _intact(row):
            broken[key] = (obligation_id, ROW_CHANGED)
        elif key not in newest or row["a_seq"] > newest[key][1]:
            newest[key] = (obligation_id, row["a_seq"], row["a_content_hash"], content)
    for key, (obligation_id, seq, recorded, content) in newest.items():
        if key in broken:
            continue
        if seq < 0:
            broken[key] = (obligation_id, NO_RECORD)
        elif recorded != content:
            broken[key] = (obligation_id, CHANGED)
    return broken


def _intact(row: Any) -> bool:
    """The recording row's own hash holds and the chain still goes through it."""
    audit = {n: row[f"a_{n}"] for n in ROW_FIELDS}
    if row["next_prev"] is not None:
        linked = row["next_prev"] == row["a_row_hash"]
    else:
        linked = row["head_seq"] == row["a_seq"] and row["head_hash"] == row["a_row_hash"]
    return linked and row_hash(audit) == row["a_row_hash"]


def tampered_versions(session: Session, versions: Mapping[int, int]) -> dict[int, str]:
    """{obligation id: why} of the submissions ``{obligation id: version}`` (the versions a
    consolidation is about to aggregate) that do not match the audit row recording them,
    whose row was changed or unlinked, or that no row records (:func:`_recording_rows`)."""
    if not versions:
        return {}
    pairs = versions.items()
    condition = pairs_in(session, _SUBMISSIONS.c.obligation_id, _SUBMISSIONS.c.version, pairs)
    return {obligation: why for obligation, why in _tampered(session, condition).values()}


def tampered_waiting(session: Session, instance_ids: Sequence[int]) -> dict[int, str]:
    """{submission id: why} of the submissions waiting for intake in these plan instances
    (what the sweep is about to take in) that fail the same check."""
    obligations = (
        select(Obligation.id)
        .join(Cycle, Cycle.id == Obligation.cycle_id)
        .where(Cycle.instance_id.in_(list(instance_ids)))
    )
    condition = and_(
        _SUBMISSIONS.c.intake_done.is_(False), _SUBMISSIONS.c.obligation_id.in_(obligations)
    )
    return {key: why for key, (_, why) in _tampered(session, condition).items()}
