"""Consolidation: a cycle's reports become one report, which goes upward.

The consolidation point's report aggregates every unit's answer per the template,
lists units on time, late and missing, is written as a .docx (Nghị định 30/2020
layout) and a markdown twin for the Prefect artifact, and — when the plan says
``upward`` — becomes this plan's submission to the parent plan's obligation, so the
provincial cycle consolidates districts exactly the same way.
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from engine.audit import write_audit
from engine.calendar import TZ, end_of_day
from engine.context import PlanContext, plan_context, version_of_cycle
from engine.definitions_cache import plan_for_version
from engine.documents import DOCX_TYPE, ReportDocument, Signer, render_docx, render_markdown
from engine.documents import store_file as _store_file
from engine.errors import KehoachError, NotFound
from engine.lifecycle.intake import intake, take_in_waiting
from engine.lifecycle.submissions import SubmissionRejected, record_submission
from engine.outbox.requests import queue_mail
from engine.reports import aggregate, display_value, values_for_template
from engine.schema import Consolidation, ReportTemplate
from engine.states import (
    OBLIGATION_ANSWERED,
    CycleStatus,
    InstanceStatus,
    ObligationStatus,
    ReviewState,
)
from engine.status import State, StatusRow, note, status_table
from engine.store.models import (
    ConsolidatedReport,
    Cycle,
    Obligation,
    OutboxMessage,
    PlanInstance,
    PlanVersion,
    Submission,
)
from engine.transitions import move_cycle, move_obligation
from engine.vntext import short_date


class ConsolidationError(KehoachError):
    """The plan cannot be consolidated as written."""


@dataclass
class ConsolidationResult:
    """The stored report plus what a flow shows (markdown artifact, upward hand-off)."""

    report: ConsolidatedReport
    markdown: str
    created: bool  # False when nothing was written (consolidated before, nothing new)
    status_rows: list[StatusRow] = field(default_factory=list)
    upward_obligation_id: int | None = None
    warnings: list[str] = field(default_factory=list)
    # A revision (report.revision > 1): the one it replaces, and what changed since it.
    replaces_id: int | None = None
    changes: list[str] = field(default_factory=list)
    submission_ids: list[int] = field(default_factory=list)  # the reports that caused it
    upward_refused: str | None = None  # why the parent obligation refused the report

    @property
    def id(self) -> int:
        return self.report.id

    @property
    def revision(self) -> int:
        return self.report.revision or 1

    @property
    def document_path(self) -> str | None:
        return self.report.document_path

    @property
    def document_file_id(self) -> int | None:
        return self.report.document_file_id

    @property
    def aggregates(self) -> dict[str, Any]:
        return self.report.aggregates

    @property
    def status_table(self) -> list[Any]:
        return self.report.status_table

    @property
    def upward_submission_id(self) -> int | None:
        return self.report.upward_submission_id

    def counts(self) -> dict[str, int]:
        tally = {state.value: 0 for state in State}
        for row in self.report.status_table:
            tally[row["state"]] += 1
        return tally


def _slug(text: str) -> str:
    ascii_text = unicodedata.normalize("NFKD", text.replace("đ", "d").replace("Đ", "D"))
    ascii_text = ascii_text.encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-") or "x"


def _find_cycle(session: Session, plan_id: str, cycle_key: str) -> tuple[Cycle, PlanVersion]:
    """The plan's active cycle and the version it runs under (NotFound, with the cycles
    there are, when there is none)."""
    from engine.closing import find_cycle

    cycle = find_cycle(session, plan_id, cycle_key)
    return cycle, version_of_cycle(session, cycle.id)


def _short(ctx: PlanContext, unit_id: str) -> str | None:
    unit = ctx.view.unit(unit_id)
    if unit is None:
        return None
    if unit.short:
        return unit.short
    initials = "".join(w[0] for w in unit.name.split() if w and w[0].isupper())
    return initials[:6] or None


def _issuer(ctx: PlanContext, day: dt.date) -> tuple[str, str | None, Signer]:
    """Who issues the report: the plan's issuer (the consolidation point drafts it).

    As in the seed: Công an huyện "tham mưu UBND huyện báo cáo UBND tỉnh" — the report
    goes out in the issuer's name, signed as the plan was; when the issuer no longer
    exists, in its successor's name, signed by that unit's head.
    """
    document = ctx.plan.document
    unit_id = document.issuer_unit
    unit = ctx.view.unit(unit_id)
    if unit is not None and not unit.valid_on(day):
        successor = ctx.view.successor_on(unit_id, day)
        if successor is not None:
            parent = ctx.view.unit(successor.parent) if successor.parent else None
            head = successor.head
            signer = (
                Signer(title=head.title or "THỦ TRƯỞNG ĐƠN VỊ", name=head.name)
                if head is not None
                else Signer(title="THỦ TRƯỞNG ĐƠN VỊ")
            )
            return successor.id, parent.name if parent else None, signer
    signer = Signer(
        title=document.signer.title,
        name=document.signer.name,
        authority=document.signer.authority,
        on_behalf_of=document.signer.on_behalf_of,
    )
    return unit_id, document.parent_body, signer


def _subject(title: str | None, period: str) -> str:
    """'Báo cáo sơ kết … hằng năm' + 'năm 2027' → 'Sơ kết … năm 2027'."""
    text = (title or "Kết quả thực hiện kế hoạch").strip()
    if text.lower().startswith("báo cáo "):
        text = text[len("báo cáo ") :]
    for suffix in (" hằng năm", " hàng năm", " định kỳ"):
        if text.lower().endswith(suffix):
            text = text[: -len(suffix)]
    return f"{text[:1].upper()}{text[1:]} {period}"


def _document(
    ctx: PlanContext,
    consolidation: Consolidation,
    template: ReportTemplate,
    by_unit: str,
    cycle_key: str,
    aggregates: dict[str, Any],
    rows: list[StatusRow],
    day: dt.date,
    to_unit: str | None,
    via_unit: str | None,
) -> ReportDocument:
    plan = ctx.plan
    names = {r.unit_id: r.unit_name for r in rows}
    fed = plan.deliverable(consolidation.consolidates)
    period = f"năm {cycle_key}" if cycle_key.isdigit() else f"kỳ {cycle_key}"
    issuer_id, parent_body, signer = _issuer(ctx, day)
    doc_ref = plan.document
    ref = " ".join(
        part
        for part in (
            f"Kế hoạch số {doc_ref.number}" if doc_ref.number else "Kế hoạch",
            f"ngày {short_date(doc_ref.date)}" if doc_ref.date else None,
            f"của {doc_ref.issuer}" if doc_ref.issuer else None,
            f"về {doc_ref.summary[:1].lower() + doc_ref.summary[1:]}",
        )
        if part
    )
    subject = _subject(fed.title if fed else None, period)
    drafter = f"trên cơ sở tổng hợp của {ctx.unit_name(by_unit)}, " if by_unit != issuer_id else ""
    intro = [
        f"Thực hiện {ref}; {drafter}{ctx.unit_name(issuer_id)} báo cáo "
        f"{subject[:1].lower() + subject[1:]} từ báo cáo của {len(rows)} cơ quan, đơn vị "
        "như sau:"
    ]
    results = [
        (
            f.label + (f" ({f.unit})" if f.unit else ""),
            display_value(f, aggregates.get(f.id), names),
        )
        for f in template.fields
    ]
    status = [(r.unit_name, short_date(r.due_date), r.state.label, note(r)) for r in rows]
    recipients = [f"{ctx.unit_name(u)} (B/c)" for u in (to_unit, via_unit) if u]
    archive_codes = ["VT"] + [c for c in [_short(ctx, by_unit)] if c and c != "VT"]
    return ReportDocument(
        issuer=ctx.unit_name(issuer_id),
        parent_body=parent_body,
        symbol=f"BC-{_short(ctx, issuer_id)}" if _short(ctx, issuer_id) else "BC",
        place=plan.document.place,
        day=day,
        title="BÁO CÁO",
        summary=subject,
        intro=intro,
        results=results,
        status=status,
        on_time=[r.unit_name for r in rows if r.state is State.DONE_ON_TIME],
        late=[r.unit_name for r in rows if r.state is State.DONE_LATE],
        missing=[r.unit_name for r in rows if not r.state.done],
        combined_with=consolidation.combined_with,
        closing=f"Trên đây là báo cáo {subject[:1].lower() + subject[1:]} của "
        f"{ctx.unit_name(issuer_id)}./.",
        signer=signer,
        recipients=recipients,
        archive=f"Lưu: {', '.join(archive_codes)}.",
    )


def _newest_report(
    session: Session, cycle_id: int, consolidation_id: str, before: int | None = None
) -> ConsolidatedReport | None:
    """The newest revision (or the newest below revision ``before``)."""
    query = select(ConsolidatedReport).where(
        ConsolidatedReport.cycle_id == cycle_id,
        ConsolidatedReport.consolidation_id == consolidation_id,
    )
    if before is not None:
        query = query.where(ConsolidatedReport.revision < before)
    return session.scalar(query.order_by(ConsolidatedReport.revision.desc()).limit(1))


def _newer_submissions(
    session: Session,
    report: ConsolidatedReport,
    deliverable_id: str,
    until: dt.datetime | None = None,
) -> list[tuple[Submission, Obligation]]:
    """Taken-in reports of ``deliverable_id`` in the report's cycle that it does not hold:
    a version above the one it aggregated for that obligation (oldest first; only those
    sent by ``until`` when given).

    Judged by what the report contains (``included_version`` in its status table), not by
    time: an answer sent before the report was written but taken in after it counts.
    Versions written by a consolidation itself do not count: they are its output.
    """
    held = {
        row.get("obligation_id"): row.get("included_version", row.get("version")) or 0
        for row in report.status_table or []
    }
    query = (
        select(Submission, Obligation)
        .join(Obligation, Submission.obligation_id == Obligation.id)
        .where(
            Obligation.cycle_id == report.cycle_id,
            Obligation.deliverable_id == deliverable_id,
            Submission.intake_done.is_(True),
            Submission.source != "consolidation",
            Submission.review_state != ReviewState.RETURNED,
        )
        .order_by(Submission.submitted_at, Submission.id)
    )
    if until is not None:
        query = query.where(Submission.submitted_at <= until)
    return [(s, o) for s, o in session.execute(query).all() if s.version > held.get(o.id, 0)]


def _local(moment: dt.datetime) -> dt.date:
    return moment.astimezone(TZ).date()


def _revision_notes(
    session: Session,
    ctx: PlanContext,
    template: ReportTemplate,
    previous: ConsolidatedReport,
    deliverable_id: str,
    aggregates: dict[str, Any],
    until: dt.datetime | None,
) -> tuple[str, list[str], list[int]]:
    """(the 'replaces' line, what changed, the submissions that caused it) for a revision
    that follows ``previous``; ``until`` is the revision's own time when re-rendering it."""
    replaces = (
        f"Báo cáo này thay thế báo cáo lần {previous.revision} ngày "
        f"{short_date(_local(previous.created_at))}."
    )
    newer = _newer_submissions(session, previous, deliverable_id, until)
    done_before = {
        row.get("obligation_id")
        for row in previous.status_table or []
        if row.get("state") in (State.DONE_ON_TIME.value, State.DONE_LATE.value)
    }
    latest: dict[int, tuple[Submission, Obligation]] = {}
    for submission, obligation in newer:
        latest.pop(obligation.id, None)  # keep the order of the newest version
        latest[obligation.id] = (submission, obligation)
    changes = []
    for submission, obligation in latest.values():
        name = ctx.unit_name(obligation.unit_id)
        day = short_date(_local(submission.submitted_at))
        late = "" if submission.on_time else ", quá hạn"
        if obligation.id in done_before:
            text = f"{name} gửi lại báo cáo ngày {day} (phiên bản {submission.version}{late})"
        else:
            text = f"{name} gửi báo cáo ngày {day}" + (" (quá hạn)" if late else "")
        if submission.review_state is ReviewState.RETURNED:
            text += "; báo cáo đã bị trả lại để hoàn thiện, không đưa vào số liệu"
        changes.append(text)
    names = {row.get("unit_id"): row.get("unit_name") for row in previous.status_table or []}
    for f in template.fields:
        before = display_value(f, previous.aggregates.get(f.id), names)
        after = display_value(f, aggregates.get(f.id), names)
        if before == after:
            continue
        if len(before) + len(after) <= 120 and "\n" not in before + after:
            changes.append(f"{f.label}: {before} thành {after}")
        else:
            changes.append(f"{f.label}: có thay đổi (xem mục I)")
    return replaces, changes, [s.id for s, _ in newer]


