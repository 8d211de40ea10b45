"""The plan-definition schema: what an administrator writes in YAML.

These pydantic models are the *spec* (immutable, validated); run-time state
(instances, obligations, submissions) lives in ``engine.store``.  The JSON Schema
exported by ``kehoach schema`` is generated from these models, never hand-written.

Three kinds of YAML document exist, told apart by their ``kind`` key:
``registry`` (organisation units), ``plan`` and ``calendar`` (holiday overrides).
Report templates live inside a plan (``report_templates``).
"""

from __future__ import annotations

import datetime as dt
import re
from enum import StrEnum
from functools import cached_property
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from engine.levels import LEVEL_HELP, Level
from engine.party import KIND_HELP
from engine.schema_authority import Routing as Routing
from engine.schema_authority import Signer as Signer
from engine.schema_base import SLUG_PATTERN as SLUG_PATTERN
from engine.schema_base import Model, Slug
from engine.schema_base import Target as Target
from engine.schema_content import Amount as Amount
from engine.schema_content import ContentSection
from engine.schema_tasks import Completion as Completion
from engine.schema_tasks import TaskDue as TaskDue
from engine.schema_tasks import TaskRow as TaskRow
from engine.schema_tasks import TaskTable, TrackedFields
from engine.schema_templates import Aggregation as Aggregation
from engine.schema_templates import AppliesTo as AppliesTo
from engine.schema_templates import FieldType as FieldType
from engine.schema_templates import ReportTemplate
from engine.schema_templates import TemplateField as TemplateField
from engine.schema_time import CutoffPeriod as CutoffPeriod
from engine.schema_time import DeadlineKind, FirstPeriod
from engine.schema_time import DeadlinePolicy as DeadlinePolicy
from engine.tasks import Tracked, tracked_tasks

# Number/symbol of a Vietnamese document (Nghị định 30/2020/NĐ-CP):
#   state form   2720/KH-UBND      legal form  136/2020/NĐ-CP   99/2019/QH14
#   party form   02-KL/TW          78-KH/TU    47-CT/TW
_SYMBOL_PART = r"[A-ZĐa-zđ0-9]+"
DOCUMENT_NUMBER_PATTERN = rf"^\d+(?:/\d{{4}})?[/-]{_SYMBOL_PART}(?:[-/.]{_SYMBOL_PART})*$"


def _email(address: str) -> str:
    if not re.fullmatch(r"[^@\s<>,;\"]+@[^@\s<>,;\"]+\.[^@\s<>,;\"]+", address):
        raise ValueError(f"'{address}' không phải là địa chỉ email (cần dạng ten@ten-mien)")
    return address


EmailAddress = Annotated[str, AfterValidator(_email)]


# ---------------------------------------------------------------- registry


class Person(Model):
    name: str
    title: str | None = None
    email: EmailAddress | None = None
    phone: str | None = None
    sample: bool = Field(
        False,
        description="True where the person is sample data: `kehoach show` counts and names "
        "the sample heads and focal persons of the units the plan mails.",
    )


class Unit(Model):
    """One body in the organisation registry, valid over a date range."""

    id: Slug
    name: str = Field(description="Full Vietnamese name, e.g. 'Công an huyện Hạ Lang'.")
    short: str | None = Field(None, description="Short code as used in 'Lưu: VT, CAH'.")
    kind: Slug = Field(description=KIND_HELP)
    level: Level = Field("none", description=LEVEL_HELP)
    parent: Slug | None = None
    emails: list[EmailAddress] = Field(default_factory=list)
    head: Person | None = None
    focal: Person | None = Field(None, description="Focal person (đầu mối) for this plan work.")
    valid_from: dt.date = dt.date(1900, 1, 1)
    valid_to: dt.date | None = Field(None, description="Last day the unit exists (inclusive).")
    successors: list[Slug] = Field(default_factory=list)
    tags: list[Slug] = Field(default_factory=list)
    sample: bool = Field(
        False,
        description="True where the name or address is sample data: `kehoach show` counts "
        "and names the sample units the plan gives work or sends reports to.",
    )
    collective: bool | None = Field(
        None,
        description="Run by its collective leadership (chế độ tập thể), so it signs 'TM.': "
        "default true for people's committees, councils and Party committees, false for others.",
    )

    @model_validator(mode="after")
    def _dates(self) -> Unit:
        if self.valid_to is not None and self.valid_to < self.valid_from:
            raise ValueError(
                f"valid_to {self.valid_to} trước valid_from {self.valid_from}; đổi chỗ hai ngày"
            )
        return self

    def valid_on(self, day: dt.date) -> bool:
        return self.valid_from <= day and (self.valid_to is None or day <= self.valid_to)


