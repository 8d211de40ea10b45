"""SQLAlchemy 2.0 typed models: the system of record.

Spec tables (registry, plan versions) hold what administrators loaded; state tables
(instances, cycles, obligations, submissions, outbox, audit) hold what is happening.
Prefect never holds the only copy of anything written here.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship, validates
from sqlalchemy.types import TypeDecorator

from engine.states import (
    CycleStatus,
    EnumText,
    InstanceStatus,
    ObligationStatus,
    OutboxStatus,
    ReportApproval,
    ReviewState,
)

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


SWEEP_AT_ONCE = dt.date(1970, 1, 1)  # Obligation.next_sweep_on of a row not swept yet


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class UTCDateTime(TypeDecorator[dt.datetime]):
    """Timezone-aware datetimes stored as UTC on every backend (SQLite drops tzinfo)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTCDateTime column")
        return value.astimezone(dt.UTC)

    def process_result_value(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=dt.UTC)
        return value.astimezone(dt.UTC)


# Every state column holds a member of its engine.states enum, also for a value assigned
# as a plain string (validates) or read back from the database (EnumText).


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {dt.datetime: UTCDateTime, dict[str, Any]: JSON, list[Any]: JSON}


# ---------------------------------------------------------------- spec


class RegistryVersion(Base):
    """One loaded version of an organisation registry, by content hash."""

    __tablename__ = "registry_versions"
    __table_args__ = (UniqueConstraint("registry_id", "content_hash"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    registry_id: Mapped[str] = mapped_column(String(80), index=True)
    version: Mapped[int]
    content_hash: Mapped[str] = mapped_column(String(64))
    source_path: Mapped[str | None] = mapped_column(Text)
    source_text: Mapped[str] = mapped_column(Text)
    definition: Mapped[dict[str, Any]]
    loaded_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    current: Mapped[bool] = mapped_column(Boolean, default=True)

    units: Mapped[list[RegistryUnit]] = relationship(
        back_populates="registry_version", cascade="all, delete-orphan"
    )


class RegistryUnit(Base):
    """A unit row of one registry version (denormalised for queries by date and parent)."""

    __tablename__ = "registry_units"
    __table_args__ = (UniqueConstraint("registry_version_id", "unit_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    registry_version_id: Mapped[int] = mapped_column(
        ForeignKey("registry_versions.id", ondelete="CASCADE"), index=True
    )
    unit_id: Mapped[str] = mapped_column(String(80), index=True)
    name: Mapped[str] = mapped_column(Text)
    short: Mapped[str | None] = mapped_column(String(40))
    kind: Mapped[str] = mapped_column(String(80))
    level: Mapped[str] = mapped_column(String(20))
    parent_id: Mapped[str | None] = mapped_column(String(80), index=True)
    emails: Mapped[list[Any]]
    valid_from: Mapped[dt.date] = mapped_column(Date)
    valid_to: Mapped[dt.date | None] = mapped_column(Date)
    successors: Mapped[list[Any]]
    data: Mapped[dict[str, Any]]

    registry_version: Mapped[RegistryVersion] = relationship(back_populates="units")


class PlanVersion(Base):
    """One loaded version of a plan definition; same content = same row."""

    __tablename__ = "plan_versions"
    __table_args__ = (
        UniqueConstraint("plan_id", "content_hash"),
        UniqueConstraint("plan_id", "version"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    plan_id: Mapped[str] = mapped_column(String(80), index=True)
    version: Mapped[int]
    content_hash: Mapped[str] = mapped_column(String(64))
    registry_id: Mapped[str] = mapped_column(String(80))
    source_path: Mapped[str | None] = mapped_column(Text)
    source_text: Mapped[str] = mapped_column(Text)
    definition: Mapped[dict[str, Any]]
    loaded_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    current: Mapped[bool] = mapped_column(Boolean, default=True)
    retired_at: Mapped[dt.datetime | None]


class CalendarVersion(Base):
    __tablename__ = "calendar_versions"
    __table_args__ = (UniqueConstraint("calendar_id", "content_hash"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    calendar_id: Mapped[str] = mapped_column(String(80), index=True)
    version: Mapped[int]
    content_hash: Mapped[str] = mapped_column(String(64))
    definition: Mapped[dict[str, Any]]
    loaded_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    current: Mapped[bool] = mapped_column(Boolean, default=True)


# ---------------------------------------------------------------- state


class PlanInstance(Base):
    """A plan being run: pinned to the plan version it was activated with."""

    __tablename__ = "plan_instances"
    __table_args__ = (UniqueConstraint("plan_id", "plan_version_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    plan_id: Mapped[str] = mapped_column(String(80), index=True)
    plan_version_id: Mapped[int] = mapped_column(ForeignKey("plan_versions.id"))
    activated_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    activated_on: Mapped[dt.date] = mapped_column(Date)
    status: Mapped[InstanceStatus] = mapped_column(
        EnumText(InstanceStatus), default=InstanceStatus.ACTIVE
    )

    plan_version: Mapped[PlanVersion] = relationship()
    cycles: Mapped[list[Cycle]] = relationship(back_populates="instance")

    @validates("status")
    def _status(self, _key: str, value: str) -> InstanceStatus:
        return InstanceStatus(value)


class Cycle(Base):
    """One reporting period of an instance (a year, quarter, month, or 'once')."""

    __tablename__ = "cycles"
    __table_args__ = (UniqueConstraint("instance_id", "key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    instance_id: Mapped[int] = mapped_column(ForeignKey("plan_instances.id"), index=True)
    key: Mapped[str] = mapped_column(String(20))  # "2027", "2027-Q1", "2027-03", "once"
    period_start: Mapped[dt.date | None] = mapped_column(Date)
    period_end: Mapped[dt.date | None] = mapped_column(Date)
    status: Mapped[CycleStatus] = mapped_column(EnumText(CycleStatus), default=CycleStatus.OPEN)
    consolidated_at: Mapped[dt.datetime | None]
    closes_on: Mapped[dt.date | None] = mapped_column(Date)

    instance: Mapped[PlanInstance] = relationship(back_populates="cycles")
    obligations: Mapped[list[Obligation]] = relationship(back_populates="cycle")

    @validates("status")
    def _status(self, _key: str, value: str) -> CycleStatus:
        return CycleStatus(value)


class Obligation(Base):
    """One (unit, deliverable, cycle): what a unit owes and by when."""

    __tablename__ = "obligations"
    __table_args__ = (
        UniqueConstraint("cycle_id", "unit_id", "deliverable_id"),
        Index("ix_obligations_status_due", "status", "due_date"),
        # The daily sweep reads a cycle's open duties due that day; intake asks whether
        # a deliverable of a cycle has any left (migration 0008_sweep_index).
        Index("ix_obligations_sweep", "cycle_id", "status", "next_sweep_on"),
        Index("ix_obligations_cycle_deliverable_status", "cycle_id", "deliverable_id", "status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    cycle_id: Mapped[int] = mapped_column(ForeignKey("cycles.id"), index=True)
    unit_id: Mapped[str] = mapped_column(String(80), index=True)
    deliverable_id: Mapped[str] = mapped_column(String(80))
    # "sub_plan", "report" or "consolidation" (the consolidation point's own duty)
    kind: Mapped[str] = mapped_column(String(20))
    assignment_ids: Mapped[list[Any]]
    to_unit_id: Mapped[str | None] = mapped_column(String(80))
    via_unit_id: Mapped[str | None] = mapped_column(String(80))
    nominal_date: Mapped[dt.date] = mapped_column(Date)  # the date as written
    due_date: Mapped[dt.date] = mapped_column(Date)  # after the calendar policy
    due_reason: Mapped[str | None] = mapped_column(Text)  # why it moved
    status: Mapped[ObligationStatus] = mapped_column(
        EnumText(ObligationStatus), default=ObligationStatus.PENDING
    )
    overdue: Mapped[bool] = mapped_column(Boolean, default=False)
    submitted_at: Mapped[dt.datetime | None]
    on_time: Mapped[bool | None] = mapped_column(Boolean)
    transferred_from: Mapped[str | None] = mapped_column(String(80))  # abolished unit
    token_version: Mapped[int] = mapped_column(Integer, default=1)  # bump to revoke links
    # The first day the sweep may remind, mark overdue or escalate (engine.lifecycle.
    # sweep_days); None: nothing left. A row written without it holds SWEEP_AT_ONCE,
    # so the next sweep looks at it and stores the real day; code that moves due_date
    # or withdraws queued mails sets SWEEP_AT_ONCE too.
    next_sweep_on: Mapped[dt.date | None] = mapped_column(
        Date, server_default=text(f"'{SWEEP_AT_ONCE.isoformat()}'")
    )
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    cycle: Mapped[Cycle] = relationship(back_populates="obligations")
    submissions: Mapped[list[Submission]] = relationship(
        back_populates="obligation", order_by="Submission.version"
    )

    @validates("status")
    def _status(self, _key: str, value: str) -> ObligationStatus:
        return ObligationStatus(value)


class Submission(Base):
    """A unit's answer to an obligation; every version is kept."""

    __tablename__ = "submissions"
    __table_args__ = (
        UniqueConstraint("obligation_id", "version"),
        UniqueConstraint("obligation_id", "form_key"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    obligation_id: Mapped[int] = mapped_column(ForeignKey("obligations.id"), index=True)
    version: Mapped[int]
    values: Mapped[dict[str, Any]]  # field id -> value, per the report template
    summary: Mapped[str | None] = mapped_column(Text)
    file_ids: Mapped[list[Any]]  # StoredFile ids
    submitted_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    source: Mapped[str] = mapped_column(String(40), default="portal")  # portal|cli|upward|sim
    on_time: Mapped[bool] = mapped_column(Boolean)
    review_state: Mapped[ReviewState] = mapped_column(
        EnumText(ReviewState), default=ReviewState.RECEIVED
    )
    review_reason: Mapped[str | None] = mapped_column(Text)
    reviewed_at: Mapped[dt.datetime | None]
    reviewed_by: Mapped[str | None] = mapped_column(String(200))
    intake_done: Mapped[bool] = mapped_column(Boolean, default=False)
    # The portal form's idempotency key (portal.idempotency): a replayed POST finds its
    # first version by it. None for answers from elsewhere.
    form_key: Mapped[str | None] = mapped_column(String(64), default=None)

    obligation: Mapped[Obligation] = relationship(back_populates="submissions")

    @validates("review_state")
    def _review_state(self, _key: str, value: str) -> ReviewState:
        return ReviewState(value)


class AnswerDraft(Base):
    """A unit's answer saved from the portal form without sending it ("Lưu nháp"): one per
    obligation, replaced by each save and removed when an answer is sent. Never a
    submission: not counted, not consolidated, no receipt (portal.drafts)."""

    __tablename__ = "answer_drafts"

    id: Mapped[int] = mapped_column(primary_key=True)
    obligation_id: Mapped[int] = mapped_column(ForeignKey("obligations.id"), unique=True)
    # field id -> what the form shows again (text), each checked by engine.values
    values: Mapped[dict[str, Any]]
    saved_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    saved_by: Mapped[str] = mapped_column(String(200))


class StoredFile(Base):
    """An uploaded or generated document, stored outside the web root by content hash."""

    __tablename__ = "files"

    id: Mapped[int] = mapped_column(primary_key=True)
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    original_name: Mapped[str] = mapped_column(Text)
    content_type: Mapped[str] = mapped_column(String(120))
    size: Mapped[int]
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class ConsolidatedReport(Base):
    """The consolidation point's aggregate of one cycle of one report deliverable, by revision."""

    __tablename__ = "consolidated_reports"
    __table_args__ = (UniqueConstraint("cycle_id", "consolidation_id", "revision"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    cycle_id: Mapped[int] = mapped_column(ForeignKey("cycles.id"), index=True)
    consolidation_id: Mapped[str] = mapped_column(String(80))
    # 1 = the first report; n + 1 replaces n when reports arrive or change after it
    # (engine.consolidation, revise=True). Every revision is kept.
    revision: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    by_unit_id: Mapped[str] = mapped_column(String(80))
    aggregates: Mapped[dict[str, Any]]
    status_table: Mapped[list[Any]]
    document_file_id: Mapped[int | None] = mapped_column(ForeignKey("files.id"))
    document_path: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    upward_submission_id: Mapped[int | None] = mapped_column(ForeignKey("submissions.id"))
    # Its way upward (engine.approval): a draft until the consolidating unit approves it
    # (number from the register), uploads the signed PDF and sends it.
    approval: Mapped[ReportApproval] = mapped_column(
        EnumText(ReportApproval), default=ReportApproval.DRAFT, server_default="sent"
    )
    narrative: Mapped[dict[str, Any] | None] = mapped_column(
        JSON, default=dict
    )  # section id -> text
    # StoredFile ids (no foreign key: SQLite cannot add one to a table holding data)
    number_text: Mapped[str | None] = mapped_column(String(60))  # "125/BC-CAH"
    approved_at: Mapped[dt.datetime | None]
    approved_by: Mapped[str | None] = mapped_column(String(200))
    final_docx_file_id: Mapped[int | None]
    final_pdf_file_id: Mapped[int | None]
    signed_file_id: Mapped[int | None]
    signed_at: Mapped[dt.datetime | None]
    signed_by: Mapped[str | None] = mapped_column(String(200))
    sent_at: Mapped[dt.datetime | None]


class ReportNumber(Base):
    """The issuing body's register of report numbers, per year: each number once, given
    in order at approval (engine.register_numbers); a report holds at most one."""

    __tablename__ = "report_numbers"
    __table_args__ = (UniqueConstraint("issuer_id", "year", "number"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    issuer_id: Mapped[str] = mapped_column(String(80))
    year: Mapped[int] = mapped_column(Integer)
    number: Mapped[int] = mapped_column(Integer)
    symbol: Mapped[str] = mapped_column(String(40))  # "BC-CAH"
    report_id: Mapped[int] = mapped_column(ForeignKey("consolidated_reports.id"), unique=True)
    assigned_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    assigned_by: Mapped[str] = mapped_column(String(200))


class UnitMessage(Base):
    """A report or comment a unit sends unasked under a plan ("chủ động báo cáo", "gửi ý
    kiến về …"), through the portal link of one of its duties; it goes to the unit that
    gathers that duty's answers (engine.unit_messages). A supporting unit's contribution
    to a tracked task (kind ``contribution``) goes to the task's lead."""

    __tablename__ = "unit_messages"

    id: Mapped[int] = mapped_column(primary_key=True)
    plan_id: Mapped[str] = mapped_column(String(80), index=True)
    cycle_id: Mapped[int] = mapped_column(ForeignKey("cycles.id"), index=True)
    obligation_id: Mapped[int] = mapped_column(ForeignKey("obligations.id"))
    unit_id: Mapped[str] = mapped_column(String(80))
    to_unit_id: Mapped[str] = mapped_column(String(80))
    kind: Mapped[str] = mapped_column(String(20))  # report | comment | contribution
    subject: Mapped[str] = mapped_column(Text)
    text: Mapped[str] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    # A supporting unit's contribution to a tracked task (engine.task_contributions):
    # the file it attached, if any (a StoredFile id); obligation_id is the lead's duty.
    file_id: Mapped[int | None] = mapped_column(default=None)
    # The rendering of the form it was posted from (portal.csrf.form_id): a form posted
    # twice (a double click, a reload) is kept once.
    form_key: Mapped[str | None] = mapped_column(String(64), default=None)


class OutboxMessage(Base):
    """An email to send, written in the same transaction as the change that causes it."""

    __tablename__ = "outbox"
    # Claim order: the dispatcher takes a few due rows at a time (notifications/dispatch.py).
    __table_args__ = (Index("ix_outbox_due", "status", "next_attempt_at", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    idempotency_key: Mapped[str] = mapped_column(String(300), unique=True)
    message_id: Mapped[str] = mapped_column(String(300), unique=True)
    thread_id: Mapped[str | None] = mapped_column(String(300))  # Message-ID of the first
    kind: Mapped[str] = mapped_column(String(40))  # assignment|reminder|overdue|...
    obligation_id: Mapped[int | None] = mapped_column(ForeignKey("obligations.id"), index=True)
    plan_id: Mapped[str | None] = mapped_column(String(80))
    unit_id: Mapped[str | None] = mapped_column(String(80))
    to_addrs: Mapped[list[Any]]
    cc_addrs: Mapped[list[Any]] = mapped_column(default=list)
    context: Mapped[dict[str, Any]]  # template context, rendered at send time
    status: Mapped[OutboxStatus] = mapped_column(
        EnumText(OutboxStatus), default=OutboxStatus.PENDING, index=True
    )
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    give_up_at: Mapped[dt.datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)
    smtp_code: Mapped[int | None]
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    sent_at: Mapped[dt.datetime | None]
    raw: Mapped[bytes | None] = mapped_column(LargeBinary)  # the exact bytes sent
    # After a partial refusal with a 4xx reply: the addresses still owed this message
    # (the same Message-ID goes to them alone at the next attempt); None = everyone.
    retry_to: Mapped[list[Any] | None]

    @validates("status")
    def _status(self, _key: str, value: str) -> OutboxStatus:
        return OutboxStatus(value)


class AuditEvent(Base):
    """Who did what, when, from where: every state change and portal action.

    Append-only and hash-chained per plan (engine.audit_chain): ``seq`` counts the rows
    of the chain ``chain`` (the plan id, "" for rows about no plan) from 1, ``row_hash``
    is the SHA-256 of the row's content and ``prev_hash``; a row that records a
    submission or a consolidated report names it (``ref_kind``, ``ref_id``) with the
    hash of its content. Triggers refuse UPDATE and DELETE (migration 0004_audit_chain).
    """

    __tablename__ = "audit_events"
    __table_args__ = (
        UniqueConstraint("chain", "seq"),
        Index("ix_audit_events_ref", "ref_kind", "ref_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[dt.datetime] = mapped_column(default=utcnow, index=True)
    actor: Mapped[str] = mapped_column(String(200))  # "unit:ca-huyen-ha-lang", "system"...
    action: Mapped[str] = mapped_column(String(80))
    plan_id: Mapped[str | None] = mapped_column(String(80))
    obligation_id: Mapped[int | None] = mapped_column(Integer)
    remote_addr: Mapped[str | None] = mapped_column(String(80))
    data: Mapped[dict[str, Any]] = mapped_column(default=dict)
    chain: Mapped[str] = mapped_column(String(80))
    seq: Mapped[int] = mapped_column(Integer)
    prev_hash: Mapped[str] = mapped_column(String(64))
    row_hash: Mapped[str] = mapped_column(String(64))
    ref_kind: Mapped[str | None] = mapped_column(String(20))  # "submission" | "report"
    ref_id: Mapped[int | None] = mapped_column(Integer)
    content_hash: Mapped[str | None] = mapped_column(String(64))


class AuditChainHead(Base):
    """The last row of each audit chain: the lock appenders take, and the seq and hash a
    verification expects at the end (rows deleted from the end are seen too)."""

    __tablename__ = "audit_chain_heads"

    chain: Mapped[str] = mapped_column(String(80), primary_key=True)
    seq: Mapped[int] = mapped_column(Integer)
    row_hash: Mapped[str] = mapped_column(String(64))


class SchedulerState(Base):
    """Key/value state for the virtual clock and schedulers (e.g. last sweep day)."""

    __tablename__ = "scheduler_state"

    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    value: Mapped[dict[str, Any]]
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class RegistryChange(Base):
    """One dated change set applied to a registry (``kehoach registry apply``).

    Append-only: a change set is applied once (by id) and never edited; the registry as
    of a date is the loaded registry plus every change set effective by then
    (engine.registry_history)."""

    __tablename__ = "registry_changes"
    __table_args__ = (UniqueConstraint("registry_id", "change_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    registry_id: Mapped[str] = mapped_column(String(80), index=True)
    change_id: Mapped[str] = mapped_column(String(80))
    name: Mapped[str] = mapped_column(Text)
    effective: Mapped[dt.date] = mapped_column(Date)
    content_hash: Mapped[str] = mapped_column(String(64))
    source_path: Mapped[str | None] = mapped_column(Text)
    source_text: Mapped[str] = mapped_column(Text)
    definition: Mapped[dict[str, Any]]
    applied_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class RegistryUnitVersion(Base):
    """One dated version of a unit written by a change set: its attributes from
    ``valid_from`` (``event`` 'create' or 'update'), or its end (``event`` 'end': the
    unit's last day is ``valid_from`` - 1, with its successors and, for a split, the
    rule of who inherits what). A version lasts until the unit's next row; rows are
    never updated."""

    __tablename__ = "registry_unit_versions"
    __table_args__ = (Index("ix_registry_unit_versions_unit", "registry_id", "unit_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    change_row_id: Mapped[int] = mapped_column(
        ForeignKey("registry_changes.id", ondelete="RESTRICT"), index=True
    )
    registry_id: Mapped[str] = mapped_column(String(80))
    unit_id: Mapped[str] = mapped_column(String(80))
    event: Mapped[str] = mapped_column(String(20))
    valid_from: Mapped[dt.date] = mapped_column(Date)
    attrs: Mapped[dict[str, Any]] = mapped_column(default=dict)
    successors: Mapped[list[Any]] = mapped_column(default=list)
    rule: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