def consolidate(
    session: Session,
    plan_id: str,
    cycle_key: str,
    consolidation_id: str,
    *,
    now: dt.datetime,
    settings: Any = None,
    revise: bool = False,
) -> ConsolidationResult:
    """Consolidate one cycle of one report deliverable (idempotent per cycle + consolidation).

    Writes the aggregates, the four-state status table, a .docx under
    ``reports_dir/<plan>/<cycle>/`` (also kept as a StoredFile), marks the consolidation
    point's obligation submitted, queues the 'consolidated' email and, when the plan
    says ``upward``, records the report as a submission to the parent plan.

    Once consolidated, a call returns the newest revision unchanged, unless ``revise``
    and a report was taken in after it (sent later than the revision was written): then
    revision n + 1 replaces it — new aggregates, status table and ``…-lan-<n>.docx``
    saying what it replaces and what changed, a new version of the consolidation
    point's submission, one 'consolidated' email per revision, and a new version upward
    (which the parent obligation may refuse: recorded, not raised). Nothing new, nothing
    written. When to revise is the callers' rule (:func:`follow_up`, docs/DECISIONS.md).
    """
    from engine.config import settings as default_settings

    conf = settings or default_settings()
    cycle, version = _find_cycle(session, plan_id, cycle_key)
    ctx = plan_context(session, version)
    consolidation = ctx.consolidation(consolidation_id)
    if consolidation is None:
        known = ", ".join(c.id for c in ctx.plan.consolidations) or "none"
        raise NotFound(
            f"plan '{plan_id}' has no consolidation '{consolidation_id}' (known: {known})"
        )
    fed = ctx.plan.deliverable(consolidation.consolidates)
    template = ctx.plan.template(fed.template or "") if fed else None
    if fed is None or template is None:  # pragma: no cover - the loader checks this
        raise ConsolidationError(f"'{consolidation.consolidates}' is not a report with a template")
    today = now.astimezone(TZ).date()
    # One consolidation of a cycle at a time (PostgreSQL; SQLite has one writer): two
    # follow-ups at once (intake and sweep) would both write revision n + 1's document.
    # The cycle first, then its obligations, as closing does: no lock-order deadlock.
    session.execute(select(Cycle.id).where(Cycle.id == cycle.id).with_for_update()).all()
    # Answers recorded but not taken in yet (intake runs after the portal, in batches)
    # and sent by this moment are taken in first, so the report, dated ``now``, holds
    # them; one sent later is left to intake and makes the next revision.
    take_in_waiting(session, now=now, cycle_id=cycle.id, deliverable_id=fed.id, sent_by=now)

    previous = _newest_report(session, cycle.id, consolidation.id)
    if previous is not None and not (revise and _newer_submissions(session, previous, fed.id)):
        return _existing(session, ctx, consolidation, template, fed.id, previous, today)

    duty = session.scalar(
        select(Obligation).where(
            Obligation.cycle_id == cycle.id,
            Obligation.deliverable_id == consolidation.id,
            Obligation.kind == "consolidation",
        )
    )
    by_unit = duty.unit_id if duty else consolidation.by
    to_unit = duty.to_unit_id if duty else consolidation.routing.to
    via_unit = duty.via_unit_id if duty else consolidation.routing.via

    rows = [
        r
        for r in status_table(session, plan_id, cycle_key, today=today, deliverable_id=fed.id)
        if r.cycle_key == cycle_key
    ]
    reports, included = _latest_reports(session, cycle.id, fed.id)
    aggregates = aggregate(template, reports)
    doc = _document(
        ctx, consolidation, template, by_unit, cycle_key, aggregates, rows, today, to_unit, via_unit
    )
    revision = 1 if previous is None else previous.revision + 1
    submission_ids: list[int] = []
    if previous is not None:
        doc.replaces, doc.changes, submission_ids = _revision_notes(
            session, ctx, template, previous, fed.id, aggregates, None
        )
    markdown = render_markdown(doc)

    folder = Path(conf.reports_dir) / plan_id / cycle_key
    suffix = f"-lan-{revision}" if revision > 1 else ""
    name = f"{consolidation.id}-{_slug(ctx.unit_name(by_unit))}{suffix}.docx"
    path = render_docx(doc, folder / name)
    stored = _store_file(
        session,
        path.read_bytes(),
        name=path.name,
        content_type=DOCX_TYPE,
        now=now,
        files_dir=Path(conf.files_dir),
    )
    report = ConsolidatedReport(
        cycle_id=cycle.id,
        consolidation_id=consolidation.id,
        revision=revision,
        by_unit_id=by_unit,
        aggregates=aggregates,
        status_table=[
            {**r.as_dict(), "included_version": included.get(r.obligation_id)} for r in rows
        ],
        document_file_id=stored.id,
        document_path=str(path),
        created_at=now,
    )
    session.add(report)
    session.flush()

    if duty is not None and (previous is not None or not duty.status.done):
        _duty_submission(session, duty, aggregates, doc.summary, stored.id, now)
        extra: dict[str, Any] = {"document_path": str(path)}
        step = ""
        if previous is not None:
            step = f"lan-{revision}"
            extra.update(
                revision=revision,
                replaces=doc.replaces,
                changes=doc.changes,
                previous_date=short_date(_local(previous.created_at)),
            )
        queue_mail(session, duty, "consolidated", step, extra, now)
    # A closed cycle stays closed (closed with --force, consolidated by hand afterwards):
    # reopening it restores 'consolidated' from consolidated_at.
    if cycle.status is CycleStatus.OPEN:  # recorded in the 'cycle.consolidated' row below
        move_cycle(session, cycle, CycleStatus.CONSOLIDATED, at=now, action=None, plan_id=plan_id)
    if previous is None:
        cycle.consolidated_at = now
        write_audit(
            session,
            "cycle.consolidated",
            at=now,
            plan_id=plan_id,
            obligation_id=duty.id if duty else None,
            cycle=cycle_key,
            consolidation=consolidation.id,
            report_id=report.id,
            on_time=len(doc.on_time),
            late=len(doc.late),
            missing=len(doc.missing),
        )

    result = ConsolidationResult(
        report,
        markdown,
        True,
        rows,
        replaces_id=previous.id if previous is not None else None,
        changes=list(doc.changes),
        submission_ids=submission_ids,
    )
    if consolidation.upward is not None:
        _hand_upward(
            session,
            ctx,
            consolidation,
            template,
            cycle_key,
            by_unit,
            report,
            stored.id,
            doc.summary,
            {r.unit_id: r.unit_name for r in rows},
            now,
            result,
        )
    if previous is not None:
        write_audit(
            session,
            "cycle.reconsolidated",
            at=now,
            plan_id=plan_id,
            obligation_id=duty.id if duty else None,
            cycle=cycle_key,
            consolidation=consolidation.id,
            report_id=report.id,
            revision=revision,
            replaces_report_id=previous.id,
            submission_ids=submission_ids,
            changes=list(doc.changes),
            upward_submission_id=report.upward_submission_id,
            upward_refused=result.upward_refused,
            on_time=len(doc.on_time),
            late=len(doc.late),
            missing=len(doc.missing),
        )
        session.flush()
    return result


