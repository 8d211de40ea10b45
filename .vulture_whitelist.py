"""Names vulture reports as unused that a framework, a dispatch table or the tests use.

Not imported or run: vulture only reads it.  Check with
``vulture engine workflows notifications portal .vulture_whitelist.py --min-confidence 60``.
One line per name, with why it is used; group the lines by the module that defines it.
"""

# ruff: noqa: B018  (bare attribute references are the point of this file)

from typing import Any

from docx.section import Section

from cli.audit import cmd_audit
from cli.definitions import cmd_calendar, cmd_load, cmd_plans, cmd_schema, cmd_show, cmd_validate
from cli.doctor import cmd_doctor
from cli.importer import cmd_import
from cli.mail import cmd_dispatch, cmd_outbox
from cli.prefect import cmd_demo, cmd_deploy, cmd_simulate
from cli.registry import cmd_registry_apply, cmd_registry_history
from cli.report import cmd_report
from cli.request import cmd_request
from cli.running import (
    cmd_activate,
    cmd_close,
    cmd_consolidate,
    cmd_reopen,
    cmd_review,
    cmd_status,
)
from engine import audit_anchor, audit_chain
from engine.calendar import cycle_from_key
from engine.clock import VirtualClock
from engine.closing import close_due_cycles
from engine.config import Settings
from engine.consolidation.result import ConsolidationResult
from engine.faults import reached, trace
from engine.register_numbers import register_of
from engine.registry_changes import Contacts
from engine.registry_dated import SplitRule
from engine.repository import retire_plan
from engine.schema import (
    ContentSection,
    DeadlinePolicy,
    Deliverable,
    DocumentType,
    Event,
    Group,
    Model,
    Person,
    Plan,
    Role,
    Target,
    TaskDue,
    TemplateField,
    Unit,
    YearlyDate,
)
from engine.settings_fields import SettingsFields
from engine.states import (
    CycleStatus,
    EnumText,
    InstanceStatus,
    ObligationStatus,
    OutboxStatus,
    ReviewState,
)
from engine.store import db
from engine.store.models import (
    AnswerDraft,
    Base,
    ConsolidatedReport,
    Cycle,
    Obligation,
    OutboxMessage,
    PlanInstance,
    PlanVersion,
    RegistryUnit,
    RegistryVersion,
    ReportNumber,
    SchedulerState,
    Submission,
    UTCDateTime,
)
from engine.transitions import move_instance
from engine.vn_holidays import from_package
from notifications.dispatch import IN_FLIGHT_PER_CONNECTION
from notifications.flows import dispatch_outbox
from notifications.mailbox import MailboxHandler
from notifications.render import build_message
from portal import review_report
from portal.server import app_from_env
from workflows.approve_report import ReportApprovalInput
from workflows.events import EVENT_NAMES
from workflows.server import LocalPrefect, use_api

_: Any = None  # names inside functions or set on foreign objects: any attribute of `_` counts


# ---------------------------------------------------------------- engine/documents.py
# python-docx properties the report layout sets (their setters write the XML).
Section.orientation  # portrait, or landscape for a wide phụ lục
Section.header_distance  # page numbers in the top margin
Section.different_first_page_header_footer  # no page number on page 1 (Nghị định 30)
_.is_linked_to_previous  # the header with the page number belongs to the first section
Section.page_width  # A4 page
Section.page_height  # A4 page
Section.top_margin  # Nghị định 30 margins
Section.bottom_margin  # Nghị định 30 margins
Section.left_margin  # Nghị định 30 margins
Section.right_margin  # Nghị định 30 margins
_.space_before  # the section-break paragraph shrunk (engine.documents._shrink_break)
_.space_after  # the section-break paragraph shrunk
_.line_spacing  # the section-break paragraph shrunk

