"""Template contexts from the database: what an email about an obligation says.

:class:`ContextBuilder` caches what obligations share (plan versions, registry units,
dates), so queueing 3,500 assignments costs a handful of queries, not thousands. The
part every email shares is built here; what one kind adds (recipients of an
escalation, the rows of a digest…) is in :mod:`engine.outbox.builders`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, defer

from engine.authority import routing_person
from engine.calendar import TZ
from engine.config import Settings
from engine.content import sections_of
from engine.cutoff import cutoff_facts
from engine.deadline_text import describe, rule_of
from engine.definitions_cache import current_registry_key, plan_for_version
from engine.doctypes import document_type_name
from engine.links import obligation_link
from engine.outbox.builders import BUILDERS, Draft, contact_of, issuer_sender
from engine.outbox.keys import clean_addresses, json_safe, obligation_key
from engine.outbox.kinds import MailKind, mail_kind
from engine.outbox.task_mail import supporting_ids, task_assignments, task_context
from engine.registry_asof import dated_unit
from engine.schema import Plan
from engine.store.models import (
    Cycle,
    Obligation,
    PlanInstance,
    PlanVersion,
    RegistryUnit,
    RegistryVersion,
    Submission,
)
from engine.vntext import cycle_label, date_with_weekday, long_date, short_date, weekday


def _unit_row(session: Session, registry_id: str, unit_id: str | None) -> RegistryUnit | None:
    """The unit as the current registry version knows it (else the newest that has it)."""
    if not unit_id:
        return None
    return session.scalar(
        select(RegistryUnit)
        .join(RegistryVersion, RegistryUnit.registry_version_id == RegistryVersion.id)
        .where(RegistryVersion.registry_id == registry_id, RegistryUnit.unit_id == unit_id)
        .order_by(RegistryVersion.current.desc(), RegistryVersion.version.desc())
        .limit(1)
    )


def _person(data: Any) -> dict[str, Any] | None:
    if not isinstance(data, dict) or not data.get("name"):
        return None
    return {k: data.get(k) for k in ("name", "title", "email", "phone")}


def _unit_info(row: RegistryUnit | None, unit_id: str | None) -> dict[str, Any]:
    if row is None:
        return {
            "id": unit_id,
            "name": unit_id or "",
            "short": None,
            "emails": [],
            "head": None,
            "focal": None,
            "parent": None,
        }
    data = row.data or {}
    return {
        "id": row.unit_id,
        "name": row.name,
        "short": row.short,
        "emails": list(row.emails or []),
        "head": _person(data.get("head")),
        "focal": _person(data.get("focal")),
        # the unit's life (engine.registry_asof.dated_unit: no email outside it)
        "valid_from": row.valid_from.isoformat() if row.valid_from else None,
        "valid_to": row.valid_to.isoformat() if row.valid_to else None,
        "parent": row.parent_id,
    }


def _date_info(day: dt.date | None) -> dict[str, Any] | None:
    if day is None:
        return None
    return {
        "iso": day.isoformat(),
        "short": short_date(day),
        "day_month": f"{day.day}/{day.month}",  # "11/9": subjects, where the year is plain
        "weekday": weekday(day),
        "with_weekday": date_with_weekday(day),
        "long": long_date(day),
    }


def plan_short(plan: Plan) -> str:
    """The plan as subjects and Prefect's UI name it: its ``short_name`` ("Kế hoạch
    PCCC"), else its type and number ("Kế hoạch 134/KH-UBND"), else its type alone."""
    doc = plan.document
    type_name = document_type_name(doc.type.value)
    return doc.short_name or (f"{type_name} {doc.number}" if doc.number else type_name)