def _existing(
    session: Session,
    ctx: PlanContext,
    consolidation: Consolidation,
    template: ReportTemplate,
    deliverable_id: str,
    report: ConsolidatedReport,
    today: dt.date,
) -> ConsolidationResult:
    """A stored revision as a result (nothing written); its document re-rendered."""
    cycle_key = session.get(Cycle, report.cycle_id).key  # type: ignore[union-attr]
    rows = status_table(session, ctx.plan_id, cycle_key, today=today, deliverable_id=deliverable_id)
    rows = [r for r in rows if r.cycle_key == cycle_key]
    doc = _document(
        ctx,
        consolidation,
        template,
        report.by_unit_id,
        cycle_key,
        report.aggregates,
        rows,
        _local(report.created_at),
        consolidation.routing.to,
        consolidation.routing.via,
    )
    result = ConsolidationResult(report, "", False, rows)
    previous = (
        _newest_report(session, report.cycle_id, report.consolidation_id, before=report.revision)
        if (report.revision or 1) > 1
        else None
    )
    if previous is not None:
        doc.replaces, doc.changes, result.submission_ids = _revision_notes(
            session, ctx, template, previous, deliverable_id, report.aggregates, report.created_at
        )
        result.replaces_id, result.changes = previous.id, list(doc.changes)
    result.markdown = render_markdown(doc)
    return result