# ---------------------------------------------------------------- engine/schema.py
Model.model_config  # pydantic: forbid unknown keys, frozen instances
# pydantic fields: read from the YAML definitions and the JSON schema (`kehoach schema`)
Person.phone  # pydantic field of a unit's contact person
Person.sample  # pydantic field: the person is sample data
Unit.focal  # pydantic field: the unit's focal person (đầu mối)
Unit.sample  # pydantic field: the unit's name or address is sample data
TemplateField.help  # pydantic field: help text shown under a report field
Plan.preamble  # pydantic field: the plan document's opening paragraph
# pydantic @model_validator methods, called by pydantic on validation
Group._some_rule  # pydantic validator
SplitRule._one_way  # pydantic validator
Contacts._something  # pydantic validator
YearlyDate._real_day  # pydantic validator
Target._exactly_one  # pydantic validator
Deliverable._report_has_template  # pydantic validator
Event._when  # pydantic validator
TemplateField._consistent  # pydantic validator
ContentSection._has_content  # pydantic validator
TaskDue._readable  # pydantic validator
# StrEnum members: values a YAML definition may write (parsed by pydantic)
DeadlinePolicy.previous_working_day  # deadline policy value
Role.consolidation_point  # assignment role value (ROLE_VI in engine/render_plan.py)
DocumentType.KH  # document type value: Kế hoạch
DocumentType.BC  # document type value: Báo cáo
DocumentType.QD  # document type value: Quyết định
DocumentType.CT  # document type value: Chỉ thị
DocumentType.KL  # document type value: Kết luận
DocumentType.NQ  # document type value: Nghị quyết
DocumentType.ND  # document type value: Nghị định
DocumentType.TB  # document type value: Thông báo
DocumentType.HD  # document type value: Hướng dẫn
DocumentType.CTR  # document type value: Chương trình
DocumentType.TTR  # document type value: Tờ trình
DocumentType.QYD  # document type value: Quy định
DocumentType.DA  # document type value: Đề án
DocumentType.PA  # document type value: Phương án
DocumentType.CV  # document type value: Công văn
DocumentType.LUAT  # document type value: Luật

# ---------------------------------------------------------------- cli/
# Commands named by string ("module:function") in cli/parser.py, imported when they run.
cmd_validate, cmd_load, cmd_plans, cmd_schema, cmd_show, cmd_calendar  # cli/definitions.py
cmd_outbox, cmd_dispatch  # cli/mail.py
cmd_deploy, cmd_simulate, cmd_demo  # cli/prefect.py
cmd_activate, cmd_status, cmd_review, cmd_consolidate, cmd_close, cmd_reopen  # cli/running.py
cmd_request  # cli/request.py

# ---------------------------------------------------------------- engine/config.py
SettingsFields._any_case  # pydantic field validator: smtp_security in any case
SettingsFields._hours  # pydantic field validator: KEHOACH_MAIL_HOURS is HH:MM-HH:MM or "any"
Settings.settings_customise_sources  # pydantic-settings hook: Settings(...) reads only its arguments

# ---------------------------------------------------------------- used by tests only
cycle_from_key  # engine/calendar.py: tests/test_calendar.py, benchmarks/bench_activation.py
VirtualClock.advance  # engine/clock.py: tests/test_lifecycle.py
retire_plan  # engine/repository.py: tests/test_workflows_deploy.py
from_package  # engine/vn_holidays.py: scripts/regen-vn-holidays, tests/test_calendar.py

# ---------------------------------------------------------------- engine/states.py, store
# SQLAlchemy's TypeDecorator hooks, called by the engine for every bind and row.
EnumText.impl, EnumText.cache_ok, EnumText.process_bind_param, EnumText.process_result_value
UTCDateTime.impl, UTCDateTime.cache_ok, UTCDateTime.process_bind_param
UTCDateTime.process_result_value
Base.metadata, Base.type_annotation_map  # declarative configuration read by SQLAlchemy
# @validates hooks: a state assigned as a plain string becomes its enum member.
PlanInstance._status, Cycle._status, Obligation._status, OutboxMessage._status
Submission._review_state
# Columns written for the record (audit, history) and read by SQL, operators or tests.
RegistryVersion.source_text, PlanVersion.source_text, PlanInstance.activated_at
RegistryUnit.registry_version  # the relationship's other side (back_populates)
Cycle.period_start, Cycle.period_end, Obligation.updated_at, SchedulerState.updated_at
Submission.reviewed_at, Submission.reviewed_by
AnswerDraft.saved_by  # who saved a draft (portal/drafts.py), for the record
# The scheduler_state table is created by migration 0001 (tests/test_store.py lists
# it); dropping the model without a migration would make the schema and models differ.
SchedulerState
# The predicates every state has (issue 9); tests/test_states.py checks them.
ObligationStatus.terminal, ReviewState.terminal, CycleStatus.terminal
InstanceStatus.terminal, OutboxStatus.terminal
# The transition of InstanceStatus, kept with the others so that no code sets a plan
# instance's status by hand; tests/test_states.py covers the move table.
move_instance