class Group(Model):
    """A named set of units resolved against the registry as of a date.

    Members are the union of ``members`` and every unit valid on that date whose
    parent is in ``parents`` (or any parent, when ``parents`` is empty) and whose
    kind is in ``kinds`` and which carries all ``tags``.
    """

    id: Slug
    name: str
    members: list[Slug] = Field(default_factory=list)
    parents: list[Slug] = Field(default_factory=list)
    kinds: list[Slug] = Field(default_factory=list)
    tags: list[Slug] = Field(default_factory=list)
    exclude: list[Slug] = Field(default_factory=list)

    @model_validator(mode="after")
    def _some_rule(self) -> Group:
        if not (self.members or self.parents or self.kinds or self.tags):
            raise ValueError("nhóm cần members, parents, kinds hoặc tags để chọn đơn vị")
        return self


class Registry(Model):
    kind: Literal["registry"]
    id: Slug
    name: str
    note: str | None = None
    units: list[Unit]
    groups: list[Group] = Field(default_factory=list)


# ---------------------------------------------------------------- calendar


class _Rule(Model):
    phrase: str | None = Field(None, description="The raw Vietnamese phrase, kept as written.")
    policy: DeadlinePolicy = DeadlinePolicy.exact
    deadline_kind: DeadlineKind | None = Field(
        None, description="exclusive (trước ngày 10/9: by 9/9) | inclusive; default: the phrase's."
    )
    assumed: bool = Field(False, description="True where the document states no deadline.")
    note: str | None = Field(None, description="Why the rule is what it is, where not quoted.")


class FixedDate(_Rule):
    rule: Literal["fixed"]
    date: dt.date


class YearlyDate(_Rule):
    rule: Literal["yearly"]
    day: int = Field(ge=1, le=31)
    month: int = Field(ge=1, le=12)

    @model_validator(mode="after")
    def _real_day(self) -> YearlyDate:
        try:
            dt.date(2024, self.month, self.day)  # a leap year admits 29/2
        except ValueError:
            raise ValueError(f"{self.day}/{self.month} không phải là một ngày trong năm") from None
        return self


class MonthlyDate(_Rule):
    rule: Literal["monthly"]
    day: int = Field(ge=1, le=31, description="Clamped to the month's last day.")


class PeriodEnd(_Rule):
    """The last day of each quarter or half-year, plus ``offset_days``."""

    rule: Literal["quarter_end", "half_year_end"]
    offset_days: int = 0


class AfterActivation(_Rule):
    rule: Literal["after_activation"]
    days: int = Field(ge=0)


class OnRequest(_Rule):
    """Đột xuất, khi có yêu cầu: each request (``kehoach request``) gives the date; on the
    consolidation of such a report, ``days`` after the units' date."""

    rule: Literal["on_request"]
    days: int = Field(0, ge=0, le=366, description="Consolidation only: days after the units'.")


DeadlineRule = Annotated[
    FixedDate | YearlyDate | MonthlyDate | PeriodEnd | AfterActivation | OnRequest,
    Field(discriminator="rule"),
]


class CalendarDay(Model):
    date: dt.date
    name: str


class CalendarOverrides(Model):
    """Editable corrections to the ``holidays`` package's Vietnam calendar."""

    kind: Literal["calendar"]
    id: Slug
    note: str | None = None
    holidays: list[CalendarDay] = Field(
        default_factory=list, description="Extra days off (announced swaps, Tết changes)."
    )
    working_days: list[CalendarDay] = Field(
        default_factory=list, description="Make-up working days (e.g. a Saturday worked)."
    )
    not_holidays: list[CalendarDay] = Field(
        default_factory=list, description="Days the package marks off that are working days."
    )


# ---------------------------------------------------------------- plan


