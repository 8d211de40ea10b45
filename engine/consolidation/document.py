"""What the consolidated report says: header, signer, subject, the units on time, late and
missing, and what a revision changed since the report it replaces.
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from collections.abc import Mapping
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.applicability import Applicability, UnitFacts
from engine.authority import report_authority, short_code
from engine.calendar import is_request_key, local_day
from engine.consolidation.figures import Figures, build_figures
from engine.context import PlanContext
from engine.cutoff import cutoff_text
from engine.documents import ReportDocument, Signer
from engine.party import number_symbol
from engine.reports import Reports, display_value
from engine.schema import Consolidation, ReportTemplate
from engine.states import (
    OBLIGATION_ANSWERED,
    ObligationStatus,
    ReviewState,
)
from engine.status import State, StatusRow, note
from engine.store.models import (
    ConsolidatedReport,
    Obligation,
    Submission,
)
from engine.vntext import brief_name, cycle_label, short_date


def slug(text: str) -> str:
    ascii_text = unicodedata.normalize("NFKD", text.replace("đ", "d").replace("Đ", "D"))
    ascii_text = ascii_text.encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-") or "x"


def _subject(title: str | None, period: str) -> str:
    """'Báo cáo sơ kết … hằng năm' + 'năm 2027' → 'Sơ kết … năm 2027'."""
    text = (title or "Kết quả thực hiện kế hoạch").strip()
    if text.lower().startswith("báo cáo "):
        text = text[len("báo cáo ") :]
    for suffix in (" hằng năm", " hàng năm", " định kỳ"):
        if text.lower().endswith(suffix):
            text = text[: -len(suffix)]
    return f"{text[:1].upper()}{text[1:]} {period}"


def _plan_ref(ctx: PlanContext, own: bool = False) -> str:
    """'Kế hoạch số 134/KH-UBND ngày 5/12/2022 của … về …' (what the plan gives of it);
    ``own``: the report's issuer issued the plan (no 'của …')."""
    doc_ref = ctx.plan.document
    return " ".join(
        part
        for part in (
            f"Kế hoạch số {doc_ref.number}" if doc_ref.number else "Kế hoạch",
            f"ngày {short_date(doc_ref.date)}" if doc_ref.date else None,
            f"của {doc_ref.issuer}" if doc_ref.issuer and not own else None,
            f"về {doc_ref.summary[:1].lower() + doc_ref.summary[1:]}",
        )
        if part
    )


def trich_yeu(subject: str, period: str, plan_ref: str) -> str:
    """The trích yếu names the plan right after what is reported on, the period last, as
    reports on a plan are titled: 'Sơ kết tình hình, kết quả thực hiện Kế hoạch số …
    ngày … về … năm 2023' (the plan's reference in place of the title's 'Kế hoạch';
    before: '… thực hiện năm 2023 Kế hoạch …', the year inside the phrase)."""
    base = subject[: -len(period)].strip() if subject.endswith(period) else subject
    if base.endswith(" Kế hoạch"):
        return f"{base[: -len(' Kế hoạch')]} {plan_ref} {period}"
    if base.endswith("thực hiện"):
        return f"{base} {plan_ref} {period}"
    return f"{base} {period} thực hiện {plan_ref}"


def owing_units(session: Session, cycle_id: int, deliverable_id: str) -> dict[str, UnitFacts]:
    """Every unit owing ``deliverable_id`` in the cycle, with why (its assignments)."""
    found = session.execute(
        select(Obligation.unit_id, Obligation.transferred_from, Obligation.assignment_ids).where(
            Obligation.cycle_id == cycle_id, Obligation.deliverable_id == deliverable_id
        )
    ).all()
    return {row.unit_id: UnitFacts.of(row) for row in found}


def _symbol(code: str | None, party: bool) -> str:
    """'BC-CAH' after the number ('125/BC-CAH'); a Party body's 'BC/HU' ('12-BC/HU')."""
    code = code.split()[0] if code else None
    if party:
        return number_symbol("BC", code)
    return f"BC-{code}" if code else "BC"


