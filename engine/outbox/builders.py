"""What each kind of email adds to the shared context: recipients, facts, threading.

``BUILDERS`` maps a :class:`~engine.outbox.kinds.MailKind` to a function that completes
a :class:`Draft` in place; kinds without an entry (assignment, overdue…) need nothing
beyond the shared context of :mod:`engine.outbox.context`.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from engine.approval_deadlines import step_deadlines
from engine.calendar import TZ
from engine.config import Settings
from engine.links import support_link
from engine.outbox.digest_state import report_state
from engine.outbox.kinds import MailKind
from engine.schema import Plan
from engine.states import ReportApproval, ReviewState
from engine.store.models import (
    ConsolidatedReport,
    Obligation,
    PlanVersion,
    RegistryUnit,
    RegistryVersion,
    Submission,
)
from engine.vntext import short_date

Units = Callable[[str | None], dict[str, Any]]


@dataclass
class Draft:
    """One email being prepared: what it is about, its context and recipients so far."""

    session: Session
    conf: Settings
    today: dt.date
    obligation: Obligation
    plan: Plan
    cycle_key: str
    kind: MailKind
    step: str
    extra: dict[str, Any]
    units: Units
    unit: dict[str, Any]
    via: dict[str, Any] | None
    to: dict[str, Any] | None
    context: dict[str, Any]
    to_addrs: list[str]
    cc_addrs: list[str] = field(default_factory=list)
    thread_key: str | None = None  # None: the obligation's thread; "": no thread
    # answers read ahead for many receipts, by (obligation id, version)
    submissions: Mapping[tuple[int, int], Submission] = field(default_factory=dict)

    @property
    def consolidating(self) -> dict[str, Any] | None:
        """Whoever the report goes through (via), else the body it is for."""
        return self.via or self.to


def contact_of(unit: dict[str, Any]) -> dict[str, Any]:
    """Whom to call or write about an email from ``unit``: its focal person (else its
    head) with name, title, phone and email from the registry; the unit's address when
    the person has none."""
    contact = dict(unit.get("focal") or unit.get("head") or {})
    contact["unit_name"] = unit["name"]
    if not contact.get("email") and unit["emails"]:
        contact["email"] = unit["emails"][0]
    return contact


def issuer_sender(
    issuer: dict[str, Any], plan_info: dict[str, Any], fallback: str
) -> dict[str, Any]:
    """The plan's issuing body as a sender; its name as the plan writes it when the
    registry does not hold it."""
    if issuer.get("heir"):  # the issuer ended: its heir speaks (engine.successors)
        return dict(issuer["heir"])
    name = issuer["name"]
    if name == issuer["id"] and not issuer["emails"]:
        name = plan_info.get("issuer") or fallback
    return {"id": issuer["id"], "name": name}


def consolidator_of(obligation: Obligation) -> str:
    """Who a duty's answers go through: a consolidation duty's own unit, else the report's
    channel (via), else the body it is for, else the unit itself."""
    if obligation.kind == "consolidation":
        return obligation.unit_id
    return obligation.via_unit_id or obligation.to_unit_id or obligation.unit_id


def _reminder(d: Draft) -> None:
    if d.step.lstrip("-").isdigit():
        d.context["days_left"] = int(d.step)


def _living(d: Draft, unit_id: str | None) -> dict[str, Any] | None:
    """The unit on the email's day, or the heir that speaks for it once it has ended
    (engine.registry_asof.dated_unit); None when there is neither: an ended body above
    the late unit is never written to."""
    if not unit_id:
        return None
    unit = d.units(unit_id)
    if unit.get("valid", True):
        return unit
    heir = unit.get("heir")
    return d.units(heir["id"]) if heir else None


def _escalation(d: Draft) -> None:
    """To whom the plan's escalation policy names, in its order: the unit's head (a
    person), the body above it, the plan's issuer; never the late unit's own addresses.
    With none of them reachable, the consolidating unit gets it, and the mail says so."""
    own = set(d.unit["emails"])
    head = d.unit.get("head") or {}
    parent = _living(d, d.unit.get("parent"))
    issuer = _living(d, d.plan.document.issuer_unit)
    to: list[str] = []
    addressed: list[dict[str, Any]] = []  # whom "Kính gửi" names, in order
    for target in d.plan.escalation.to:
        if target == "head" and head.get("email") and head["email"] not in own:
            to.append(head["email"])
            addressed.append({"person": head, "unit": d.unit})
        elif target == "parent" and parent and parent["emails"] and parent["id"] != d.unit["id"]:
            to += [a for a in parent["emails"] if a not in own]
            addressed.append({"unit": parent})
        elif target == "issuer" and issuer and issuer["emails"] and issuer["id"] != d.unit["id"]:
            to += [a for a in issuer["emails"] if a not in own]
            addressed.append({"unit": issuer})
    cc = list(d.consolidating["emails"]) if d.consolidating else []
    d.context["head"] = head or None
    d.context["escalated_to"] = addressed
    d.context["nobody_above"] = not to
    if not to:  # nobody above has an address: the consolidating unit follows it up
        to, cc = cc, []
    d.to_addrs = list(dict.fromkeys(a for a in to if a))
    d.cc_addrs = [a for a in dict.fromkeys(cc) if a not in d.to_addrs and a not in own]


def _receipt(d: Draft) -> None:
    version_no = int(d.step) if d.step.isdigit() else None
    submission = d.submissions.get((d.obligation.id, version_no or 0))
    if submission is None:
        query = select(Submission).where(Submission.obligation_id == d.obligation.id)
        if version_no is not None:
            query = query.where(Submission.version == version_no)
        submission = d.session.scalar(query.order_by(Submission.version.desc()).limit(1))
    if submission is not None:
        d.context["submission"] = {
            "version": submission.version,
            "submitted_at": _at(submission.submitted_at),
            "on_time": submission.on_time,
        }


def _at(moment: dt.datetime) -> str:
    """'16:45 ngày 14/9/2023' in Viet Nam time."""
    local = moment.astimezone(TZ)
    return f"{local:%H:%M} ngày {short_date(local.date())}"


def _returned(d: Draft) -> None:
    if "reason" in d.extra:
        return
    submission = d.session.scalar(
        select(Submission)
        .where(Submission.obligation_id == d.obligation.id)
        .order_by(Submission.version.desc())
        .limit(1)
    )
    d.context["reason"] = submission.review_reason if submission else None


def _consolidated(d: Draft) -> None:
    obligation = d.obligation
    if "document_path" not in d.extra:
        report = d.session.scalar(
            select(ConsolidatedReport)
            .where(
                ConsolidatedReport.cycle_id == obligation.cycle_id,
                ConsolidatedReport.by_unit_id == obligation.unit_id,
            )
            .order_by(ConsolidatedReport.id.desc())
            .limit(1)
        )
        d.context["document_path"] = report.document_path if report else None
    # The consolidated report goes to the channel (via), copied to the body it is
    # for and to the consolidating unit itself.
    via, to, unit = d.via, d.to, d.unit
    # From the consolidating unit, which sends it (the duty's holder), and its contact.
    d.context["sender"] = {"id": unit["id"], "name": unit["name"]}
    d.context["contact"] = contact_of(unit)
    target = via or to
    d.to_addrs = list(target["emails"]) if target else list(unit["emails"])
    d.cc_addrs = (list(to["emails"]) if via and to else []) + list(unit["emails"])


def _digest(d: Draft) -> None:
    obligation = d.obligation
    consolidator = consolidator_of(obligation)
    holder = d.units(consolidator)
    if not d.step:
        year, week, _ = d.today.isocalendar()
        d.step = f"{year}-W{week:02d}"
    rows = _digest_rows(d.session, obligation, consolidator, d.units, d.plan.registry)
    d.context.update(
        step=d.step,
        consolidator=holder,
        rows=rows,
        done_count=sum(1 for r in rows if r["done"]),
        # returned ones counted apart (returned_count): the counts add up to the rows
        overdue_count=sum(1 for r in rows if r["overdue"] and not r["done"] and not r["returned"]),
        late_count=sum(1 for r in rows if r["late"]),
        returned_count=sum(1 for r in rows if r["returned"]),
        reports_due=_most_common_due(rows),
    )
    missing = sum(1 for r in rows if not r["done"])
    d.context["missing_count"] = missing
    d.context["report_state"] = report_state(d.session, obligation, d.today, missing)
    d.to_addrs = list(holder["emails"])
    # Digests thread among themselves, not in one unit's thread.
    d.thread_key = f"digest:{d.plan.id}:{d.cycle_key}:{holder['id']}"


def _delivery_failure(d: Draft) -> None:
    unit, extra = d.unit, d.extra
    d.to_addrs = [plan_admin_email(d.session, d.plan.id, d.conf)]
    d.context["failed"] = {
        "kind": d.step or d.obligation.kind,
        "to": ", ".join(unit["emails"]) or "(không có địa chỉ)",
        "unit_name": unit["name"],
        "plan_id": d.plan.id,
        "obligation_id": d.obligation.id,
        "error": extra.pop("error", None),
        **(extra.pop("failed", None) or {}),
    }
    d.thread_key = ""  # an administrator's notice stays out of the unit's thread


def _unit_message(d: Draft) -> None:
    """A unit's own report or comment: to the unit that gathers its answers, copied to
    the sender; the sender's contact is the unit itself."""
    receiver = d.units(str(d.extra.get("message_to") or ""))
    d.to_addrs = list(receiver["emails"]) or list(d.unit["emails"])
    d.cc_addrs = list(d.unit["emails"])
    d.context["receiver"] = receiver
    d.context["sender"] = {"id": d.unit["id"], "name": d.unit["name"]}
    d.context["contact"] = contact_of(d.unit)