# ---------------------------------------------------------------- frameworks elsewhere
IN_FLIGHT_PER_CONNECTION  # notifications/dispatch.py: the bound tests/test_dispatch_exactly_once.py checks
dispatch_outbox  # notifications/flows.py: a Prefect flow (deployed; tests run it)
MailboxHandler.handle_DATA  # aiosmtpd calls it for every message
_.healthz, _.favicon, _.robots, _.submit_page, _.link_request, _.operator_status  # routes
_.support_page, _.contribute_page  # routes (portal/app.py _support_routes)
_.draft_page  # route (portal/app.py): a reload of the draft POST goes back to the form
_.receipt  # route (portal/app.py)
_.http_error, _.invalid_request, _.crashed  # FastAPI exception handlers (portal/app.py)
app_from_env  # uvicorn's factory for several workers (portal/server.py, by string)
_.isolation_level  # pysqlite connection attribute set on connect (portal/writes.py)
LocalPrefect.startup_seconds, use_api  # workflows/server: read by tests and benchmarks

# ---------------------------------------------------------------- used by tests only (engine)
close_due_cycles  # engine/closing.py: tests/test_closing.py
build_message  # notifications/render.py: tests/test_notifications_outbox.py
ConsolidationResult.replaces_id, ConsolidationResult.upward_obligation_id  # tests read them
trace, reached  # engine/faults.py: the crash harness (tests/test_crash_harness.py)
EVENT_NAMES  # workflows/events.py: every event name, for automations; tests/test_operator_window.py

# ---------------------------------------------------------------- the audit chain
cmd_audit  # cli/audit.py, named by string in cli/parser.py
cmd_registry_apply, cmd_registry_history  # cli/registry.py, named by string in cli/parser.py
cmd_import  # cli/importer.py, named by string in cli/parser.py
cmd_doctor  # cli/doctor.py, named by string in cli/parser.py
# SQLAlchemy session events (engine/audit_chain.py): chain the queued rows at commit,
# drop them on rollback, write them first when the transaction reads the log
audit_chain._before_commit, audit_chain._after_soft_rollback
audit_chain._after_transaction_end, audit_chain._reading_the_log
# ... and copy the heads outside the database after a commit (engine/audit_anchor.py)
audit_anchor._anchor_committed, audit_anchor._nothing_to_anchor
db._guards_after_create_all  # metadata.create_all hook: the append-only triggers
db.drop_audit_guards  # the migration's downgrade (migrations/ is not scanned) and tests

# ---------------------------------------------------------------- the report's way upward
cmd_report  # cli/report.py, named by string in cli/parser.py
review_report.routes  # registered by portal/app.py
_.review_page, _.review_post, _.review_file  # its FastAPI routes
ConsolidatedReport.signed_by  # who uploaded the signed file (the audit row has it too)
register_of  # engine/register_numbers.py: the register of a body and year; tests read it
ReportNumber.assigned_at, ReportNumber.assigned_by  # the register's record of who took a number
# The Resume form's fields (Prefect builds the form from the model; read by getattr)
ReportApprovalInput.ket_qua, ReportApprovalInput.ton_tai, ReportApprovalInput.nguyen_nhan
ReportApprovalInput.phuong_huong, ReportApprovalInput.kien_nghi
_.total_tokens  # portal/app.py sets the request threads; anyio reads it