def _merged_out(
    ctx: PlanContext, rows: list[StatusRow], day: dt.date
) -> tuple[list[StatusRow], dict[str, list[str]]]:
    """The rows still owed, and per heir the units whose duty was merged into its own
    (engine.lifecycle.sweep waives those: they owe nothing, and were never 'on time')."""
    owed = {r.unit_id for r in rows if r.obligation_status is not ObligationStatus.WAIVED}
    stands_for: dict[str, list[str]] = {}
    merged: set[int] = set()
    for row in rows:
        if row.obligation_status is not ObligationStatus.WAIVED:
            continue
        heir = _first_successor(ctx, row.unit_id, owed)
        if heir is not None:  # without an heir among the rows, the row stays as it was
            merged.add(row.obligation_id)
            name = ctx.unit_name(row.unit_id, on=day) or row.unit_name
            stands_for.setdefault(heir, []).append(name)
    return [r for r in rows if r.obligation_id not in merged], stands_for


def _first_successor(ctx: PlanContext, unit_id: str, among: set[str]) -> str | None:
    """The nearest unit ``among`` on ``unit_id``'s successor links (whatever their dates:
    the duty went to the successor of the day, which may since have passed it on)."""
    seen, frontier = {unit_id}, [unit_id]
    while frontier:
        unit = ctx.view.unit(frontier.pop(0))
        for successor in unit.successors if unit is not None else ():
            if successor in among:
                return successor
            if successor not in seen:
                seen.add(successor)
                frontier.append(successor)
    return None


def _note(row: StatusRow, stands_for: Mapping[str, list[str]]) -> str:
    """The status note, and the units whose duty this one also answers."""
    merged = stands_for.get(row.unit_id)
    extra = f"gộp nghĩa vụ của {', '.join(merged)}" if merged else ""
    return "; ".join(part for part in (note(row), extra) if part)


def _period(cycle_key: str) -> str:
    """The period as the report names it: "năm 2023", a request's label, "kỳ …"."""
    if cycle_key.isdigit():
        return f"năm {cycle_key}"
    return cycle_label(cycle_key) if is_request_key(cycle_key) else f"kỳ {cycle_key}"


def build_document(
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
    *,
    reports: Reports = (),
    owing: Mapping[str, UnitFacts] | None = None,
) -> tuple[ReportDocument, Figures]:
    """The report and its figures; ``reports``: the counted (unit, values), ``owing``:
    every owing unit's facts (default: the status rows' units, without assignments)."""
    plan = ctx.plan
    rows, stands_for = _merged_out(ctx, rows, day)
    # each unit by the name it had on the report's day (engine.registry_history)
    names = {r.unit_id: ctx.unit_name(r.unit_id, on=day) or r.unit_name for r in rows}
    fed = plan.deliverable(consolidation.consolidates)
    period = _period(cycle_key)
    said = report_authority(plan, ctx.view, consolidation, by_unit, day, to_unit, via_unit)
    issuer_id = said.issuer_id
    issuer_name = said.issuer_name or ctx.unit_name(issuer_id, on=day)
    subject = _subject(fed.title if fed else None, period)
    drafter = f"trên cơ sở tổng hợp của {ctx.unit_name(by_unit)}, " if by_unit != issuer_id else ""
    # The one it is for is named when the plan names a person, or when the report goes out
    # as another body than the plan's issuer (a department reporting to the province).
    named = consolidation.routing.person or issuer_id != plan.document.issuer_unit
    addressee = f"{said.addressee} " if named else ""
    # Counted from the reports received, as the figures' "31/32 đơn vị báo cáo" are.
    answered = sum(1 for r in rows if r.state.done)
    of = f"{answered}/{len(rows)}" if answered < len(rows) else str(len(rows))
    intro = [
        f"Thực hiện {_plan_ref(ctx)}; {drafter}{issuer_name} báo cáo "
        f"{addressee}{subject[:1].lower() + subject[1:]} từ báo cáo của {of} cơ quan, "
        "đơn vị như sau:"
    ]
    cutoff = cutoff_text(plan, consolidation.consolidates, cycle_key)
    if cutoff:  # the data cut-off period the plan set (Nghị định 09/2019, Điều 12)
        intro.append(f"{cutoff}.")
    facts = [(owing or {}).get(r.unit_id) or UnitFacts(r.unit_id, r.transferred_from) for r in rows]
    figures = build_figures(
        template, Applicability(plan, template, ctx.view), facts, reports, aggregates, names
    )
    status = [
        (names[r.unit_id], short_date(r.due_date), r.state.label, _note(r, stands_for))
        for r in rows
    ]
    doc = ReportDocument(
        issuer=issuer_name,
        parent_body=said.parent_body,
        symbol=_symbol(short_code(ctx.view, issuer_id), said.party),
        party=said.party,
        place=plan.document.place,
        day=day,
        title="BÁO CÁO",
        summary=trich_yeu(
            subject, period, _plan_ref(ctx, own=issuer_id == plan.document.issuer_unit)
        ),
        intro=intro,
        results=figures.results,
        status=status,
        on_time=[brief_name(names[r.unit_id]) for r in rows if r.state is State.DONE_ON_TIME],
        late=[brief_name(names[r.unit_id]) for r in rows if r.state is State.DONE_LATE],
        missing=[brief_name(names[r.unit_id]) for r in rows if not r.state.done],
        combined_with=consolidation.combined_with,
        closing=f"Trên đây là báo cáo {subject[:1].lower() + subject[1:]} của {issuer_name}./.",
        signer=Signer(title=said.signer_title, name=said.signer_name, lines=said.signer_lines),
        recipients=said.recipients,
        archive=said.archive,
        appendices=figures.appendices,
    )
    return doc, figures


