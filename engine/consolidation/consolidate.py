"""Consolidation: a cycle's reports become one report, which goes upward.

The consolidation point's report aggregates every unit's answer per the template,
lists units on time, late and missing, is written as a .docx (Nghị định 30/2020
layout) and a markdown twin for the Prefect artifact, and, when the plan says
``upward``, becomes this plan's submission to the parent plan's obligation, so the
provincial cycle consolidates districts exactly the same way.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from engine import audit_anchor
from engine.applicability import Applicability
from engine.audit import write_audit
from engine.audit_verify import tampered_versions
from engine.calendar import TZ, end_of_day, local_day
from engine.consolidation.document import (
    build_document,
    included_reports,
    latest_reports,
    newer_submissions,
    newest_report,
    owing_units,
    revision_notes,
    slug,
)
from engine.consolidation.draft import drafted, finish_document
from engine.consolidation.result import ConsolidationError, ConsolidationResult
from engine.consolidation.stored import usable_reports
from engine.context import PlanContext, plan_context, version_of_cycle
from engine.documents import (
    DOCX_TYPE,
    HEAD_PREFIX,
    ReportDocument,
    render_docx,
    render_markdown,
)
from engine.documents import store_file as _store_file
from engine.errors import NotFound
from engine.lifecycle.intake import take_in_waiting
from engine.reports import Coverage, aggregate
from engine.schema import Consolidation, Deliverable, ReportTemplate
from engine.states import (
    CycleStatus,
    ObligationStatus,
    ReviewState,
)
from engine.status import StatusRow, status_table
from engine.store.models import (
    ConsolidatedReport,
    Cycle,
    Obligation,
    PlanVersion,
    Submission,
)
from engine.transitions import move_cycle, move_obligation

log = logging.getLogger(__name__)


def cycle_and_version(session: Session, plan_id: str, cycle_key: str) -> tuple[Cycle, PlanVersion]:
    """The plan's active cycle and the version it runs under (NotFound, with the cycles
    there are, when there is none)."""
    from engine.closing import find_cycle

    cycle = find_cycle(session, plan_id, cycle_key)
    return cycle, version_of_cycle(session, cycle.id)


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

    cycle, version = cycle_and_version(session, plan_id, cycle_key)
    ctx = plan_context(session, version)
    consolidation, fed, template = _what(ctx, plan_id, consolidation_id)
    today = now.astimezone(TZ).date()
    _lock_and_take_in(session, cycle, fed.id, now)

    previous = newest_report(session, cycle.id, consolidation.id)
    if previous is not None and not (revise and newer_submissions(session, previous, fed.id)):
        return _existing(session, ctx, consolidation, template, fed.id, previous, today)
    run = _Run(
        session=session,
        ctx=ctx,
        cycle=cycle,
        consolidation=consolidation,
        fed_id=fed.id,
        template=template,
        duty=duty_of(session, cycle.id, consolidation.id),
        previous=previous,
        now=now,
        today=today,
        conf=settings or default_settings(),
    )
    written = _write(run)
    _mark_done(run, written)
    result = _result(written, previous)
    _audit_tampered(run, written)
    # A draft: it goes upward (the email, the parent plan) only once the consolidating
    # unit has approved, numbered, signed and sent it (engine.approval).
    drafted(session, run.duty, written.report, previous, plan_id=ctx.plan_id, now=now)
    if previous is not None:
        _audit_revision(run, written, result)
    return result


def _result(written: _Written, previous: ConsolidatedReport | None) -> ConsolidationResult:
    return ConsolidationResult(
        written.report,
        written.markdown,
        True,
        written.rows,
        warnings=list(written.doc.warnings),
        replaces_id=previous.id if previous is not None else None,
        changes=list(written.doc.changes),
        submission_ids=written.submission_ids,
        coverage=written.coverage,
    )


def _lock_and_take_in(session: Session, cycle: Cycle, fed_id: str, now: dt.datetime) -> None:
    # One consolidation of a cycle at a time (PostgreSQL; SQLite has one writer): two
    # follow-ups at once (intake and sweep) would both write revision n + 1's document.
    # The cycle first, then its obligations, as closing does: no lock-order deadlock.
    session.execute(select(Cycle.id).where(Cycle.id == cycle.id).with_for_update()).all()
    # Answers recorded but not taken in yet (intake runs after the portal, in batches)
    # and sent by this moment are taken in first, so the report, dated ``now``, holds
    # them; one sent later is left to intake and makes the next revision.
    take_in_waiting(session, now=now, cycle_id=cycle.id, deliverable_id=fed_id, sent_by=now)


@dataclass
class _Run:
    """One consolidation being written: what it is about and what it builds on."""

    session: Session
    ctx: PlanContext
    cycle: Cycle
    consolidation: Consolidation
    fed_id: str
    template: ReportTemplate
    duty: Obligation | None  # the consolidation point's own obligation
    previous: ConsolidatedReport | None  # the revision this one replaces
    now: dt.datetime
    today: dt.date
    conf: Any

    @property
    def by_unit(self) -> str:
        return self.duty.unit_id if self.duty else self.consolidation.by

    @property
    def revision(self) -> int:
        return 1 if self.previous is None else self.previous.revision + 1


@dataclass
class _Written:
    report: ConsolidatedReport
    doc: ReportDocument
    rows: list[StatusRow]
    markdown: str
    path: Path
    stored_id: int
    submission_ids: list[int]
    tampered: dict[int, str]  # obligation id → why its version was left out
    coverage: dict[str, Coverage]


def _what(
    ctx: PlanContext, plan_id: str, consolidation_id: str
) -> tuple[Consolidation, Deliverable, ReportTemplate]:
    """The consolidation, the report it consolidates and that report's template."""
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
    return consolidation, fed, template