def _duty_submission(
    session: Session,
    duty: Obligation,
    aggregates: dict[str, Any],
    summary: str,
    file_id: int,
    now: dt.datetime,
) -> Submission:
    """The report as a new version of the consolidation point's own obligation.

    A revision after the duty's due date is a supplementary report: the duty stays
    done as it was (on time when the first report was), only the version is added.
    """
    version_no = 1 + (
        session.scalar(
            select(func.max(Submission.version)).where(Submission.obligation_id == duty.id)
        )
        or 0
    )
    on_time = now <= end_of_day(duty.due_date)
    submission = Submission(
        obligation_id=duty.id,
        version=version_no,
        values=aggregates,
        summary=summary,
        file_ids=[file_id],
        submitted_at=now,
        source="consolidation",
        on_time=on_time,
        review_state=ReviewState.VALIDATED,
        intake_done=True,
    )
    session.add(submission)
    if not duty.status.done:  # recorded with the report ('cycle.consolidated')
        move_obligation(
            session, duty, ObligationStatus.SUBMITTED, at=now, action=None, plan_id=None
        )
        duty.submitted_at = now
        duty.on_time = on_time
    elif on_time:
        duty.submitted_at = now
    duty.updated_at = now
    session.flush()
    return submission


def _latest_reports(
    session: Session, cycle_id: int, deliverable_id: str
) -> tuple[list[tuple[str, dict]], dict[int, int]]:
    """(unit id, values) of the newest non-returned version of every done report, and
    {obligation id: version} of what that is (the report keeps it: see _newer_submissions)."""
    found = session.execute(
        select(Obligation.unit_id, Submission)
        .join(Submission, Submission.obligation_id == Obligation.id)
        .where(
            Obligation.cycle_id == cycle_id,
            Obligation.deliverable_id == deliverable_id,
            Obligation.status.in_(OBLIGATION_ANSWERED),
            Submission.review_state != ReviewState.RETURNED,
        )
        .order_by(Obligation.id, Submission.version)
    ).all()
    latest: dict[str, dict] = {}
    included: dict[int, int] = {}
    for unit_id, submission in found:
        latest[unit_id] = submission.values or {}
        included[submission.obligation_id] = submission.version
    return list(latest.items()), included


