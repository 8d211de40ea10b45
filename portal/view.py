"""What a unit sees: the page model of one obligation, read from the store.

Pure reads: nothing here adds, changes or flushes a row.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from engine.applicability import unit_template
from engine.config import TIMEZONE
from engine.content import sections_of
from engine.deadline_text import describe, rule_of
from engine.doctypes import document_type_name
from engine.outbox.task_mail import supporting_ids, task_assignments
from engine.schema import (
    Deliverable,
    DeliverableKind,
    FieldType,
    Mode,
    Plan,
    ReportTemplate,
    TemplateField,
)
from engine.states import ObligationStatus, ReviewState
from engine.status import State, classify
from engine.store.models import (
    RegistryUnit,
    RegistryVersion,
    StoredFile,
    Submission,
)
from engine.task_contributions import contributions_to
from engine.vntext import date_with_weekday, short_date
from portal.access import ObligationRow, OpenedLink
from portal.clerk import contact_of, contact_unit, period_text, receipt_number

TZ = ZoneInfo(TIMEZONE)

# Colours of the Government's four states (engine.status.State), as provincial
# systems show them; a deadline three days away or less turns amber.
STATE_COLOURS = {
    State.DONE_ON_TIME: "green",
    State.DONE_LATE: "orange",
    State.OPEN_WITHIN: "blue",
    State.OPEN_OVERDUE: "red",
}


def state_badge(state: State, days_left: int | None) -> dict[str, str]:
    colour = STATE_COLOURS[state]
    if state is State.OPEN_WITHIN and days_left is not None and days_left <= 3:
        colour = "amber"
    return {"key": state.value, "label": state.label, "colour": colour}


# A sub-plan is answered with the signed document and a short summary.
SUB_PLAN_TEMPLATE = ReportTemplate(
    id="ke-hoach-cu-the",
    title="Kế hoạch cụ thể của đơn vị",
    fields=[
        TemplateField(
            id="van-ban",
            label="Văn bản kế hoạch (bản đã ký, đóng dấu)",
            type=FieldType.file,
            help="Tệp PDF bản chụp văn bản đã ký, hoặc tệp DOCX/ODT.",
            unit=None,
        ),
        TemplateField(
            id="tom-tat",
            label="Tóm tắt nội dung kế hoạch",
            type=FieldType.text,
            help="Vài dòng: số, ngày ban hành và các nội dung chính.",
            unit=None,
        ),
    ],
)
SUMMARY_FIELD = "tom-tat"
SUMMARY_MAX = 4000


def state_of(obligation: ObligationRow, today: dt.date) -> tuple[State, int | None, int | None]:
    """(state, days late, days left) as ``kehoach status`` shows it."""
    return classify(
        obligation.status, obligation.on_time, obligation.due_date, obligation.submitted_at, today
    )


def local_time(moment: dt.datetime | None) -> str:
    if moment is None:
        return ""
    return moment.astimezone(TZ).strftime("%H:%M, %d/%m/%Y")


# Statements run on every page, built once in plain SQL expressions (building one, or
# loading ORM objects, costs more than running it); they return read-only rows.
_units = RegistryUnit.__table__
_registry_versions = RegistryVersion.__table__
_files = StoredFile.__table__
_submissions = Submission.__table__
_UNITS = (
    # name, emails and data: the names on the page and whom to call (portal.clerk)
    select(_units.c.unit_id, _units.c.name, _units.c.emails, _units.c.data)
    .join(_registry_versions, _units.c.registry_version_id == _registry_versions.c.id)
    .where(
        _registry_versions.c.registry_id == bindparam("registry_id"),
        _units.c.unit_id.in_(bindparam("unit_ids", expanding=True)),
    )
    .order_by(_registry_versions.c.current, _registry_versions.c.version)
)
_FILES = select(_files).where(_files.c.id.in_(bindparam("ids", expanding=True)))
_SUBMISSIONS = (
    select(_submissions)
    .where(_submissions.c.obligation_id == bindparam("obligation_id"))
    .order_by(_submissions.c.version.desc())
)


def registry_rows(session: Session, registry_id: str, unit_ids: set[str]) -> dict[str, Any]:
    """The rows (unit_id, name, emails, data) of ``unit_ids`` (one query), as the current
    (else the newest) registry version has them."""
    found: dict[str, Any] = {}
    rows = session.execute(_UNITS, {"registry_id": registry_id, "unit_ids": sorted(unit_ids)})
    for row in rows:  # the current (else newest) version comes last and wins
        found[row.unit_id] = row
    return found


def unit_names(session: Session, registry_id: str, unit_ids: set[str]) -> dict[str, str]:
    """Names of ``unit_ids`` (one query), as the current registry version has them."""
    return {u: row.name for u, row in registry_rows(session, registry_id, unit_ids).items()}


def plan_summary(plan: Plan) -> dict[str, Any]:
    doc = plan.document
    kind = document_type_name(doc.type)
    return {
        "id": plan.id,
        "type": kind,
        "number": doc.number,
        "date": short_date(doc.date) if doc.date else None,
        "issuer": doc.issuer,
        "summary": doc.summary,
        "heading": f"{kind} số {doc.number}" if doc.number else kind,
        "sections": sections_of(plan),  # giải pháp, kinh phí, phụ lục (engine.content)
    }


# A report whose template asks for no file still takes the signed document, optionally.
ATTACHMENT_FIELD = TemplateField(
    id="tep-dinh-kem",
    label="Văn bản báo cáo có chữ ký, đóng dấu (nếu có)",
    type=FieldType.file,
    required=False,
    unit=None,
)


@dataclass(frozen=True)
class Answer:
    """What the form asks for: the fields shown, and the template values are checked against."""

    template: ReportTemplate
    fields: tuple[TemplateField, ...]
    sub_plan: bool

    @property
    def file_fields(self) -> list[TemplateField]:
        return [f for f in self.fields if f.type is FieldType.file]


def answer_for(
    plan: Plan,
    obligation: ObligationRow,
    open_session: Callable[[], AbstractContextManager[Session]],
) -> Answer | None:
    """The form for ``obligation``, or None when the portal takes no answer for it: only
    the fields that apply to the unit (engine.applicability; ``open_session`` reads the
    registry when the template names groups)."""
    deliverable: Deliverable | None = plan.deliverable(obligation.deliverable_id)
    if deliverable is None:
        return None  # a consolidation duty: produced by the consolidate flow
    if deliverable.kind is DeliverableKind.sub_plan:
        return Answer(SUB_PLAN_TEMPLATE, tuple(SUB_PLAN_TEMPLATE.fields), True)
    template = plan.template(deliverable.template or "")
    if template is None:
        return None
    template = unit_template(plan, template, obligation, obligation.plan_registry_id, open_session)
    fields = tuple(template.fields)
    if not any(f.type is FieldType.file for f in fields):
        fields += (ATTACHMENT_FIELD,)
    return Answer(template, fields, False)


def can_answer(
    session: Session,
    obligation: ObligationRow,
    now: dt.datetime,
    history: Sequence[Any] | None = None,
) -> tuple[bool, str | None]:
    """Whether a (new) version may be sent now, and why not: engine.lifecycle's rules.

    ``history``: the versions sent (anything with ``version`` and ``review_state``);
    when not given, only the versions that decide are read.
    """
    from engine.lifecycle import deciding_versions, submission_refusal

    if history is None:
        history = deciding_versions(session, obligation.id)
    refusal = submission_refusal(obligation, history, now)
    return refusal is None, refusal


def files_of(session: Session, submissions: Sequence[Any]) -> dict[int, Any]:
    ids = {int(i) for s in submissions for i in (s.file_ids or [])}
    if not ids:
        return {}
    rows = session.execute(_FILES, {"ids": sorted(ids)})
    return {row.id: row for row in rows}


def human_size(size: int) -> str:
    if size >= 1048576:
        return f"{size / 1048576:.1f} MB".replace(".", ",")
    return f"{max(1, round(size / 1024))} KB"


def display(field: TemplateField, value: Any) -> str:
    """A stored value as the page shows it; never raises, whatever the row holds (values
    stored before engine.values' checks, or edited in the database, show as invalid)."""
    from engine.reports import display_stored

    return display_stored(field, value)


def draft_of(obligation: ObligationRow) -> dict[str, Any] | None:
    """The answer the unit saved without sending it (portal.drafts), read with the link
    (portal.access): the values the form shows again and when it was saved, or None."""
    if obligation.draft_saved_at is None:
        return None
    values = obligation.draft_values if isinstance(obligation.draft_values, dict) else {}
    shown = {str(k): v for k, v in values.items() if isinstance(v, str)}
    return {"values": shown, "saved_at": local_time(obligation.draft_saved_at)}


def submissions_of(session: Session, obligation_id: int) -> Sequence[Any]:
    """Every version sent for an obligation, newest first (rows of the submissions table)."""
    return session.execute(_SUBMISSIONS, {"obligation_id": obligation_id}).all()


def submission_rows(
    session: Session,
    link: OpenedLink,
    answer: Answer | None,
    submissions: Sequence[Any] | None = None,
) -> list[dict[str, Any]]:
    """The versions as the page lists them, newest first (``submissions``: as
    :func:`submissions_of` returns them; read if not given)."""
    if submissions is None:
        submissions = submissions_of(session, link.obligation.id)
    submissions = sorted(submissions, key=lambda s: s.version, reverse=True)
    stored = files_of(session, submissions)
    rows = []
    for sub in submissions:
        fields = []
        given = sub.values if isinstance(sub.values, dict) else {}
        if answer is not None:
            for field in answer.fields:
                if field.type is FieldType.file or field.id not in given:
                    continue
                fields.append({"label": field.label, "value": display(field, given[field.id])})
        rows.append(
            {
                "version": sub.version,
                "receipt_no": receipt_number(link.cycle.key, link.obligation.id, sub.version),
                "submitted_at": local_time(sub.submitted_at),
                "on_time": sub.on_time,
                "review_state": ReviewState(sub.review_state).label,
                "returned": sub.review_state == ReviewState.RETURNED,
                "review_reason": sub.review_reason,
                "summary": sub.summary,
                "fields": fields,
                "files": [
                    {"id": f.id, "name": f.original_name, "size": human_size(f.size)}
                    for i in (sub.file_ids or [])
                    if (f := stored.get(int(i))) is not None
                ],
            }
        )
    return rows


def _what(plan: Plan, obligation: ObligationRow) -> dict[str, Any]:
    """Title, text and kind of what the obligation asks (a deliverable or a consolidation)."""
    deliverable = plan.deliverable(obligation.deliverable_id)
    if deliverable is not None:
        kind = "Kế hoạch cụ thể" if deliverable.kind is DeliverableKind.sub_plan else "Báo cáo"
        return {"title": deliverable.title, "text": deliverable.text, "kind": kind}
    consolidation = next(
        (c for c in plan.consolidations if c.id == obligation.deliverable_id), None
    )
    if consolidation is not None:
        fed = plan.deliverable(consolidation.consolidates)
        title = "Báo cáo tổng hợp" + (f": {fed.title}" if fed else "")
        return {"title": title, "text": consolidation.text, "kind": "Báo cáo tổng hợp"}
    return {"title": obligation.deliverable_id, "text": None, "kind": "Báo cáo"}


def _tasks_of(session: Session, link: OpenedLink) -> tuple[list[dict[str, Any]], Any]:
    """The tasks the page lists (a tracked task: that task alone, with its supporting
    units and its time as written)."""
    obligation, plan = link.obligation, link.plan
    task = plan.tracked.task_of(obligation.deliverable_id)
    if task is not None:
        groups = task_assignments(plan, task)
        ids = supporting_ids(session, plan, link.registry_id, task)
        names = unit_names(session, link.registry_id, set(ids))
        tracked = {
            "phrase": task.phrase,
            "supporting": [names.get(u, u) for u in ids if u != obligation.unit_id],
        }
    else:
        tracked = None
        groups = []
        for assignment_id in obligation.assignment_ids or []:
            assignment = plan.assignment(str(assignment_id))
            if assignment is not None:
                groups.append(
                    {
                        "section": assignment.section,
                        "heading": assignment.heading,
                        "mode": assignment.mode.value,
                        "tasks": [t.text for t in assignment.tasks],
                    }
                )
    tasks = [
        {
            "section": g["section"],
            "heading": g["heading"],
            "request": g["mode"] == Mode.request.value,
            "lines": g["tasks"],
        }
        for g in groups
    ]
    return tasks, tracked


def contribution_rows(session: Session, link: OpenedLink) -> list[dict[str, Any]]:
    """What the task's supporting units contributed (engine.task_contributions): who,
    when, text and file, oldest first; none for other duties."""
    found = contributions_to(session, link.obligation.id)
    if not found:
        return []
    names = unit_names(session, link.registry_id, {m.unit_id for m in found})
    files = {
        f.id: f
        for f in session.scalars(
            select(StoredFile).where(StoredFile.id.in_({m.file_id for m in found if m.file_id}))
        )
    }
    return [
        {
            "who": names.get(m.unit_id, m.unit_id),
            "at": local_time(m.created_at),
            "text": m.text,
            "file": {"id": f.id, "name": f.original_name, "size": human_size(f.size)}
            if (f := files.get(m.file_id or 0)) is not None
            else None,
        }
        for m in found
    ]


def obligation_page(session: Session, link: OpenedLink) -> dict[str, Any]:
    """Everything the obligation page shows (the form fields are added by the caller)."""
    obligation, plan, now = link.obligation, link.plan, link.opened_at
    tasks, tracked = _tasks_of(session, link)
    today = now.astimezone(TZ).date()
    state, days_late, days_left = state_of(obligation, today)
    moved = obligation.nominal_date != obligation.due_date
    answer = answer_for(plan, obligation, lambda: nullcontext(session))
    submissions = submissions_of(session, obligation.id)
    allowed, why_not = can_answer(session, obligation, now, submissions)
    wanted = {obligation.unit_id, obligation.to_unit_id, obligation.via_unit_id} - {None}
    # one read for the names and for whom to call (the contact unit is among them)
    units = registry_rows(session, link.registry_id, wanted)
    names = {u: row.name for u, row in units.items()}
    contact = contact_unit(obligation)
    return {
        "plan": plan_summary(plan),
        "unit_name": names.get(obligation.unit_id, obligation.unit_id),
        "to_name": names.get(obligation.to_unit_id or "", obligation.to_unit_id or ""),
        "via_name": names.get(obligation.via_unit_id, obligation.via_unit_id)
        if obligation.via_unit_id
        else None,
        "deliverable": _what(plan, obligation),
        "cycle_key": link.cycle.key,
        "tasks": tasks,
        "tracked": tracked,
        "contributions": contribution_rows(session, link) if tracked else [],
        "due": {
            "with_weekday": date_with_weekday(obligation.due_date),
            "moved": moved,
            "nominal": date_with_weekday(obligation.nominal_date) if moved else None,
            "reason": obligation.due_reason if moved else None,
            # the plan's words, the computed date and why (engine/deadline_text.py)
            "sentence": describe(
                rule_of(plan, obligation.deliverable_id),
                obligation.due_reason,
            )["sentence"],
            "days_left": days_left,
            "days_late": days_late,
        },
        "status": ObligationStatus(obligation.status).label,
        "state": state_badge(state, days_left),
        "submissions": submission_rows(session, link, answer, submissions),
        "answer": answer,
        "can_answer": allowed and answer is not None,
        "draft": draft_of(obligation) if allowed and answer is not None else None,
        "why_not": why_not
        if answer is not None
        else (
            "Báo cáo tổng hợp được hệ thống lập từ báo cáo của các đơn vị khi đến hạn tổng "
            "hợp; trang này chỉ để theo dõi."
        ),
        "valid_until": local_time(link.valid_until),
        # the clerk's facts (portal.clerk): the period, whom to call
        "period": period_text(link.cycle.period_start, link.cycle.period_end),
        "contact": contact_of(units.get(contact)) if contact else None,
        # a consolidation duty's holder reviews its report (portal.review_report)
        "review_link": f"{link.page}/bao-cao" if obligation.kind == "consolidation" else None,
    }