def duty_of(session: Session, cycle_id: int, consolidation_id: str) -> Obligation | None:
    return session.scalar(
        select(Obligation).where(
            Obligation.cycle_id == cycle_id,
            Obligation.deliverable_id == consolidation_id,
            Obligation.kind == "consolidation",
        )
    )


def _write(run: _Run) -> _Written:
    """The aggregates, the status table, the document (.docx and markdown) and the row."""
    session, ctx, duty, cycle = run.session, run.ctx, run.duty, run.cycle
    consolidation = run.consolidation
    to_unit = duty.to_unit_id if duty else consolidation.routing.to
    via_unit = duty.via_unit_id if duty else consolidation.routing.via
    rows = [
        r
        for r in status_table(
            session, ctx.plan_id, cycle.key, today=run.today, deliverable_id=run.fed_id
        )
        if r.cycle_key == cycle.key
    ]
    answers, included = latest_reports(session, cycle.id, run.fed_id)
    # The versions used are checked against the audit log (one query): one changed in
    # the database after it was recorded, or recorded by no row, is left out and named.
    tampered = tampered_versions(session, included)
    forged_units = {r.unit_id for r in rows if r.obligation_id in tampered}
    answers = [(u, v) for u, v in answers if u not in forged_units]
    # A value no page or document can hold is left out and said so (engine.values).
    reports, problems = usable_reports(ctx, run.template, answers)
    owing = owing_units(session, cycle.id, run.fed_id)
    # Each figure over the units its field applies to (a commune's fires, not an office's).
    applicability = Applicability(ctx.plan, run.template, ctx.view)
    applies = {f.id: set(applicability.units_of(f, owing.values())) for f in run.template.fields}
    aggregates = aggregate(run.template, reports, applies)
    doc, figures = build_document(
        ctx,
        consolidation,
        run.template,
        run.by_unit,
        cycle.key,
        aggregates,
        rows,
        run.today,
        to_unit,
        via_unit,
        reports=reports,
        owing=owing,
    )
    doc.warnings = problems
    submission_ids: list[int] = []
    if run.previous is not None:
        doc.replaces, doc.changes, submission_ids = revision_notes(
            session, ctx, run.template, run.previous, run.fed_id, aggregates, None
        )
    _mark_tampered(doc, rows, tampered, included)
    # the chain's head as the report is written: a copy the recipients keep
    doc.audit_head = audit_anchor.head_line(audit_anchor.heads(session, ctx.plan_id))
    finish_document(session, doc, consolidation, cycle.key, {}, draft=True)
    markdown = render_markdown(doc)
    report, path, stored_id = _save(run, doc, rows, included, aggregates)
    return _Written(
        report, doc, rows, markdown, path, stored_id, submission_ids, tampered, figures.coverage
    )