def _hand_upward(
    session: Session,
    ctx: PlanContext,
    consolidation: Consolidation,
    template: ReportTemplate,
    cycle_key: str,
    by_unit: str,
    report: ConsolidatedReport,
    file_id: int,
    summary: str,
    unit_names: dict[str, str],
    now: dt.datetime,
    result: ConsolidationResult,
) -> None:
    """Record the report as this plan's submission to the parent plan's obligation."""
    upward = consolidation.upward
    assert upward is not None
    issuer = ctx.plan.document.issuer_unit
    candidates = [u for u in (issuer, by_unit, consolidation.by) if u]
    found = session.execute(
        select(Obligation, PlanVersion)
        .join(Cycle, Obligation.cycle_id == Cycle.id)
        .join(PlanInstance, Cycle.instance_id == PlanInstance.id)
        .join(PlanVersion, PlanInstance.plan_version_id == PlanVersion.id)
        .where(
            PlanInstance.plan_id == upward.plan,
            PlanInstance.status == InstanceStatus.ACTIVE,
            Cycle.key == cycle_key,
            Obligation.deliverable_id == upward.deliverable,
            or_(
                Obligation.unit_id.in_(candidates),
                Obligation.transferred_from.in_(candidates),
            ),
        )
        .order_by(PlanInstance.id.desc())
    ).all()
    if not found:
        result.warnings.append(
            f"no obligation '{upward.deliverable}' of plan '{upward.plan}' for cycle "
            f"{cycle_key} owed by {', '.join(candidates)}: activate the parent plan; "
            "the report was not handed upward"
        )
        return

    def rank(pair: tuple[Obligation, PlanVersion]) -> int:
        obligation = pair[0]
        for index, unit in enumerate(candidates):
            if obligation.unit_id == unit:
                return index
        for index, unit in enumerate(candidates):
            if obligation.transferred_from == unit:
                return len(candidates) + index
        return 99

    parent_obligation, parent_version = min(found, key=rank)
    parent_ctx = plan_context(session, parent_version)
    parent_deliverable = parent_ctx.plan.deliverable(upward.deliverable)
    parent_template = (
        parent_ctx.plan.template(parent_deliverable.template or "")
        if parent_deliverable is not None
        else None
    )
    values = (
        values_for_template(parent_template, report.aggregates, template, unit_names)
        if parent_template is not None
        else {}
    )
    try:
        submission = record_submission(
            session,
            parent_obligation.id,
            values=values,
            summary=summary,
            file_ids=[file_id],
            source="upward",
            now=now,
            actor=f"plan:{ctx.plan_id}",
            strict=False,
        )
    except SubmissionRejected as exc:
        result.upward_refused = str(exc)
        result.warnings.append(f"the parent obligation refused the report: {exc}")
        write_audit(
            session,
            "report.upward_refused",
            at=now,
            plan_id=ctx.plan_id,
            obligation_id=parent_obligation.id,
            parent_plan=upward.plan,
            report_id=report.id,
            revision=report.revision,
            reason=str(exc),
        )
        session.flush()
        return
    intake(session, submission.id, now=now)
    report.upward_submission_id = submission.id
    result.upward_obligation_id = parent_obligation.id
    write_audit(
        session,
        "report.handed_upward",
        at=now,
        plan_id=ctx.plan_id,
        obligation_id=parent_obligation.id,
        parent_plan=upward.plan,
        submission_id=submission.id,
        report_id=report.id,
        revision=report.revision,
    )
    session.flush()


