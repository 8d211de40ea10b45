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

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from engine.calendar import TZ, end_of_day
from engine.documents import DOCX_TYPE, ReportDocument, Signer, render_docx, render_markdown
from engine.documents import store_file as _store_file
from engine.errors import KehoachError, NotFound
from engine.lifecycle import (
    DONE,
    PlanContext,
    SubmissionRejected,
    _audit,
    _queue,
    intake,
    plan_context,
    record_submission,
)
from engine.reports import aggregate, display_value, values_for_template
from engine.schema import Consolidation, ReportTemplate
from engine.status import State, StatusRow, note, status_table
from engine.store.models import (
    ConsolidatedReport,
    Cycle,
    Obligation,
    PlanInstance,
    PlanVersion,
    Submission,
)
from engine.vntext import short_date


class ConsolidationError(KehoachError):
    """The plan cannot be consolidated as written."""


@dataclass
class ConsolidationResult:
    """The stored report plus what a flow shows (markdown artifact, upward hand-off)."""

    report: ConsolidatedReport
    markdown: str
    created: bool  # False when the cycle was consolidated before (nothing changed)
    status_rows: list[StatusRow] = field(default_factory=list)
    upward_obligation_id: int | None = None
    warnings: list[str] = field(default_factory=list)

    @property
    def id(self) -> int:
        return self.report.id

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
    found = session.execute(
        select(Cycle, PlanVersion)
        .join(PlanInstance, Cycle.instance_id == PlanInstance.id)
        .join(PlanVersion, PlanInstance.plan_version_id == PlanVersion.id)
        .where(
            PlanInstance.plan_id == plan_id,
            PlanInstance.status == "active",
            Cycle.key == cycle_key,
        )
        .order_by(PlanInstance.id.desc())
    ).first()
    if found is None:
        raise NotFound(
            f"plan '{plan_id}' has no active cycle '{cycle_key}'; activate the plan for that "
            "year first (`kehoach activate`)"
        )
    return found[0], found[1]


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


def consolidate(
    session: Session,
    plan_id: str,
    cycle_key: str,
    consolidation_id: str,
    *,
    now: dt.datetime,
    settings: Any = None,
) -> ConsolidationResult:
    """Consolidate one cycle of one report deliverable (idempotent per cycle + consolidation).

    Writes the aggregates, the four-state status table, a .docx under
    ``reports_dir/<plan>/<cycle>/`` (also kept as a StoredFile), marks the consolidation
    point's obligation submitted, queues the 'consolidated' email and, when the plan
    says ``upward``, records the report as a submission to the parent plan.
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

    existing = session.scalar(
        select(ConsolidatedReport).where(
            ConsolidatedReport.cycle_id == cycle.id,
            ConsolidatedReport.consolidation_id == consolidation.id,
        )
    )
    if existing is not None:
        rows = status_table(session, plan_id, cycle_key, today=today, deliverable_id=fed.id)
        rows = [r for r in rows if r.cycle_key == cycle_key]
        doc = _document(
            ctx,
            consolidation,
            template,
            existing.by_unit_id,
            cycle_key,
            existing.aggregates,
            rows,
            existing.created_at.astimezone(TZ).date(),
            consolidation.routing.to,
            consolidation.routing.via,
        )
        return ConsolidationResult(existing, render_markdown(doc), False, rows)

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
    reports = _latest_reports(session, cycle.id, fed.id)
    aggregates = aggregate(template, reports)
    doc = _document(
        ctx, consolidation, template, by_unit, cycle_key, aggregates, rows, today, to_unit, via_unit
    )
    markdown = render_markdown(doc)

    folder = Path(conf.reports_dir) / plan_id / cycle_key
    path = render_docx(doc, folder / f"{consolidation.id}-{_slug(ctx.unit_name(by_unit))}.docx")
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
        by_unit_id=by_unit,
        aggregates=aggregates,
        status_table=[r.as_dict() for r in rows],
        document_file_id=stored.id,
        document_path=str(path),
        created_at=now,
    )
    session.add(report)
    session.flush()

    if duty is not None and duty.status not in DONE:
        version_no = 1 + len(
            session.scalars(select(Submission.id).where(Submission.obligation_id == duty.id)).all()
        )
        session.add(
            Submission(
                obligation_id=duty.id,
                version=version_no,
                values=aggregates,
                summary=doc.summary,
                file_ids=[stored.id],
                submitted_at=now,
                source="consolidation",
                on_time=now <= end_of_day(duty.due_date),
                review_state="validated",
                intake_done=True,
            )
        )
        duty.status = "submitted"
        duty.submitted_at = now
        duty.on_time = now <= end_of_day(duty.due_date)
        duty.updated_at = now
        session.flush()
        _queue(session, duty, "consolidated", "", {"document_path": str(path)}, now)
    cycle.status = "consolidated"
    cycle.consolidated_at = now
    _audit(
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

    result = ConsolidationResult(report, markdown, True, rows)
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
    return result


def _latest_reports(session: Session, cycle_id: int, deliverable_id: str) -> list[tuple[str, dict]]:
    """(unit id, values) of the newest non-returned version of every done report."""
    found = session.execute(
        select(Obligation.unit_id, Submission)
        .join(Submission, Submission.obligation_id == Obligation.id)
        .where(
            Obligation.cycle_id == cycle_id,
            Obligation.deliverable_id == deliverable_id,
            Obligation.status.in_(("submitted", "accepted")),
            Submission.review_state != "returned",
        )
        .order_by(Obligation.id, Submission.version)
    ).all()
    latest: dict[str, dict] = {}
    for unit_id, submission in found:
        latest[unit_id] = submission.values or {}
    return list(latest.items())


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
            PlanInstance.status == "active",
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
        result.warnings.append(f"the parent obligation refused the report: {exc}")
        return
    intake(session, submission.id, now=now)
    report.upward_submission_id = submission.id
    result.upward_obligation_id = parent_obligation.id
    _audit(
        session,
        "report.handed_upward",
        at=now,
        plan_id=ctx.plan_id,
        obligation_id=parent_obligation.id,
        parent_plan=upward.plan,
        submission_id=submission.id,
        report_id=report.id,
    )
    session.flush()