def newest_report(
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


def newer_submissions(
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


def revision_notes(
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
        f"{short_date(local_day(previous.created_at))}."
    )
    newer = newer_submissions(session, previous, deliverable_id, until)
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
        day = short_date(local_day(submission.submitted_at))
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


STREAM_ROWS = 1000  # rows fetched at a time (a server-side cursor on PostgreSQL)


def latest_reports(
    session: Session, cycle_id: int, deliverable_id: str
) -> tuple[list[tuple[str, dict]], dict[int, int]]:
    """(unit id, values) of the newest non-returned version of every done report, and
    {obligation id: version} of what that is (the report keeps it: see newer_submissions).

    The versions are streamed (``yield_per``), as plain columns: only the newest values
    of each unit are held, never every version as an ORM object (issue 14)."""
    found = session.execute(
        select(Obligation.unit_id, Submission.obligation_id, Submission.version, Submission.values)
        .join(Submission, Submission.obligation_id == Obligation.id)
        .where(
            Obligation.cycle_id == cycle_id,
            Obligation.deliverable_id == deliverable_id,
            Obligation.status.in_(OBLIGATION_ANSWERED),
            Submission.review_state != ReviewState.RETURNED,
        )
        .order_by(Obligation.id, Submission.version)
        .execution_options(yield_per=STREAM_ROWS)
    )
    latest: dict[str, dict] = {}
    included: dict[int, int] = {}
    for unit_id, obligation_id, version, values in found:
        latest[unit_id] = values or {}
        included[obligation_id] = version
    return list(latest.items()), included


def included_reports(session: Session, report: ConsolidatedReport) -> list[tuple[str, dict]]:
    """(unit id, values) of exactly the versions a stored report aggregated (its status
    table keeps them as ``included_version``), in the table's order."""
    wanted = {
        row.get("obligation_id"): (row.get("unit_id"), row.get("included_version"))
        for row in report.status_table or []
        if row.get("included_version")
    }
    if not wanted:
        return []
    found = session.execute(
        select(Submission.obligation_id, Submission.version, Submission.values).where(
            Submission.obligation_id.in_(list(wanted))
        )
    ).all()
    values = {
        obligation_id: stored or {}
        for obligation_id, version, stored in found
        if wanted[obligation_id][1] == version
    }
    return [(unit, values[o]) for o, (unit, _v) in wanted.items() if o in values]