# ---------------------------------------------------------------- after consolidation

LATE_NOTICE = "report_after_consolidation"  # email kind (notifications/templates/)


def stale_consolidations(
    session: Session, plan_id: str, today: dt.date
) -> list[tuple[str, str, list[int]]]:
    """(cycle key, consolidation id, [submission ids]) of every consolidated report of the
    plan's active instances with reports taken in after its newest revision (sent by the
    end of ``today``), oldest submission first."""
    found = session.execute(
        select(ConsolidatedReport, Cycle.key)
        .join(Cycle, ConsolidatedReport.cycle_id == Cycle.id)
        .join(PlanInstance, Cycle.instance_id == PlanInstance.id)
        .where(PlanInstance.plan_id == plan_id, PlanInstance.status == InstanceStatus.ACTIVE)
        .order_by(Cycle.id, ConsolidatedReport.consolidation_id, ConsolidatedReport.revision)
    ).all()
    newest: dict[tuple[int, str], tuple[ConsolidatedReport, str]] = {}
    for report, key in found:
        newest[(report.cycle_id, report.consolidation_id)] = (report, key)
    out: list[tuple[str, str, list[int]]] = []
    plans: dict[int, Any] = {}
    for (cycle_id, consolidation_id), (report, key) in newest.items():
        if cycle_id not in plans:
            plans[cycle_id] = plan_for_version(session, version_of_cycle(session, cycle_id))
        consolidation = next(
            (c for c in plans[cycle_id].consolidations if c.id == consolidation_id), None
        )
        if consolidation is None:
            continue
        newer = _newer_submissions(session, report, consolidation.consolidates, end_of_day(today))
        if newer:
            out.append((key, consolidation_id, [s.id for s, _ in newer]))
    return out


