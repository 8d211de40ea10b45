"""The transactional outbox: every email is a row written with the change that causes it.

A flow that marks an obligation overdue calls :func:`enqueue_for_obligation` in the
same session, so either both the state change and its email are committed or neither
is. The dispatcher (``notifications.dispatch``) delivers the rows later; the row's
idempotency key makes re-running a flow harmless and its Message-ID is derived from
that key, so a message that is ever sent twice carries the same Message-ID.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast
from zoneinfo import ZoneInfo

from sqlalchemy import Table, select
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, defer

from engine.config import TIMEZONE, Settings
from engine.config import settings as default_settings
from engine.definitions_cache import plan_for_version
from engine.links import obligation_link
from engine.schema import Plan
from engine.store.models import (
    ConsolidatedReport,
    Cycle,
    Obligation,
    OutboxMessage,
    PlanInstance,
    PlanVersion,
    RegistryUnit,
    RegistryVersion,
    Submission,
    utcnow,
)
from engine.vntext import cycle_label, date_with_weekday, long_date, short_date, weekday

KINDS = (
    "assignment",
    "reminder",
    "overdue",
    "escalation",
    "receipt",
    "returned",
    "consolidated",
    "digest",
    "cycle_closed",
    "report_after_consolidation",
    "delivery_failure",
)

TZ = ZoneInfo(TIMEZONE)

DOCUMENT_TYPE_NAMES = {
    "KH": "Kế hoạch",
    "BC": "Báo cáo",
    "QĐ": "Quyết định",
    "CT": "Chỉ thị",
    "KL": "Kết luận",
    "NQ": "Nghị quyết",
    "NĐ": "Nghị định",
    "TB": "Thông báo",
    "HD": "Hướng dẫn",
    "CTr": "Chương trình",
    "TTr": "Tờ trình",
    "QyĐ": "Quy định",
    "ĐA": "Đề án",
    "PA": "Phương án",
    "CV": "Công văn",
    "Luật": "Luật",
}

STATUS_NAMES = {
    "pending": "Chưa gửi",
    "submitted": "Đã gửi",
    "accepted": "Đã chấp nhận",
    "returned": "Trả lại để hoàn thiện",
    "waived": "Được miễn",
}


# ---------------------------------------------------------------- identifiers


def mail_domain(conf: Settings) -> str:
    """The domain part of ``mail_from``: Message-IDs live in our own namespace."""
    domain = conf.mail_from.rpartition("@")[2].strip().strip(">")
    return domain or "kehoach.local"


def message_id_for(idempotency_key: str, conf: Settings | None = None) -> str:
    """A stable Message-ID for a key: the same key always gives the same header."""
    conf = conf or default_settings()
    digest = hashlib.sha256(idempotency_key.encode("utf-8")).hexdigest()[:32]
    return f"<{digest}@{mail_domain(conf)}>"


def obligation_key(obligation_id: int, kind: str, step: str = "") -> str:
    return f"obl:{obligation_id}:{kind}:{step}"


def _thread_id(thread_key: str | None, obligation_id: int | None, conf: Settings) -> str | None:
    """Message-ID that starts the thread: ``thread_key``'s, by default the obligation's
    assignment; ``""`` means no thread."""
    if thread_key is None and obligation_id is not None:
        thread_key = obligation_key(obligation_id, "assignment")
    return message_id_for(thread_key, conf) if thread_key else None


def _clean_addresses(addresses: Any) -> list[str]:
    """Strip, drop empties and duplicates (case-insensitive), keep order."""
    seen: set[str] = set()
    out: list[str] = []
    for raw in addresses or ():
        address = str(raw).strip()
        if address and address.lower() not in seen:
            seen.add(address.lower())
            out.append(address)
    return out


def _json_safe(value: Any) -> Any:
    """Context is stored as JSON: dates and paths become strings."""
    return json.loads(json.dumps(value, default=str, ensure_ascii=False))


# ---------------------------------------------------------------- enqueue


def enqueue(
    session: Session,
    *,
    kind: str,
    idempotency_key: str,
    to_addrs: Any,
    context: dict[str, Any],
    obligation_id: int | None = None,
    plan_id: str | None = None,
    unit_id: str | None = None,
    thread_key: str | None = None,
    cc_addrs: Any = (),
    now: dt.datetime | None = None,
    settings: Settings | None = None,
) -> OutboxMessage:
    """Add an outbox row in the caller's transaction, once per ``idempotency_key``.

    If a row with the key exists (committed earlier, or by a flow racing this one),
    that row is returned and nothing is inserted (INSERT ... ON CONFLICT DO NOTHING
    on SQLite and PostgreSQL; a SAVEPOINT elsewhere). The Message-ID is derived from the
    key; ``thread_id`` is the Message-ID of ``thread_key``'s message, by default the
    obligation's assignment, so every mail about one obligation threads together
    (``thread_key=""``: no thread, e.g. a notice to the administrator).
    """
    if kind not in KINDS:
        raise ValueError(f"unknown email kind {kind!r}; expected one of {', '.join(KINDS)}")
    conf = settings or default_settings()
    now = now or utcnow()
    existing = session.scalar(
        select(OutboxMessage).where(OutboxMessage.idempotency_key == idempotency_key)
    )
    if existing is not None:
        return existing

    message_id = message_id_for(idempotency_key, conf)
    values = dict(
        idempotency_key=idempotency_key,
        message_id=message_id,
        thread_id=_thread_id(thread_key, obligation_id, conf),
        kind=kind,
        obligation_id=obligation_id,
        plan_id=plan_id,
        unit_id=unit_id,
        to_addrs=_clean_addresses(to_addrs),
        cc_addrs=_clean_addresses(cc_addrs),
        context=_json_safe(context),
        status="pending",
        attempts=0,
        next_attempt_at=now,
        created_at=now,
    )
    dialect = session.get_bind().dialect.name
    if dialect in ("sqlite", "postgresql"):
        # INSERT ... ON CONFLICT DO NOTHING: when a concurrent flow inserted the same
        # key, PostgreSQL waits for it and skips the row, SQLite serialises writers;
        # either way no error and the caller's transaction stays intact. (Not a
        # SAVEPOINT: with pysqlite's default transaction handling a SAVEPOINT that
        # opens the transaction commits on RELEASE, escaping the caller's rollback.)
        insert = sqlite_insert if dialect == "sqlite" else postgresql_insert
        session.execute(
            insert(OutboxMessage)
            .values(**values)
            .on_conflict_do_nothing(index_elements=["idempotency_key"])
        )
        return _by_key(session, idempotency_key)
    # Other databases: a SAVEPOINT keeps the caller's transaction usable when the
    # unique constraint fires; only the savepoint rolls back.
    row = OutboxMessage(**values)
    try:
        with session.begin_nested():
            session.add(row)
    except IntegrityError:
        return _by_key(session, idempotency_key)
    return row


def _by_key(session: Session, idempotency_key: str) -> OutboxMessage:
    row = session.scalar(
        select(OutboxMessage).where(OutboxMessage.idempotency_key == idempotency_key)
    )
    if row is None:  # the conflict was on something else (e.g. a foreign key)
        raise LookupError(f"outbox row {idempotency_key!r} was neither inserted nor found")
    return row


# ---------------------------------------------------------------- context from the DB


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
        }
    data = row.data or {}
    return {
        "id": row.unit_id,
        "name": row.name,
        "short": row.short,
        "emails": list(row.emails or []),
        "head": _person(data.get("head")),
        "focal": _person(data.get("focal")),
    }


def _date_info(day: dt.date | None) -> dict[str, Any] | None:
    if day is None:
        return None
    return {
        "iso": day.isoformat(),
        "short": short_date(day),
        "weekday": weekday(day),
        "with_weekday": date_with_weekday(day),
        "long": long_date(day),
    }


def _plan_info(plan: Plan) -> dict[str, Any]:
    doc = plan.document
    type_name = DOCUMENT_TYPE_NAMES.get(doc.type.value, doc.type.value)
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
        # Short tag for subjects: the number when there is one, else the plan id.
        "tag": doc.number or plan.id,
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
            "text": deliverable.text,
            "section": deliverable.section,
        }
    consolidation = next(
        (c for c in plan.consolidations if c.id == obligation.deliverable_id), None
    )
    if consolidation is not None:
        consolidated = plan.deliverable(consolidation.consolidates)
        title = "Báo cáo tổng hợp" + (f": {consolidated.title}" if consolidated else "")
        return {
            "id": consolidation.id,
            "kind": "consolidation",
            "title": title,
            "text": consolidation.text,
            "section": consolidation.section,
        }
    return {
        "id": obligation.deliverable_id,
        "kind": obligation.kind,
        "title": obligation.deliverable_id,
        "text": None,
        "section": None,
    }


def _assignments(plan: Plan, obligation: Obligation) -> list[dict[str, Any]]:
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
                "mode": assignment.mode.value,
                "tasks": [task.text for task in assignment.tasks],
            }
        )
    return out


def _digest_rows(
    session: Session, obligation: Obligation, consolidator: str, units: Any
) -> list[dict[str, Any]]:
    """Status of every obligation in this cycle that reports through ``consolidator``."""
    rows = session.scalars(
        select(Obligation)
        .where(Obligation.cycle_id == obligation.cycle_id, Obligation.kind != "consolidation")
        .order_by(Obligation.due_date, Obligation.unit_id)
    ).all()
    out = []
    for row in rows:
        through = row.via_unit_id or row.to_unit_id
        if through != consolidator:
            continue
        out.append(
            {
                "unit_name": units(row.unit_id)["name"],
                "status": STATUS_NAMES.get(row.status, row.status),
                "done": row.status in ("submitted", "accepted", "waived"),
                "overdue": bool(row.overdue),
                "due": short_date(row.due_date),
                "submitted": (
                    row.submitted_at.astimezone(TZ).strftime("%d/%m/%Y %H:%M")
                    if row.submitted_at
                    else None
                ),
            }
        )
    return out


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
        self._registries: set[str] = set()
        self._dates: dict[dt.date, dict[str, Any] | None] = {}

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
                _plan_info(plan),
                _templates_dir(plan, version),
            )
        return self._plans[cycle.instance_id]

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
        return self._units[key]

    def prepare(
        self, obligation: Obligation, kind: str, step: str = "", extra: dict[str, Any] | None = None
    ) -> Prepared:
        """Context, recipients and key for one email about ``obligation``."""
        session, conf, today = self.session, self.conf, self.today
        extra = dict(extra or {})
        cycle = self.cycle(obligation.cycle_id)
        version, plan, plan_info, templates_dir = self.plan(cycle)

        def units(unit_id: str | None) -> dict[str, Any]:
            return self.unit(version.registry_id, unit_id)

        if not self.whole_registry:  # the units this email names, in one query
            named = {obligation.unit_id, obligation.via_unit_id, obligation.to_unit_id}
            self._fetch_units(version.registry_id, {u for u in named if u})

        unit = units(obligation.unit_id)
        via = units(obligation.via_unit_id) if obligation.via_unit_id else None
        to = units(obligation.to_unit_id) if obligation.to_unit_id else None
        # The consolidating unit: whoever the report goes through (via), else to.
        consolidating = via or to
        contact_unit = unit if obligation.kind == "consolidation" else (consolidating or unit)
        contact = dict(contact_unit.get("focal") or contact_unit.get("head") or {})
        contact["unit_name"] = contact_unit["name"]
        if not contact.get("email") and contact_unit["emails"]:
            contact["email"] = contact_unit["emails"][0]

        moved = obligation.nominal_date != obligation.due_date
        context: dict[str, Any] = {
            "kind": kind,
            "step": step,
            "obligation_id": obligation.id,
            "plan": plan_info,
            "unit": unit,
            "deliverable": _what(plan, obligation),
            "assignments": _assignments(plan, obligation),
            "due": self.date(obligation.due_date),
            "nominal": self.date(obligation.nominal_date),
            "moved": moved,
            "due_reason": obligation.due_reason if moved else None,
            "cycle": {"key": cycle.key, "label": cycle_label(cycle.key)},
            "link": obligation_link(obligation, conf),
            "contact": contact,
            "via": via,
            "report_to": to,
            "days_left": (obligation.due_date - today).days,
            "days_overdue": max(0, (today - obligation.due_date).days),
            "today": self.date(today),
            "templates_dir": templates_dir,
        }

        to_addrs: list[str] = list(unit["emails"])
        cc_addrs: list[str] = []
        if kind == "reminder" and step.lstrip("-").isdigit():
            context["days_left"] = int(step)
        elif kind == "escalation":
            head = unit.get("head") or {}
            to_addrs = [head["email"]] if head.get("email") else list(unit["emails"])
            cc_addrs = list(consolidating["emails"]) if consolidating else []
            context["head"] = head or None
        elif kind == "receipt":
            version_no = int(step) if step.isdigit() else None
            query = select(Submission).where(Submission.obligation_id == obligation.id)
            if version_no is not None:
                query = query.where(Submission.version == version_no)
            submission = session.scalar(query.order_by(Submission.version.desc()).limit(1))
            if submission is not None:
                context["submission"] = {
                    "version": submission.version,
                    "submitted_at": submission.submitted_at.astimezone(TZ).strftime(
                        "%H:%M %d/%m/%Y"
                    ),
                    "on_time": submission.on_time,
                }
        elif kind == "returned" and "reason" not in extra:
            submission = session.scalar(
                select(Submission)
                .where(Submission.obligation_id == obligation.id)
                .order_by(Submission.version.desc())
                .limit(1)
            )
            context["reason"] = submission.review_reason if submission else None
        elif kind == "consolidated":
            if "document_path" not in extra:
                report = session.scalar(
                    select(ConsolidatedReport)
                    .where(
                        ConsolidatedReport.cycle_id == obligation.cycle_id,
                        ConsolidatedReport.by_unit_id == obligation.unit_id,
                    )
                    .order_by(ConsolidatedReport.id.desc())
                    .limit(1)
                )
                context["document_path"] = report.document_path if report else None
            # The consolidated report goes to the channel (via), copied to the body it is
            # for and to the consolidating unit itself.
            target = via or to
            to_addrs = list(target["emails"]) if target else list(unit["emails"])
            cc_addrs = (list(to["emails"]) if via and to else []) + list(unit["emails"])
        elif kind == "digest":
            consolidator = (
                obligation.unit_id
                if obligation.kind == "consolidation"
                else (obligation.via_unit_id or obligation.to_unit_id or obligation.unit_id)
            )
            holder = units(consolidator)
            if not step:
                year, week, _ = today.isocalendar()
                step = f"{year}-W{week:02d}"
            rows = _digest_rows(session, obligation, consolidator, units)
            context.update(
                step=step,
                consolidator=holder,
                rows=rows,
                done_count=sum(1 for r in rows if r["done"]),
                overdue_count=sum(1 for r in rows if r["overdue"] and not r["done"]),
            )
            to_addrs = list(holder["emails"])
        elif kind == "delivery_failure":
            to_addrs = [plan_admin_email(session, plan.id, conf)]
            context["failed"] = {
                "kind": step or obligation.kind,
                "to": ", ".join(unit["emails"]) or "(không có địa chỉ)",
                "unit_name": unit["name"],
                "plan_id": plan.id,
                "obligation_id": obligation.id,
                "error": extra.pop("error", None),
                **(extra.pop("failed", None) or {}),
            }

        # Admin notices stay out of the unit's thread; digests thread among themselves.
        thread_key = None
        if kind == "delivery_failure":
            thread_key = ""
        elif kind == "digest":
            thread_key = f"digest:{plan.id}:{cycle.key}:{context['consolidator']['id']}"
        context.update(_json_safe(extra))
        lowered = {t.lower() for t in to_addrs}
        return Prepared(
            kind=kind,
            key=obligation_key(obligation.id, kind, step),
            to_addrs=to_addrs,
            cc_addrs=[a for a in _clean_addresses(cc_addrs) if a.lower() not in lowered],
            context=context,
            thread_key=thread_key,
            obligation_id=obligation.id,
            plan_id=plan.id,
            unit_id=obligation.unit_id,
        )


def enqueue_for_obligation(
    session: Session,
    obligation: Obligation,
    kind: str,
    step: str = "",
    extra: dict[str, Any] | None = None,
    now: dt.datetime | None = None,
    settings: Settings | None = None,
) -> OutboxMessage:
    """Build the whole template context for ``obligation`` from the DB and enqueue it.

    Key: ``obl:{obligation.id}:{kind}:{step}``. ``step`` tells repeated kinds apart:
    days before the deadline for a reminder, the submission version for a receipt,
    the ISO week for a digest. ``extra`` is merged into the context (e.g.
    ``{"reason": ...}`` for ``returned``, ``{"document_path": ...}`` for
    ``consolidated``).
    """
    conf = settings or default_settings()
    now = now or utcnow()
    builder = ContextBuilder(session, conf, now, whole_registry=False)
    item = builder.prepare(obligation, kind, step, extra)
    return _enqueue_item(session, item, now, conf)


def _enqueue_item(session: Session, item: Any, now: dt.datetime, conf: Settings) -> OutboxMessage:
    """:func:`enqueue` of a prepared item (``ContextBuilder.prepare``)."""
    return enqueue(
        session,
        kind=item.kind,
        idempotency_key=item.key,
        to_addrs=item.to_addrs,
        cc_addrs=item.cc_addrs,
        context=item.context,
        obligation_id=item.obligation_id,
        plan_id=item.plan_id,
        unit_id=item.unit_id,
        thread_key=item.thread_key,
        now=now,
        settings=conf,
    )


def enqueue_many_for_obligations(
    session: Session,
    obligations: Iterable[Obligation],
    kind: str,
    step: str = "",
    extra: dict[str, Any] | None = None,
    now: dt.datetime | None = None,
    settings: Settings | None = None,
) -> list[str]:
    """:func:`enqueue_for_obligation` for many obligations at once; same keys, same rows.

    Contexts share one :class:`ContextBuilder` and rows go in with multi-row
    ``INSERT ... ON CONFLICT DO NOTHING``. Returns the keys of the rows that were
    new (keys already queued are skipped, as in the single form).
    """
    if kind not in KINDS:
        raise ValueError(f"unknown email kind {kind!r}; expected one of {', '.join(KINDS)}")
    conf = settings or default_settings()
    now = now or utcnow()
    builder = ContextBuilder(session, conf, now)
    items = [builder.prepare(o, kind, step, extra) for o in obligations]
    dialect = session.get_bind().dialect.name
    if dialect not in ("sqlite", "postgresql"):
        new = []
        for item in items:
            existed = session.scalar(
                select(OutboxMessage.id).where(OutboxMessage.idempotency_key == item.key)
            )
            _enqueue_item(session, item, now, conf)
            if existed is None:
                new.append(item.key)
        return new
    insert = sqlite_insert if dialect == "sqlite" else postgresql_insert
    table = cast(Table, OutboxMessage.__table__)
    if not items:
        return []
    # executemany with RETURNING: SQLAlchemy batches it ("insertmanyvalues") with
    # one cached compiled statement, unlike a huge multi-VALUES literal.
    return list(
        session.scalars(
            insert(table)
            .on_conflict_do_nothing(index_elements=["idempotency_key"])
            .returning(table.c.idempotency_key),
            [_row_values(item, now, conf) for item in items],
        )
    )


def _row_values(item: Prepared, now: dt.datetime, conf: Settings) -> dict[str, Any]:
    return {
        "idempotency_key": item.key,
        "message_id": message_id_for(item.key, conf),
        "thread_id": _thread_id(item.thread_key, item.obligation_id, conf),
        "kind": item.kind,
        "obligation_id": item.obligation_id,
        "plan_id": item.plan_id,
        "unit_id": item.unit_id,
        "to_addrs": _clean_addresses(item.to_addrs),
        "cc_addrs": _clean_addresses(item.cc_addrs),
        "context": _json_safe(item.context),
        "status": "pending",
        "attempts": 0,
        "next_attempt_at": now,
        "created_at": now,
    }


# ---------------------------------------------------------------- reading


def list_outbox(
    session: Session, status: str | None = None, kind: str | None = None, limit: int = 50
) -> list[OutboxMessage]:
    """Newest rows first, optionally filtered (for ``kehoach outbox`` and artifacts)."""
    query = select(OutboxMessage)
    if status:
        query = query.where(OutboxMessage.status == status)
    if kind:
        query = query.where(OutboxMessage.kind == kind)
    return list(session.scalars(query.order_by(OutboxMessage.id.desc()).limit(limit)))


def describe_row(row: OutboxMessage) -> dict[str, Any]:
    """One row as plain values: what an operator needs to act on it."""
    context = row.context or {}
    unit = context.get("unit") or {}
    return {
        "id": row.id,
        "status": row.status,
        "kind": row.kind,
        "unit": row.unit_id or "",
        "unit_name": unit.get("name") or "",
        "to": ", ".join([*row.to_addrs, *row.cc_addrs]),
        "attempts": row.attempts,
        "smtp_code": row.smtp_code,
        "last_error": row.last_error or "",
        "next_attempt_at": row.next_attempt_at.isoformat() if row.next_attempt_at else "",
        "sent_at": row.sent_at.isoformat() if row.sent_at else "",
        "message_id": row.message_id,
        "plan_id": row.plan_id or "",
        "obligation_id": row.obligation_id,
    }