def _save(
    run: _Run,
    doc: ReportDocument,
    rows: list[StatusRow],
    included: dict[int, int],
    aggregates: dict[str, Any],
) -> tuple[ConsolidatedReport, Path, int]:
    """The .docx on disk and in the file store, the report's row, and the audit anchor
    sent once the transaction commits; the row, the path and the stored file's id."""
    session, ctx, cycle, consolidation = run.session, run.ctx, run.cycle, run.consolidation
    folder = Path(run.conf.reports_dir) / ctx.plan_id / cycle.key
    suffix = f"-lan-{run.revision}" if run.revision > 1 else ""
    name = f"{consolidation.id}-{slug(ctx.unit_name(run.by_unit))}{suffix}.docx"
    path = render_docx(doc, folder / name)
    stored = _store_file(
        session,
        path.read_bytes(),
        name=path.name,
        content_type=DOCX_TYPE,
        now=run.now,
        files_dir=Path(run.conf.files_dir),
    )
    report = ConsolidatedReport(
        cycle_id=cycle.id,
        consolidation_id=consolidation.id,
        revision=run.revision,
        by_unit_id=run.by_unit,
        aggregates=aggregates,
        status_table=[
            {**r.as_dict(), "included_version": included.get(r.obligation_id)} for r in rows
        ],
        document_file_id=stored.id,
        document_path=str(path),
        created_at=run.now,
    )
    session.add(report)
    session.flush()
    audit_anchor.after_commit(
        session,
        run.conf,
        reason=f"tổng hợp {ctx.plan_id} {cycle.key} lần {run.revision}",
        now=run.now,
    )
    return report, path, stored.id


TAMPERED_NOTE = "số liệu không được tổng hợp: báo cáo không khớp nhật ký kiểm tra"


def _mark_tampered(
    doc: ReportDocument, rows: list[StatusRow], tampered: dict[int, str], included: dict[int, int]
) -> None:
    """Which units' figures were left out, and why: in the status table's note and with the
    operator's warnings (the artifact, the result, the log); never the figures."""
    for index, row in enumerate(rows):
        why = tampered.get(row.obligation_id)
        if why is None:
            continue
        name, due, state, note = doc.status[index]
        doc.status[index] = (name, due, state, "; ".join(p for p in (note, TAMPERED_NOTE) if p))
        doc.warnings.append(
            f"{row.unit_name}: báo cáo phiên bản {included.get(row.obligation_id)} bị từ chối "
            f"vì {why}; số liệu của đơn vị này không được tổng hợp"
        )


def _audit_tampered(run: _Run, written: _Written) -> None:
    """One row per version left out because it does not match the audit log."""
    for index, row in enumerate(written.rows):
        why = written.tampered.get(row.obligation_id)
        if why is None:
            continue
        log.warning("%s: obligation %s left out: %s", run.ctx.plan_id, row.obligation_id, why)
        write_audit(
            run.session,
            "consolidation.tampered_refused",
            at=run.now,
            plan_id=run.ctx.plan_id,
            obligation_id=row.obligation_id,
            cycle=run.cycle.key,
            consolidation=run.consolidation.id,
            report_id=written.report.id,
            version=written.report.status_table[index].get("included_version"),
            reason=why,
        )


def _mark_done(run: _Run, written: _Written) -> None:
    """The consolidation point's duty answered, its email queued, the cycle consolidated."""
    session, duty, previous, now, cycle = run.session, run.duty, run.previous, run.now, run.cycle
    doc, report = written.doc, written.report
    if duty is not None and (previous is not None or not duty.status.done):
        _duty_submission(run, duty, report.aggregates, doc.summary, written.stored_id)
    # A closed cycle stays closed (closed with --force, consolidated by hand afterwards):
    # reopening it restores 'consolidated' from consolidated_at.
    if cycle.status is CycleStatus.OPEN:  # recorded in the 'cycle.consolidated' row below
        move_cycle(
            session, cycle, CycleStatus.CONSOLIDATED, at=now, action=None, plan_id=run.ctx.plan_id
        )
    if previous is None:
        cycle.consolidated_at = now
        write_audit(
            session,
            "cycle.consolidated",
            at=now,
            plan_id=run.ctx.plan_id,
            obligation_id=duty.id if duty else None,
            cycle=cycle.key,
            consolidation=run.consolidation.id,
            records=report,
            report_id=report.id,
            on_time=len(doc.on_time),
            late=len(doc.late),
            missing=len(doc.missing),
            values_left_out=list(doc.warnings),
        )