def plan_info(plan: Plan) -> dict[str, Any]:
    doc = plan.document
    type_name = document_type_name(doc.type.value)
    ref = f"{type_name} số {doc.number}" if doc.number else type_name
    if doc.date:
        ref += f" {long_date(doc.date)}"
    issuer = doc.issuer or ""
    if issuer:
        ref += f" của {issuer}"
    return {
        "id": plan.id,
        "type": type_name,
        "number": doc.number,
        "date": short_date(doc.date) if doc.date else None,
        "issuer": issuer,
        "summary": doc.summary,
        "ref": ref,
        # Short tag (the calendar file): the number when there is one, else the plan id.
        "tag": doc.number or plan.id,
        # The plan as subjects name it: "Kế hoạch PCCC", else "Kế hoạch 134/KH-UBND".
        "short": plan_short(plan),
        "issuer_unit": doc.issuer_unit,
        # giải pháp, kinh phí, phụ lục: content for templates (engine.content)
        "sections": sections_of(plan),
    }


def _templates_dir(plan: Plan, version: PlanVersion) -> str | None:
    if not plan.templates_dir:
        return None
    folder = Path(plan.templates_dir)
    if not folder.is_absolute() and version.source_path:
        folder = Path(version.source_path).parent / folder
    return str(folder.resolve())


def _what(plan: Plan, obligation: Obligation) -> dict[str, Any]:
    """The deliverable (or the consolidation duty) the obligation is about."""
    deliverable = plan.deliverable(obligation.deliverable_id)
    if deliverable is not None:
        return {
            "id": deliverable.id,
            "kind": deliverable.kind.value,
            "title": deliverable.title,
            "short": deliverable.short_title or deliverable.title,
            "text": deliverable.text,
            "section": deliverable.section,
        }
    consolidation = next(
        (c for c in plan.consolidations if c.id == obligation.deliverable_id), None
    )
    if consolidation is not None:
        consolidated = plan.deliverable(consolidation.consolidates)
        title = "Báo cáo tổng hợp" + (f": {consolidated.title}" if consolidated else "")
        short = "Báo cáo tổng hợp"
        if consolidated is not None and consolidated.short_title:
            what = consolidated.short_title
            short = f"Tổng hợp {what[:1].lower()}{what[1:]}"  # "Tổng hợp báo cáo sơ kết"
        return {
            "id": consolidation.id,
            "kind": "consolidation",
            "title": title,
            "short": short,
            "text": consolidation.text,
            "section": consolidation.section,
        }
    return {
        "id": obligation.deliverable_id,
        "kind": obligation.kind,
        "title": obligation.deliverable_id,
        "short": obligation.deliverable_id,
        "text": None,
        "section": None,
    }


def _assignments(plan: Plan, obligation: Obligation) -> list[dict[str, Any]]:
    task = plan.tracked.task_of(obligation.deliverable_id)
    if task is not None:
        return task_assignments(plan, task)
    deliverable = plan.deliverable(obligation.deliverable_id)
    stated = deliverable.mode if deliverable is not None else None  # wins over the heading's
    out = []
    for assignment_id in obligation.assignment_ids or []:
        assignment = plan.assignment(str(assignment_id))
        if assignment is None:
            continue
        out.append(
            {
                "id": assignment.id,
                "section": assignment.section,
                "heading": assignment.heading,
                "mode": (stated or assignment.mode).value,
                "tasks": [task.text for task in assignment.tasks],
            }
        )
    return out


def _requested(plan: Plan, obligation: Obligation) -> bool:
    """Every assignment behind the duty is a request ("Đề nghị"), none an order."""
    modes = [
        a.mode.value
        for a in (plan.assignment(str(i)) for i in obligation.assignment_ids or [])
        if a is not None
    ]
    return bool(modes) and all(m == "request" for m in modes)


@dataclass
class Prepared:
    """One email ready to insert: its key, recipients and context."""

    kind: str
    key: str
    to_addrs: list[str]
    cc_addrs: list[str]
    context: dict[str, Any]
    thread_key: str | None
    obligation_id: int
    plan_id: str
    unit_id: str