def _task_support(d: Draft) -> None:
    """To one supporting unit of a tracked task (engine.outbox.task_mail), with its own
    contribution link (engine.links.support_link), never the lead's."""
    ids = [u for u in str(d.extra.pop("supporting_ids", "")).split(",") if u]
    unit_id = str(d.extra.pop("support_unit", "") or d.step)
    addressed = [unit_id] if unit_id else ids  # an email queued before the links: all
    emails: list[str] = []
    for each in addressed:
        emails += [e for e in d.units(each)["emails"] if e not in emails]
    d.to_addrs = emails
    d.context["link"] = support_link(d.obligation, unit_id, d.conf) if unit_id else None
    d.context["addressed"] = [d.units(each)["name"] for each in addressed]
    d.context["lead"] = d.unit
    d.context["lead_contact"] = contact_of(d.unit)


def _report_draft(d: Draft) -> None:
    """The draft to the consolidating unit (its review page, each step's deadline); the
    step 'r<n>-bao-thu-truong' goes to the unit's head, the unit in copy."""
    report = d.session.scalar(
        select(ConsolidatedReport)
        .where(
            ConsolidatedReport.cycle_id == d.obligation.cycle_id,
            ConsolidatedReport.consolidation_id == d.obligation.deliverable_id,
        )
        .order_by(ConsolidatedReport.revision.desc())
        .limit(1)
    )
    steps = step_deadlines(d.session, d.obligation.due_date, report)
    d.context["review_link"] = f"{d.context['link']}/bao-cao"
    d.context["report"] = {
        "revision": report.revision if report else 1,
        "number": report.number_text if report else None,
        "state": d.extra.get("approval_label") or "Dự thảo, chờ duyệt",
    }
    if report is not None and report.revision > 1:
        # a revision: written because answers came after the one before; that one was
        # either still on its way (now superseded) or already sent (this one follows it)
        before = d.session.scalar(
            select(ConsolidatedReport.approval).where(
                ConsolidatedReport.cycle_id == report.cycle_id,
                ConsolidatedReport.consolidation_id == report.consolidation_id,
                ConsolidatedReport.revision == report.revision - 1,
            )
        )
        d.context["report"]["replaces"] = {
            "revision": report.revision - 1,
            "sent": before == ReportApproval.SENT,
        }
    d.context["steps"] = {
        "review_by": short_date(steps.review_by),
        "sign_by": short_date(steps.sign_by),
        "send_by": short_date(steps.send_by),
    }
    d.context["contact"] = contact_of(d.unit)
    step = d.step.rsplit("-", 1)[-1] if "-" in d.step else "du-thao"
    d.context["stage"] = {"duyet": "nhac-duyet", "gui": "nhac-ky-gui", "truong": "thu-truong"}.get(
        step, "du-thao"
    )
    head = d.unit.get("head") or {}
    if d.context["stage"] == "thu-truong" and head.get("email"):
        d.to_addrs = [head["email"]]
        d.cc_addrs = list(d.unit["emails"])
        d.context["head"] = head
    else:
        d.to_addrs = list(d.unit["emails"])
        d.context["head"] = head or None