class DocumentType(StrEnum):
    KH = "KH"  # Kế hoạch
    BC = "BC"  # Báo cáo
    QD = "QĐ"  # Quyết định
    CT = "CT"  # Chỉ thị
    KL = "KL"  # Kết luận
    NQ = "NQ"  # Nghị quyết
    ND = "NĐ"  # Nghị định
    TB = "TB"  # Thông báo
    HD = "HD"  # Hướng dẫn
    CTR = "CTr"  # Chương trình
    TTR = "TTr"  # Tờ trình
    QYD = "QyĐ"  # Quy định
    DA = "ĐA"  # Đề án
    PA = "PA"  # Phương án
    CV = "CV"  # Công văn
    LUAT = "Luật"


class DocumentRef(Model):
    """A document as cited: type, number/symbol, date, issuer and title."""

    type: DocumentType
    number: str | None = Field(
        None,
        pattern=DOCUMENT_NUMBER_PATTERN,
        description="Số/ký hiệu: '2720/KH-UBND', '136/2020/NĐ-CP', '02-KL/TW'. Blank in drafts.",
    )
    date: dt.date | None = None
    issuer: str | None = None
    title: str | None = None


class BasisItem(DocumentRef):
    id: Slug
    implements: list[Slug] = Field(
        default_factory=list, description="Ids of the basis items this one implements."
    )
    role: Literal["implements", "continues", "combined_with", "cites", "grounds"] = Field(
        "implements",
        description="implements (thực hiện) | continues (tiếp tục) | combined_with (lồng "
        "ghép) | cites (viện dẫn) | grounds (căn cứ: the legal grounds the plan is issued "
        "under, 'Căn cứ Luật …', neither implemented nor continued).",
    )


class PlanDocument(DocumentRef):
    place: str | None = None
    issuer_unit: Slug = Field(description="Registry id of the issuing body.")
    parent_body: str | None = Field(None, description="The body printed above the issuer.")
    summary: str = Field(description="Trích yếu.")
    short_name: str | None = Field(
        None,
        max_length=30,
        description="The plan as email subjects name it, e.g. 'Kế hoạch PCCC' "
        "(default: the type and the number).",
    )
    signer: Signer
    date_note: str | None = None


class Role(StrEnum):
    lead = "lead"
    supporting = "supporting"
    consolidation_point = "consolidation_point"


class Mode(StrEnum):
    order = "order"  # giao, yêu cầu
    request = "request"  # "Đề nghị": addressed to bodies outside the issuer's command


EscalationTarget = Literal["head", "parent", "issuer"]
DEFAULT_ESCALATION: tuple[EscalationTarget, ...] = ("head", "parent")


class EscalationPolicy(Model):
    """Whom a late report's escalation is written to, in order: the unit's head (a person
    of the registry, by name), the body above it (its parent), the plan's issuer. The
    late unit's own addresses are never among them; when none of these has an address,
    the consolidating unit gets it (notifications say so)."""

    to: list[EscalationTarget] = Field(
        default_factory=lambda: list(DEFAULT_ESCALATION),
        min_length=1,
        description="head = thủ trưởng đơn vị; parent = cơ quan cấp trên trực tiếp; "
        "issuer = cơ quan ban hành kế hoạch.",
    )


class TaskItem(TrackedFields):
    """A task of an assignment; with a ``due`` naming a deadline it is tracked (engine.tasks)."""

    id: Slug
    text: str
    source: Literal["text", "inferred"] = Field(
        "text",
        description="'inferred' where the words are not quoted from the document (`show` "
        "marks the task so).",
    )
    recurrence: Literal["once", "yearly", "monthly", "quarterly", "ongoing"] = "ongoing"


class Assignment(Model):
    id: Slug
    section: str = Field(description="Where it stands in the document, e.g. 'II.1'.")
    heading: str = Field(description="The heading as written, e.g. 'Công an huyện'.")
    to: Target
    role: Role = Role.lead
    mode: Mode = Mode.order
    supporting: list[Target] = Field(default_factory=list)
    tasks: list[TaskItem] = Field(min_length=1)


class Frequency(StrEnum):
    once = "once"
    yearly = "yearly"
    half_yearly = "half_yearly"
    quarterly = "quarterly"
    monthly = "monthly"
    on_request = "on_request"  # đột xuất: no schedule; cycles come from `kehoach request`


class DeliverableKind(StrEnum):
    sub_plan = "sub_plan"
    report = "report"