class ContextBuilder:
    """Builds template contexts from the DB, caching what obligations share.

    Plan versions, registry units and dates are read once per builder, so queueing
    3,500 assignments costs a handful of queries, not thousands.
    """

    def __init__(
        self, session: Session, conf: Settings, now: dt.datetime, *, whole_registry: bool = True
    ) -> None:
        """``whole_registry``: read every unit of a registry at its first use (many emails);
        False reads only the units each email names (one email)."""
        self.session = session
        self.whole_registry = whole_registry
        self.conf = conf
        self.now = now
        self.today = now.astimezone(TZ).date()
        self._plans: dict[int, tuple[PlanVersion, Plan, dict[str, Any], str | None]] = {}
        self._cycles: dict[int, Cycle] = {}
        self._units: dict[tuple[str, str | None], dict[str, Any]] = {}
        self._dated: dict[tuple[str, str | None], dict[str, Any]] = {}
        self._registry_keys: dict[str, tuple[int, str] | None] = {}
        self._registries: set[str] = set()
        self._dates: dict[dt.date, dict[str, Any] | None] = {}
        self._submissions: dict[tuple[int, int], Submission] = {}
        self._known_answers: set[int] = set()  # given by the caller: not prefetched

    def date(self, day: dt.date) -> dict[str, Any] | None:
        if day not in self._dates:
            self._dates[day] = _date_info(day)
        return self._dates[day]

    def cycle(self, cycle_id: int) -> Cycle:
        if cycle_id not in self._cycles:
            found = self.session.get(Cycle, cycle_id)
            if found is None:  # an obligation always has its cycle (foreign key)
                raise LookupError(f"cycle {cycle_id} not found")
            self._cycles[cycle_id] = found
        return self._cycles[cycle_id]

    def plan(self, cycle: Cycle) -> tuple[PlanVersion, Plan, dict[str, Any], str | None]:
        # Keyed by the instance id: the session's identity map holds objects weakly,
        # so an unreferenced PlanInstance would be loaded again for every obligation.
        if cycle.instance_id not in self._plans:
            # One query; the stored definition is read only when the parsed plan is
            # not cached yet (engine.definitions_cache).
            version = self.session.scalar(
                select(PlanVersion)
                .join(PlanInstance, PlanInstance.plan_version_id == PlanVersion.id)
                .where(PlanInstance.id == cycle.instance_id)
                .options(defer(PlanVersion.definition))
            )
            if version is None:  # an instance always has its version (foreign key)
                raise LookupError(f"plan instance {cycle.instance_id} not found")
            plan = plan_for_version(self.session, version)
            self._plans[cycle.instance_id] = (
                version,
                plan,
                plan_info(plan),
                _templates_dir(plan, version),
            )
        return self._plans[cycle.instance_id]

    def know_plan(self, cycle: Cycle, version: PlanVersion, plan: Plan) -> None:
        """The cycle and its plan version, already read by the caller (intake's batch):
        not read again for its emails."""
        self._cycles.setdefault(cycle.id, cycle)
        if cycle.instance_id not in self._plans:
            info = (version, plan, plan_info(plan), _templates_dir(plan, version))
            self._plans[cycle.instance_id] = info

    def know_submissions(self, rows: Iterable[Submission]) -> None:
        """Answers already read by the caller (intake's batch): :meth:`prefetch_submissions`
        skips their obligations (a receipt naming another version still reads it)."""
        for row in rows:
            self._submissions[(row.obligation_id, row.version)] = row
            self._known_answers.add(row.obligation_id)

    def _fetch_units(self, registry_id: str, unit_ids: set[str]) -> None:
        """The current registry version's rows of ``unit_ids`` not read yet: one query."""
        wanted = {u for u in unit_ids if (registry_id, u) not in self._units}
        if not wanted or registry_id in self._registries:
            return
        for row in self.session.scalars(
            select(RegistryUnit)
            .join(RegistryVersion, RegistryUnit.registry_version_id == RegistryVersion.id)
            .where(
                RegistryVersion.registry_id == registry_id,
                RegistryVersion.current.is_(True),
                RegistryUnit.unit_id.in_(sorted(wanted)),
            )
        ):
            self._units[(registry_id, row.unit_id)] = _unit_info(row, row.unit_id)

    def prefetch_unit_ids(self, registry_id: str, unit_ids: set[str]) -> None:
        """Read these units of a registry in one query (emails not about an obligation)."""
        self._fetch_units(registry_id, unit_ids)

    def prefetch_units(self, obligations: Sequence[Obligation]) -> None:
        """Read the units a few emails name in one query per registry, not one per email."""
        if self.whole_registry:
            return
        named: dict[str, set[str]] = {}
        for o in obligations:
            version, plan, _info, _templates = self.plan(self.cycle(o.cycle_id))
            ids = (o.unit_id, o.via_unit_id, o.to_unit_id, plan.document.issuer_unit)
            named.setdefault(version.registry_id, set()).update(u for u in ids if u)
        for registry_id, unit_ids in named.items():
            self._fetch_units(registry_id, unit_ids)

    def prefetch_submissions(self, obligations: Sequence[Obligation]) -> None:
        """The answers of many receipts in one query (the receipt names its version)."""
        ids = sorted({o.id for o in obligations if o.id not in self._known_answers})
        for start in range(0, len(ids), 900):
            for row in self.session.scalars(
                select(Submission).where(Submission.obligation_id.in_(ids[start : start + 900]))
            ):
                self._submissions[(row.obligation_id, row.version)] = row

    def unit(self, registry_id: str, unit_id: str | None) -> dict[str, Any]:
        if self.whole_registry and registry_id not in self._registries:
            # The whole current registry in one query: most obligations need it.
            self._registries.add(registry_id)
            for row in self.session.scalars(
                select(RegistryUnit)
                .join(RegistryVersion, RegistryUnit.registry_version_id == RegistryVersion.id)
                .where(
                    RegistryVersion.registry_id == registry_id, RegistryVersion.current.is_(True)
                )
            ):
                self._units[(registry_id, row.unit_id)] = _unit_info(row, row.unit_id)
        key = (registry_id, unit_id)
        if key not in self._units:  # retired in the current version: the newest that has it
            self._units[key] = _unit_info(_unit_row(self.session, registry_id, unit_id), unit_id)
        if key not in self._dated:  # its name and contacts on the day of the email
            if registry_id not in self._registry_keys:
                self._registry_keys[registry_id] = current_registry_key(self.session, registry_id)
            self._dated[key] = dated_unit(
                self.session,
                registry_id,
                self._units[key],
                self.today,
                self._registry_keys[registry_id],
            )
        return self._dated[key]

    def _task(
        self, plan: Plan, registry_id: str, obligation: Obligation, units: Any
    ) -> dict[str, Any] | None:
        """A tracked task's own facts (its supporting units), None for other duties."""
        task = plan.tracked.task_of(obligation.deliverable_id)
        if task is None:
            return None
        supporting = supporting_ids(self.session, plan, registry_id, task)
        return task_context(plan, units, [u for u in supporting if u != obligation.unit_id], task)

    def prepare(
        self,
        obligation: Obligation,
        kind: MailKind | str,
        step: str = "",
        extra: dict[str, Any] | None = None,
    ) -> Prepared:
        """Context, recipients and key for one email about ``obligation``: the part every
        kind shares, then the kind's builder (``BUILDERS``), then ``extra`` on top."""
        kind = mail_kind(kind)
        draft = self._draft(obligation, kind, step, dict(extra or {}))
        build = BUILDERS.get(kind)
        if build is not None:
            build(draft)
        draft.context.update(json_safe(draft.extra))
        lowered = {t.lower() for t in draft.to_addrs}
        return Prepared(
            kind=kind,
            key=obligation_key(obligation.id, kind, draft.step),
            to_addrs=draft.to_addrs,
            cc_addrs=[a for a in clean_addresses(draft.cc_addrs) if a.lower() not in lowered],
            context=draft.context,
            thread_key=draft.thread_key,
            obligation_id=obligation.id,
            plan_id=draft.plan.id,
            unit_id=obligation.unit_id,
        )

    def _sender(
        self,
        obligation: Obligation,
        unit: dict[str, Any],
        consolidating: dict[str, Any] | None,
        issuer_id: str,
        plan_info: dict[str, Any],
        units: Callable[[str | None], dict[str, Any]],
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """Who the email comes from (the unit, and how the From line names it): the unit
        that collects the answer; for a duty of the consolidating unit itself, the plan's
        issuer, which gave it that duty."""
        own = consolidating is None or consolidating["id"] == unit["id"]  # e.g. CAH's own plan
        if obligation.kind == "consolidation" or consolidating is None or own:
            sender = units(issuer_id)
            return sender, issuer_sender(sender, plan_info, self.conf.mail_from_name)
        return consolidating, {"id": consolidating["id"], "name": consolidating["name"]}

    def _draft(
        self, obligation: Obligation, kind: MailKind, step: str, extra: dict[str, Any]
    ) -> Draft:
        cycle = self.cycle(obligation.cycle_id)
        version, plan, plan_info, templates_dir = self.plan(cycle)

        def units(unit_id: str | None) -> dict[str, Any]:
            return self.unit(version.registry_id, unit_id)

        issuer_id = plan.document.issuer_unit
        if not self.whole_registry:  # the units this email names, in one query
            named = {obligation.unit_id, obligation.via_unit_id, obligation.to_unit_id, issuer_id}
            self._fetch_units(version.registry_id, {u for u in named if u})

        unit = units(obligation.unit_id)
        via = units(obligation.via_unit_id) if obligation.via_unit_id else None
        to = units(obligation.to_unit_id) if obligation.to_unit_id else None
        # The consolidating unit: whoever the report goes through (via), else to.
        sender, named_as = self._sender(obligation, unit, via or to, issuer_id, plan_info, units)
        today = self.today
        moved = obligation.nominal_date != obligation.due_date
        context: dict[str, Any] = {
            "kind": kind,
            "step": step,
            "obligation_id": obligation.id,
            "plan": plan_info,
            "unit": unit,
            "deliverable": _what(plan, obligation),
            "assignments": _assignments(plan, obligation),
            "task": self._task(plan, version.registry_id, obligation, units),
            # a body the plan only asks ("Đề nghị …": MTTQ, mass organisations) is asked
            "requested": _requested(plan, obligation),
            "due": self.date(obligation.due_date),
            "nominal": self.date(obligation.nominal_date),
            "moved": moved,
            "due_reason": obligation.due_reason if moved else None,
            # the plan's words, the computed date and why (engine/deadline_text.py)
            "deadline": describe(
                rule_of(plan, obligation.deliverable_id),
                obligation.due_reason,
                plan_info["ref"],
            ),
            "cycle": {"key": cycle.key, "label": cycle_label(cycle.key)},
            # the data cut-off: in full in the assignment, one short line elsewhere
            "cutoff": cutoff_facts(plan, obligation.deliverable_id, cycle.key),
            "link": obligation_link(obligation, self.conf),
            "contact": contact_of(sender),
            "sender": named_as,
            "via": via,
            "report_to": to,
            # the office holder the plan names ("báo cáo Chủ tịch UBND tỉnh"), if any
            "report_person": routing_person(plan, obligation.deliverable_id),
            "days_left": (obligation.due_date - today).days,
            "days_overdue": max(0, (today - obligation.due_date).days),
            "today": self.date(today),
            "templates_dir": templates_dir,
        }
        return Draft(
            session=self.session,
            conf=self.conf,
            today=today,
            obligation=obligation,
            plan=plan,
            cycle_key=cycle.key,
            kind=kind,
            step=step,
            extra=extra,
            units=units,
            unit=unit,
            via=via,
            to=to,
            context=context,
            to_addrs=list(unit["emails"]),
            submissions=self._submissions,
        )