def _task_contribution(d: Draft) -> None:
    """A supporting unit's contribution to a tracked task (engine.task_contributions): to
    the lead (the duty's unit), copied to the contributor; its contact is the contributor."""
    contributor = d.units(str(d.extra.pop("contributor_id", "") or ""))
    d.cc_addrs = [e for e in contributor["emails"] if e not in d.to_addrs]
    d.context["contributor"] = {"id": contributor["id"], "name": contributor["name"]}
    d.context["contact"] = contact_of(contributor)


BUILDERS: dict[MailKind, Callable[[Draft], None]] = {
    MailKind.UNIT_MESSAGE: _unit_message,
    MailKind.TASK_CONTRIBUTION: _task_contribution,
    MailKind.TASK_SUPPORT: _task_support,
    MailKind.REMINDER: _reminder,
    MailKind.ESCALATION: _escalation,
    MailKind.RECEIPT: _receipt,
    MailKind.RETURNED: _returned,
    MailKind.CONSOLIDATED: _consolidated,
    MailKind.DIGEST: _digest,
    MailKind.DELIVERY_FAILURE: _delivery_failure,
    MailKind.REPORT_DRAFT: _report_draft,
}


_DIGEST_ROWS = (
    select(
        Obligation.id,
        Obligation.unit_id,
        Obligation.status,
        Obligation.on_time,
        Obligation.overdue,
        Obligation.due_date,
        Obligation.submitted_at,
        Obligation.via_unit_id,
        Obligation.to_unit_id,
    )
    .where(Obligation.cycle_id == bindparam("cycle_id"), Obligation.kind != "consolidation")
    .order_by(Obligation.due_date, Obligation.unit_id, Obligation.id)
)