def _audit_revision(run: _Run, written: _Written, result: ConsolidationResult) -> None:
    doc, report, previous = written.doc, written.report, run.previous
    assert previous is not None
    write_audit(
        run.session,
        "cycle.reconsolidated",
        at=run.now,
        plan_id=run.ctx.plan_id,
        obligation_id=run.duty.id if run.duty else None,
        cycle=run.cycle.key,
        consolidation=run.consolidation.id,
        records=report,
        report_id=report.id,
        revision=run.revision,
        replaces_report_id=previous.id,
        submission_ids=written.submission_ids,
        changes=list(doc.changes),
        upward_submission_id=report.upward_submission_id,
        upward_refused=result.upward_refused,
        on_time=len(doc.on_time),
        late=len(doc.late),
        missing=len(doc.missing),
        values_left_out=list(doc.warnings),
    )
    run.session.flush()


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
    doc, rows, figures, previous_ids = stored_document(
        session, ctx, consolidation, template, deliverable_id, report, today
    )
    result = ConsolidationResult(report, "", False, rows, coverage=figures.coverage)
    if previous_ids is not None:
        result.replaces_id, result.submission_ids = previous_ids
        result.changes = list(doc.changes)
    result.markdown = render_markdown(doc)
    return result


def stored_document(
    session: Session,
    ctx: PlanContext,
    consolidation: Consolidation,
    template: ReportTemplate,
    deliverable_id: str,
    report: ConsolidatedReport,
    today: dt.date,
) -> tuple[ReportDocument, list[StatusRow], Any, tuple[int, list[int]] | None]:
    """A stored revision's document as it was written (its figures, its units' versions),
    the status rows as of ``today``, its figures and, for a revision, (the id of the one
    it replaces, the submissions that caused it)."""
    cycle = session.get(Cycle, report.cycle_id)
    assert cycle is not None  # a report always has its cycle (foreign key)
    cycle_key = cycle.key
    rows = status_table(session, ctx.plan_id, cycle_key, today=today, deliverable_id=deliverable_id)
    rows = [r for r in rows if r.cycle_key == cycle_key]
    reports, _problems = usable_reports(ctx, template, included_reports(session, report))
    doc, figures = build_document(
        ctx,
        consolidation,
        template,
        report.by_unit_id,
        cycle_key,
        report.aggregates,
        rows,
        local_day(report.created_at),
        consolidation.routing.to,
        consolidation.routing.via,
        reports=reports,
        owing=owing_units(session, report.cycle_id, deliverable_id),
    )
    if report.number_text and report.approved_at:
        doc.number, doc.day = report.number_text, local_day(report.approved_at)
    narrative = report.narrative or {}
    finish_document(session, doc, consolidation, cycle_key, narrative, draft=not report.number_text)
    previous = (
        newest_report(session, report.cycle_id, report.consolidation_id, before=report.revision)
        if (report.revision or 1) > 1
        else None
    )
    doc.audit_head = _head_written(report.document_path)
    if previous is None:
        return doc, rows, figures, None
    doc.replaces, doc.changes, submission_ids = revision_notes(
        session, ctx, template, previous, deliverable_id, report.aggregates, report.created_at
    )
    return doc, rows, figures, (previous.id, submission_ids)


def _head_written(path: str | None) -> str | None:
    """The audit chain head a written report carries (in its document's properties)."""
    if not path or not Path(path).is_file():
        return None
    from docx import Document

    return Document(path).core_properties.comments.removeprefix(HEAD_PREFIX) or None


def _duty_submission(
    run: _Run, duty: Obligation, aggregates: dict[str, Any], summary: str, file_id: int
) -> Submission:
    """The report as a new version of the consolidation point's own obligation.

    A revision after the duty's due date is a supplementary report: the duty stays
    done as it was (on time when the first report was), only the version is added.
    """
    session, now = run.session, run.now
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
    write_audit(
        session,
        "submission.recorded",
        at=now,
        plan_id=run.ctx.plan_id,
        obligation_id=duty.id,
        records=submission,
        submission_id=submission.id,
        version=version_no,
        source="consolidation",
        on_time=on_time,
    )
    return submission