class Deliverable(Model):
    """Something every assigned body must send: its own plan, or a recurring report."""

    id: Slug
    kind: DeliverableKind
    title: str
    short_title: str | None = Field(
        None,
        max_length=40,
        description="The title as email subjects give it, with the cycle after it: "
        "'Báo cáo sơ kết' -> 'Báo cáo sơ kết năm 2023' (default: the title, shortened).",
    )
    section: str | None = None
    text: str | None = Field(None, description="The sentence of the plan that asks for it.")
    from_assignments: list[Slug] | Literal["all"] = Field(
        "all", description="Assignments whose units owe this; 'all' for every assignment."
    )
    routing: Routing
    frequency: Frequency = Frequency.once
    deadline: DeadlineRule
    cutoff: CutoffPeriod | None = None
    template: Slug | None = Field(None, description="Report template id (reports only).")
    review: bool = Field(False, description="The consolidating unit accepts or returns it.")
    reminders: list[int] = Field(
        default_factory=lambda: [7, 3, 1], description="Days before the deadline."
    )
    mode: Mode | None = Field(None, description="Default: the assignment's mode.")
    first_period: FirstPeriod | None = Field(
        None, description="First period owed ('2026-04'); default: the first due after the plan."
    )

    @model_validator(mode="after")
    def _report_has_template(self) -> Deliverable:
        if self.kind is DeliverableKind.report and self.template is None:
            raise ValueError("báo cáo (kind: report) cần 'template' (mã một mẫu báo cáo)")
        return self


class TaskDeliverable(Deliverable):
    """A deliverable made from a tracked task (engine.tasks); never written in YAML."""

    task_id: str
    last_period: str | None = None  # a progress report's last year


class Upward(Model):
    """Where a consolidated report goes: an obligation of the parent plan."""

    plan: Slug
    deliverable: Slug


class Consolidation(Model):
    id: Slug
    section: str | None = None
    text: str | None = None
    consolidates: Slug = Field(
        description="The report deliverable it gathers, or a tracked task's id (its leads' "
        "completion reports, in the four states, after the task's deadline)."
    )
    by: Slug = Field(description="Registry id of the consolidation point.")
    routing: Routing
    deadline: DeadlineRule
    combined_with: str | None = Field(None, description="e.g. the report on 630/QĐ-TTg.")
    combined_plan: Slug | None = Field(
        None,
        description="Id of the plan whose report is combined (lồng ghép): when it is in "
        "the store, its consolidated figures of the same cycle become a section of this "
        "report; otherwise the report says it is not there.",
    )
    on_behalf_of: Slug | None = Field(
        None,
        description="The body in whose name the report goes out (UBND huyện, drafted by the "
        "police; or the consolidating department itself); default: the plan's issuer. It "
        "heads the report (under its parent in the registry), signs it and names it.",
    )
    signer: Signer | None = Field(
        None,
        description="Who signs the report for that body; default: the plan's signer when "
        "the body is the plan's issuer, else the body's head in the registry.",
    )
    recipients: list[str] = Field(
        default_factory=list,
        max_length=40,
        description="Nơi nhận of the report, as written ('Bộ Tài chính (B/c)'); a line "
        "'Lưu: VT, TH' replaces the archive line. Default: the body it is for and the "
        "channel, each (B/c), then 'Lưu: VT' and the drafting unit.",
    )
    upward: Upward | None = None


class Event(Model):
    id: Slug
    title: str
    date: DeadlineRule | None = None
    month: int | None = Field(None, ge=1, le=12, description="A whole-month event.")
    text: str | None = None

    @model_validator(mode="after")
    def _when(self) -> Event:
        if (self.date is None) == (self.month is None):
            raise ValueError("sự kiện cần đúng một trong hai: 'date' hoặc 'month'")
        return self


class Duty(Model):
    """A recurring duty with a measurable target (e.g. 100% of officials trained)."""

    id: Slug
    text: str
    who: Target
    frequency: Frequency = Frequency.yearly
    target: str | None = None
    measured_by: Slug | None = Field(None, description="Report template field that measures it.")
    template: Slug | None = None