_UNIT_NAMES = (
    select(RegistryUnit.unit_id, RegistryUnit.name)
    .join(RegistryVersion, RegistryUnit.registry_version_id == RegistryVersion.id)
    .where(
        RegistryVersion.registry_id == bindparam("registry_id"), RegistryVersion.current.is_(True)
    )
)


def _digest_rows(
    session: Session, obligation: Obligation, consolidator: str, units: Units, registry_id: str
) -> list[dict[str, Any]]:
    """Status of every obligation in this cycle that reports through ``consolidator``:
    one query of columns (no objects) for the rows, one for the current registry's unit
    names (the ones ``units`` gives; a unit it lacks is asked of ``units``), one for the
    open ones returned for revision."""
    names = dict(session.execute(_UNIT_NAMES, {"registry_id": registry_id}).all())
    days: dict[dt.date, str] = {}  # most rows share their due date
    rows = [
        row
        for row in session.execute(_DIGEST_ROWS, {"cycle_id": obligation.cycle_id})
        if (row.via_unit_id or row.to_unit_id) == consolidator
    ]
    returned = _returned_ids(session, [r.id for r in rows if r.status.open])
    out = []
    for row in rows:
        unit_id, status, due, submitted_at = row.unit_id, row.status, row.due_date, row.submitted_at
        if due not in days:
            days[due] = short_date(due)
        out.append(
            {
                "unit_name": names[unit_id] if unit_id in names else units(unit_id)["name"],
                "status": status.label,
                "done": status.done,
                "overdue": bool(row.overdue),
                # answered after the deadline; returned for revision and not sent again
                "late": status.answered and row.on_time is False,
                "returned": row.id in returned,
                "due": days[due],
                "due_day_month": f"{due.day}/{due.month}",
                # as every other date in the mail: "08:40 ngày 4/9/2023", not "04/09/2023 08:40"
                "submitted": _at(submitted_at) if submitted_at else None,
            }
        )
    # Worst first: returned, overdue and unanswered, still owed, answered late, on time.
    return sorted(out, key=_digest_rank)


def _digest_rank(row: dict[str, Any]) -> int:
    if row["returned"]:
        return 0
    if row["overdue"] and not row["done"]:
        return 1
    if not row["done"]:
        return 2
    return 3 if row["late"] else 4


def _most_common_due(rows: list[dict[str, Any]]) -> dict[str, str] | None:
    """The units' deadline the digest is about (their reports' usual due date)."""
    dues = Counter(r["due_day_month"] for r in rows)
    return {"day_month": dues.most_common(1)[0][0]} if dues else None


def _returned_ids(session: Session, open_ids: list[int]) -> set[int]:
    """Of these open obligations, those whose newest version was returned for revision."""
    if not open_ids:
        return set()
    newest: dict[int, ReviewState] = {}
    for obligation_id, state in session.execute(
        select(Submission.obligation_id, Submission.review_state)
        .where(Submission.obligation_id.in_(open_ids))
        .order_by(Submission.obligation_id, Submission.version)
    ):
        newest[obligation_id] = state
    return {oid for oid, state in newest.items() if state is ReviewState.RETURNED}


def plan_admin_email(session: Session, plan_id: str | None, conf: Settings) -> str:
    """The plan's ``admin_email`` (current version), else the configured admin address."""
    if plan_id:
        definition = session.scalar(
            select(PlanVersion.definition)
            .where(PlanVersion.plan_id == plan_id)
            .order_by(PlanVersion.current.desc(), PlanVersion.version.desc())
            .limit(1)
        )
        if definition and definition.get("admin_email"):
            return str(definition["admin_email"])
    return conf.admin_email
