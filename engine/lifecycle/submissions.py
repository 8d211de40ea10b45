"""Recording a unit's answer: the rules for when a version may be sent, the checks of
its values, and the insert (the portal's hot path: plain statements built once).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from contextlib import nullcontext
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import Table, bindparam, func, insert, or_, select
from sqlalchemy.orm import Session, make_transient_to_detached

from engine.applicability import unit_template
from engine.audit import write_audit
from engine.calendar import (
    end_of_day,
)
from engine.definitions_cache import plan_for_key
from engine.errors import KehoachError, NotFound
from engine.schema import DeliverableKind, FieldType, Plan, TemplateField
from engine.states import (
    CycleStatus,
    ObligationStatus,
    ReviewState,
)
from engine.store.models import (
    Cycle,
    Obligation,
    PlanInstance,
    PlanVersion,
    StoredFile,
    Submission,
)
from engine.values import (
    TEXT_MAX_LENGTH,
    InvalidValue,
    check_text,
    normalised,
    validate_values,
    xml_safe,
)

FORM_ERROR = "_form"  # key of SubmissionRejected.errors for problems not tied to a field


class SubmissionRejected(KehoachError):
    """A submission that cannot be recorded; ``errors`` maps field ids to Vietnamese messages."""

    def __init__(self, errors: Mapping[str, str]) -> None:
        self.errors = dict(errors)
        super().__init__("; ".join(self.errors.values()))


def submission_refusal(
    obligation: Any, history: Sequence[Submission], now: dt.datetime
) -> str | None:
    """Why a new version may not be sent now (Vietnamese), or None when it may.

    A unit may send again before the deadline (versions are kept) and after its report
    was returned for revision; never after it was accepted or waived.

    ``history``: the versions sent (anything with ``version`` and ``review_state``).
    Only the newest version and the accepted ones decide, so the rows of
    :func:`deciding_versions` give the same answer as the whole history.
    """
    newest = max(history, key=lambda s: s.version, default=None)
    if obligation.status is ObligationStatus.WAIVED:
        return "Nghĩa vụ này đã được miễn; không cần gửi báo cáo."
    if obligation.status is ObligationStatus.ACCEPTED or any(
        s.review_state == ReviewState.ACCEPTED for s in history
    ):
        return "Báo cáo đã được chấp nhận; không thể gửi lại."
    if (
        newest is not None
        and newest.review_state != ReviewState.RETURNED
        and now > end_of_day(obligation.due_date)
    ):
        return "Đã quá hạn; chỉ gửi lại được khi báo cáo bị trả lại để hoàn thiện."
    return None


# The statements of record_submission are built once, in plain SQL expressions on the
# tables: on SQLite, building a statement or going through the ORM costs more than the
# query itself, and a portal POST runs each of them.
_submissions = cast(Table, Submission.__table__)


_NEWEST_VERSION = (
    select(func.max(_submissions.c.version))
    .where(_submissions.c.obligation_id == bindparam("obligation_id"))
    .scalar_subquery()
)


_DECIDING_VERSIONS = select(_submissions.c.version, _submissions.c.review_state).where(
    _submissions.c.obligation_id == bindparam("obligation_id"),
    or_(
        _submissions.c.version == _NEWEST_VERSION,
        _submissions.c.review_state == ReviewState.ACCEPTED,
    ),
)


def deciding_versions(session: Session, obligation_id: int) -> Sequence[Any]:
    """(version, review_state) of the versions :func:`submission_refusal` depends on: the
    newest one and any accepted one (not the whole history, which grows with each
    resubmission); empty when nothing was sent."""
    session.flush()  # a plain SQL statement does not autoflush
    return session.execute(_DECIDING_VERSIONS, {"obligation_id": obligation_id}).all()


# What record_submission needs of the obligation, and its plan version's cache key, in
# one SELECT (the row stays locked until commit on databases with row locks).
_obligations = Obligation.__table__


_cycles = Cycle.__table__


_instances = PlanInstance.__table__


_plan_versions = PlanVersion.__table__


_OBLIGATION_FOR_UPDATE = (
    select(
        _obligations.c.id,
        _obligations.c.cycle_id,
        _obligations.c.unit_id,
        _obligations.c.deliverable_id,
        _obligations.c.status,
        _obligations.c.due_date,
        _obligations.c.transferred_from,
        _obligations.c.assignment_ids,
        _cycles.c.status.label("cycle_status"),
        _plan_versions.c.id.label("plan_version_id"),
        _plan_versions.c.content_hash.label("plan_hash"),
        _plan_versions.c.registry_id.label("plan_registry_id"),
    )
    .join(_cycles, _cycles.c.id == _obligations.c.cycle_id)
    .join(_instances, _instances.c.id == _cycles.c.instance_id)
    .join(_plan_versions, _plan_versions.c.id == _instances.c.plan_version_id)
    .where(_obligations.c.id == bindparam("obligation_id"))
    .with_for_update(of=_obligations)
)


_INSERT_SUBMISSION = insert(_submissions)


_CYCLE_STATUS = select(_cycles.c.status).where(_cycles.c.id == bindparam("cycle_id"))


def _insert_submission(session: Session, **row: Any) -> Submission:
    """INSERT one submission at once and return it as a persistent object of ``session``.

    The same row and object as ``session.add`` + ``flush()``, without the unit of work's
    cost (the larger part of a portal POST): pending objects are flushed first, so rows
    keep their order; a clashing version raises IntegrityError here, as a flush would.
    """
    session.flush()
    key = session.connection().execute(_INSERT_SUBMISSION, row).inserted_primary_key
    assert key is not None
    submission = Submission(
        id=key[0],
        review_reason=None,
        reviewed_at=None,
        reviewed_by=None,
        **row,
    )
    make_transient_to_detached(submission)  # every attribute set counts as loaded
    session.add(submission)  # persistent: later changes are flushed as usual
    return submission


@dataclass(frozen=True)
class LockedObligation:
    """An obligation its caller read and locked in the session's transaction (the
    portal opens the link and stores the answer in one: portal.posting): its row (the
    columns of ``obligations`` and ``cycle_status``), its plan, and the versions that
    decide (:func:`deciding_versions`, read after the lock was taken)."""

    row: Any
    plan: Plan
    history: Sequence[Any]


def _locked_obligation(
    session: Session, obligation_id: int, locked: LockedObligation | None
) -> tuple[Any, Plan, Sequence[Any]]:
    """(row, plan, deciding versions) of ``obligation_id``: ``locked``'s when the caller
    already read and locked it, else read here with the row locked (FOR UPDATE)."""
    if locked is not None:
        if locked.row.id != obligation_id:
            raise ValueError(f"locked obligation {locked.row.id} is not {obligation_id}")
        return locked.row, locked.plan, locked.history
    obligation = session.execute(_OBLIGATION_FOR_UPDATE, {"obligation_id": obligation_id}).first()
    if obligation is None:
        raise NotFound(f"obligation {obligation_id} does not exist")
    # Only the plan is needed here (no registry, no calendar): cached per process.
    plan = plan_for_key(session, obligation.plan_version_id, obligation.plan_hash)
    return obligation, plan, deciding_versions(session, obligation.id)


def record_submission(
    session: Session,
    obligation_id: int,
    *,
    values: Mapping[str, Any] | None,
    summary: str | None = None,
    file_ids: Sequence[int] = (),
    source: str = "portal",
    now: dt.datetime,
    actor: str | None = None,
    remote_addr: str | None = None,
    strict: bool = True,
    form_key: str | None = None,
    locked: LockedObligation | None = None,
) -> Submission:
    """Store a new version of a unit's answer; raise SubmissionRejected when it cannot be.

    Reports are validated against their template, sub-plans need a summary and at least
    one file.  A unit may send again before the deadline (every version is kept) and
    after its report was returned for revision; after it was accepted, or once its
    cycle is closed, no more.
    ``strict=False`` (reports handed upward) keeps only the values that fit.
    ``form_key``: the portal form's idempotency key (unique per obligation).
    ``locked``: the obligation as its caller read and locked it in this transaction
    (not read again); it must be ``obligation_id``'s.
    """
    session.flush()  # a plain SQL statement does not autoflush
    obligation, plan, history = _locked_obligation(session, obligation_id, locked)
    deadline_at = end_of_day(obligation.due_date)
    refused = submission_refusal(obligation, history, now)
    if _cycle_closed(session, obligation):
        refused = (
            "Kỳ báo cáo đã đóng; không nhận thêm báo cáo. "
            "Nếu cần gửi, đề nghị cơ quan tổng hợp mở lại kỳ (kehoach reopen)."
        )
    if refused:
        raise SubmissionRejected({FORM_ERROR: refused})

    text, summary_error = _summary_text(summary, strict)
    ids = [int(i) for i in file_ids]
    clean, errors = _checked(session, plan, obligation, values, text, ids, strict)
    if summary_error:
        errors["summary"] = summary_error  # rather than "required": it was given
    if errors:
        raise SubmissionRejected(errors)

    version = (max((s.version for s in history), default=0)) + 1
    submission = _insert_submission(
        session,
        obligation_id=obligation.id,
        version=version,
        values=clean,
        summary=text,
        file_ids=ids,
        submitted_at=now,
        source=source,
        on_time=now <= deadline_at,
        review_state=ReviewState.RECEIVED,
        intake_done=False,
        form_key=form_key,
    )
    write_audit(
        session,
        "submission.recorded",
        at=now,
        actor=actor or f"unit:{obligation.unit_id}",
        plan_id=plan.id,
        obligation_id=obligation.id,
        remote_addr=remote_addr,
        records=submission,  # its content hash: consolidation checks the figures by it
        submission_id=submission.id,
        version=version,
        source=source,
        on_time=submission.on_time,
    )
    return submission


def _cycle_closed(session: Session, obligation: Any) -> bool:
    cycle_status = obligation.cycle_status
    if session.get_bind().dialect.name == "postgresql":
        # The SELECT above may have waited for the row lock of a closing (which locks the
        # cycle's obligations) while its snapshot still said 'open': read the status again
        # now that the lock is held (READ COMMITTED: a new snapshot per statement).
        cycle_status = session.scalar(_CYCLE_STATUS, {"cycle_id": obligation.cycle_id})
    return cycle_status == CycleStatus.CLOSED


# The summary is checked as a text field of this name would be (engine.values).
_SUMMARY_FIELD = TemplateField(
    id="summary", label="Tóm tắt kế hoạch", type=FieldType.text, unit=None
)


def _summary_text(summary: str | None, strict: bool) -> tuple[str | None, str | None]:
    """(the summary as stored, why it is refused); ``strict=False`` cleans it instead."""
    if summary is None or not str(summary).strip():
        return None, None
    try:
        return check_text(_SUMMARY_FIELD, summary, TEXT_MAX_LENGTH) or None, None
    except InvalidValue as exc:
        if strict:
            return None, exc.message
        return xml_safe(normalised(str(summary))).strip()[:TEXT_MAX_LENGTH] or None, None


def _checked(
    session: Session,
    plan: Plan,
    obligation: Any,
    values: Mapping[str, Any] | None,
    text: str | None,
    file_ids: list[int],
    strict: bool,
) -> tuple[dict[str, Any], dict[str, str]]:
    """(the values that fit, errors by field): reports against their template, sub-plans
    need a summary and a file, and every file must exist."""
    errors: dict[str, str] = {}
    clean: dict[str, Any] = {}
    deliverable = plan.deliverable(obligation.deliverable_id)
    if deliverable is not None and deliverable.kind is DeliverableKind.report:
        template = plan.template(deliverable.template or "")
        if template is None:  # pragma: no cover - the loader checks templates
            raise NotFound(f"report template '{deliverable.template}' is not in the plan")
        # Only the fields that apply to the unit are checked (and kept): engine.applicability.
        template = unit_template(
            plan, template, obligation, obligation.plan_registry_id, lambda: nullcontext(session)
        )
        clean, errors = validate_values(template, values or {})
        if not strict:
            errors = {}
    elif deliverable is not None and deliverable.kind is DeliverableKind.sub_plan and strict:
        if not text:
            errors["summary"] = "Trường 'Tóm tắt kế hoạch' là bắt buộc"
        if not file_ids:
            errors["files"] = "Cần đính kèm ít nhất một tệp kế hoạch"
    if file_ids:
        known = set(session.scalars(select(StoredFile.id).where(StoredFile.id.in_(file_ids))))
        if set(file_ids) - known:
            errors["files"] = "Tệp đính kèm không tồn tại; hãy tải lên lại"
    return clean, errors