class Recipient(Model):
    """A Nơi nhận line: on first activation each unit it names (not the issuer, not one
    with duties, not one abolished) gets the plan by email, as `purpose` says."""

    name: str = Field(description="As written in Nơi nhận.")
    purpose: Literal["report", "action", "information", "archive"] = Field(
        description="report = (B/c); action = để thực hiện; information = để biết; "
        "archive = Lưu (mails nobody)."
    )
    units: list[Slug] = Field(default_factory=list, description="The units the line names.")
    groups: list[Slug] = Field(default_factory=list, description="Groups the line names.")


class Plan(Model):
    kind: Literal["plan"]
    id: Slug
    registry: Slug
    as_of: dt.date = Field(description="The registry is resolved as of this date.")
    document: PlanDocument
    basis: list[BasisItem] = Field(default_factory=list)
    parent_plan: Slug | None = Field(None, description="Id of the loaded plan this implements.")
    preamble: str | None = Field(
        None,
        description="The opening paragraph after the căn cứ ('… ban hành Kế hoạch … như "
        "sau:'); `kehoach show` prints it there.",
    )
    objectives: list[str] = Field(default_factory=list, description="Mục đích, yêu cầu.")
    assignments: list[Assignment] = Field(default_factory=list)
    task_tables: list[TaskTable] = Field(
        default_factory=list, description="Appendix task tables (task / lead / supporting / time)."
    )
    deliverables: list[Deliverable] = Field(default_factory=list)
    consolidations: list[Consolidation] = Field(default_factory=list)
    events: list[Event] = Field(default_factory=list)
    duties: list[Duty] = Field(default_factory=list)
    report_templates: list[ReportTemplate] = Field(default_factory=list)
    recipients: list[Recipient] = Field(default_factory=list)
    closing: str | None = Field(
        None, description="The closing paragraph ('Trên đây là Kế hoạch …'), printed by `show`."
    )
    sections: list[ContentSection] = Field(
        default_factory=list,
        description="Sections that assign no task (giải pháp, kinh phí, phụ lục), kept as text.",
    )
    groups: list[Group] = Field(
        default_factory=list, description="Extra groups local to this plan."
    )
    admin_email: EmailAddress | None = Field(
        None, description="Where delivery failures are escalated."
    )
    templates_dir: str | None = Field(
        None, description="Folder (relative to this file) overriding email templates."
    )
    effective_date: dt.date | None = Field(
        None, description="The day the plan takes effect (default: document.date, else as_of)."
    )
    start_year: int | None = Field(None, description="First reporting year (default: as_of).")
    end_year: int | None = None
    close_after_days: int = Field(
        60,
        ge=0,
        le=3650,
        description="Days after a cycle's last due date (the latest deadline of its "
        "obligations, the consolidation's included) on which the cycle closes: links work "
        "to the end of that day, the next sweep closes the cycle (docs/DECISIONS.md).",
    )

    escalation: EscalationPolicy = Field(
        default_factory=lambda: EscalationPolicy(),
        description="Who a late unit's escalation goes to (never the late unit itself).",
    )

    def assignment(self, assignment_id: str) -> Assignment | None:
        return next((a for a in self.assignments if a.id == assignment_id), None)

    @property
    def takes_effect(self) -> dt.date:
        """The day the plan takes effect: effective_date, else its date, else as_of."""
        return self.effective_date or self.document.date or self.as_of

    @cached_property
    def tracked(self) -> Tracked:
        """The tasks tracked as obligations, with their deliverables (engine.tasks)."""
        tasks, data, templates = tracked_tasks(self)
        made = tuple(TaskDeliverable.model_validate(d) for d in data)
        return Tracked(tuple(tasks), made, templates)

    @property
    def all_deliverables(self) -> list[Deliverable]:
        """The deliverables the plan writes, then its tracked tasks'."""
        return [*self.deliverables, *self.tracked.deliverables]

    def deliverable(self, deliverable_id: str) -> Deliverable | None:
        return next((d for d in self.all_deliverables if d.id == deliverable_id), None)

    def template(self, template_id: str) -> ReportTemplate | None:
        templates = (*self.report_templates, *self.tracked.templates)
        return next((t for t in templates if t.id == template_id), None)


Document = Annotated[Registry | Plan | CalendarOverrides, Field(discriminator="kind")]


class AnyDocument(BaseModel):
    """Wrapper used to validate any YAML document and export one JSON Schema."""

    model_config = ConfigDict(defer_build=True)  # built when the first file is validated
    document: Document