@dataclass
class FollowUp:
    """What to do about reports taken in after a consolidation (docs/DECISIONS.md).

    ``automatic``: the consolidation duty's due date has not passed, so a new revision is
    written; otherwise the consolidating unit gets one notice per late submission and
    decides (``kehoach consolidate PLAN --cycle KEY --revise``).
    """

    plan_id: str
    cycle_key: str
    consolidation_id: str
    submission_ids: list[int]  # taken in after the newest revision
    due_date: dt.date | None  # of the consolidation duty
    automatic: bool
    unnoticed: list[int] = field(default_factory=list)  # late ones without a notice yet
    result: ConsolidationResult | None = None  # the revision written by follow_up()
    notices: list[int] = field(default_factory=list)  # submissions noticed by follow_up()

    @property
    def needed(self) -> bool:
        return self.automatic or bool(self.unnoticed)


def _duty(session: Session, cycle_id: int, consolidation_id: str) -> Obligation | None:
    return session.scalar(
        select(Obligation).where(
            Obligation.cycle_id == cycle_id,
            Obligation.deliverable_id == consolidation_id,
            Obligation.kind == "consolidation",
        )
    )


def _notice_key(duty_id: int, submission_id: int) -> str:
    return f"obl:{duty_id}:{LATE_NOTICE}:{submission_id}"


def _plan_follow_up(
    session: Session,
    plan_id: str,
    cycle: Cycle,
    consolidation_id: str,
    submission_ids: list[int],
    today: dt.date,
) -> FollowUp:
    duty = _duty(session, cycle.id, consolidation_id)
    automatic = duty is not None and today <= duty.due_date
    unnoticed: list[int] = []
    if duty is not None and not automatic and submission_ids:
        keys = {_notice_key(duty.id, sid): sid for sid in submission_ids}
        sent = set(
            session.scalars(
                select(OutboxMessage.idempotency_key).where(
                    OutboxMessage.idempotency_key.in_(list(keys))
                )
            )
        )
        unnoticed = [sid for key, sid in keys.items() if key not in sent]
    return FollowUp(
        plan_id,
        cycle.key,
        consolidation_id,
        list(submission_ids),
        duty.due_date if duty else None,
        automatic and bool(submission_ids),
        unnoticed,
    )


def pending_follow_ups(session: Session, plan_id: str, today: dt.date) -> list[FollowUp]:
    """The follow-ups due: a revision to write, or notices not sent yet (read only)."""
    out = []
    for cycle_key, consolidation_id, ids in stale_consolidations(session, plan_id, today):
        cycle, _ = _find_cycle(session, plan_id, cycle_key)
        todo = _plan_follow_up(session, plan_id, cycle, consolidation_id, ids, today)
        if todo.needed:
            out.append(todo)
    return out


def follow_up(
    session: Session,
    plan_id: str,
    cycle_key: str,
    consolidation_id: str,
    *,
    now: dt.datetime,
    settings: Any = None,
) -> FollowUp:
    """Reports taken in after the newest revision: revise while the consolidation duty's
    due date has not passed, else queue one notice per late submission to the
    consolidating unit. Idempotent; nothing to do when the cycle is not consolidated."""
    today = _local(now)
    cycle, version = _find_cycle(session, plan_id, cycle_key)
    ctx = plan_context(session, version)
    consolidation = ctx.consolidation(consolidation_id)
    previous = _newest_report(session, cycle.id, consolidation_id)
    if consolidation is None or previous is None:
        return FollowUp(plan_id, cycle_key, consolidation_id, [], None, False)
    newer = _newer_submissions(session, previous, consolidation.consolidates)
    todo = _plan_follow_up(
        session, plan_id, cycle, consolidation_id, [s.id for s, _ in newer], today
    )
    if todo.automatic:
        todo.result = consolidate(
            session, plan_id, cycle_key, consolidation_id, now=now, settings=settings, revise=True
        )
        return todo
    duty = _duty(session, cycle.id, consolidation_id)
    if duty is None:
        return todo
    command = f"kehoach consolidate {plan_id} --cycle {cycle_key} --revise"
    if len(ctx.plan.consolidations) > 1:
        command += f" --consolidation {consolidation_id}"
    report_day = short_date(_local(previous.created_at))
    for submission, obligation in newer:
        if submission.id not in todo.unnoticed:
            continue
        resent = session.scalar(
            select(func.count(Submission.id)).where(
                Submission.obligation_id == obligation.id,
                Submission.version < submission.version,
                Submission.submitted_at <= previous.created_at,
            )
        )
        queue_mail(
            session,
            duty,
            LATE_NOTICE,
            str(submission.id),
            {
                "late_report": {
                    "unit_name": ctx.unit_name(obligation.unit_id),
                    "day": short_date(_local(submission.submitted_at)),
                    "at": submission.submitted_at.astimezone(TZ).strftime("%H:%M"),
                    "version": submission.version,
                    "on_time": submission.on_time,
                    "resent": bool(resent),
                    "due": short_date(obligation.due_date),
                },
                "consolidated_report": {
                    "revision": previous.revision,
                    "day": report_day,
                    "document_path": previous.document_path,
                },
                "command": command,
            },
            now,
        )
        write_audit(
            session,
            "consolidation.late_report_noticed",
            at=now,
            plan_id=plan_id,
            obligation_id=duty.id,
            cycle=cycle_key,
            consolidation=consolidation_id,
            submission_id=submission.id,
            unit_id=obligation.unit_id,
            report_id=previous.id,
            revision=previous.revision,
        )
        todo.notices.append(submission.id)
    session.flush()
    return todo
