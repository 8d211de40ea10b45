"""What a supporting unit (phối hợp) of a tracked task contributes, through its own link
(issue 10, item 1: "supporting units are told and can contribute, the lead answers").

Each supporting unit's ``task_support`` email carries a link of its own
(:func:`engine.links.support_link`, signed apart from the lead's, so it opens only the
contribution page and can never answer the task). A contribution (text, at most one
file) is kept as a unit message of kind ``contribution`` on the lead's obligation
(``unit_messages``, sender the supporting unit, receiver the lead), audited
(``task.contribution``) and mailed to the lead (``task_contribution``, copied to the
sender), in one transaction. The lead's page lists them ("Ý kiến đóng góp của đơn vị
phối hợp"). Once the task is done or its cycle closed, nothing more is taken.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.audit import write_audit
from engine.outbox.kinds import MailKind
from engine.outbox.requests import queue_mail
from engine.outbox.task_mail import supporting_ids
from engine.schema import Plan
from engine.states import CycleStatus, ObligationStatus
from engine.store.models import Obligation, StoredFile, UnitMessage
from engine.tasks import TrackedTask
from engine.unit_messages import MessageRefused
from engine.values import TEXT_MAX_LENGTH, fmt_number, forbidden_character, normalised

KIND = "contribution"
TITLE = "Ý kiến phối hợp thực hiện nhiệm vụ"


def task_of(plan: Plan, obligation: Obligation | object) -> TrackedTask | None:
    """The tracked task ``obligation`` (a lead's duty) answers, or None."""
    deliverable_id = str(getattr(obligation, "deliverable_id", ""))
    task = plan.tracked.task_of(deliverable_id)
    return task if task is not None and task.id == deliverable_id else None


def supporting_of(
    session: Session, plan: Plan, registry_id: str, obligation: Obligation | object
) -> list[str]:
    """The units that support the task of ``obligation`` (its lead excluded)."""
    task = task_of(plan, obligation)
    if task is None or not task.supporting:
        return []
    lead = getattr(obligation, "unit_id", None)
    return [u for u in supporting_ids(session, plan, registry_id, task) if u != lead]


def closed_reason(
    status: str, cycle_status: str, now: dt.datetime, until: dt.datetime
) -> str | None:
    """Why no contribution is taken any more (Vietnamese), or None while it is."""
    if ObligationStatus(status).done:
        return (
            "Đơn vị chủ trì đã báo cáo kết quả thực hiện nhiệm vụ này; cổng không nhận thêm "
            "ý kiến phối hợp. Nếu cần bổ sung, vui lòng liên hệ trực tiếp đơn vị chủ trì."
        )
    if CycleStatus(cycle_status) == CycleStatus.CLOSED or now > until:
        return (
            "Kỳ theo dõi của nhiệm vụ này đã đóng; cổng không nhận thêm ý kiến phối hợp. "
            "Nếu cần bổ sung, vui lòng liên hệ trực tiếp đơn vị chủ trì."
        )
    return None


def clean_text(text: str | None) -> str:
    """The contribution's text as kept (NFC, stripped), within engine.values' bounds for
    a text field; MessageRefused (Vietnamese) otherwise."""
    raw = text or ""
    if len(raw) > 2 * TEXT_MAX_LENGTH + 1000:  # far too long: refused before any work
        raise MessageRefused(f"Nội dung dài quá {fmt_number(TEXT_MAX_LENGTH)} ký tự.")
    value = normalised(raw).strip()
    if not value:
        raise MessageRefused("Chưa có nội dung ý kiến phối hợp.")
    bad = forbidden_character(value)
    if bad is not None:
        position, char = bad
        raise MessageRefused(
            f"Nội dung có ký tự không hợp lệ (mã U+{ord(char):04X}, ở vị trí "
            f"{fmt_number(position)}); vui lòng xoá ký tự đó rồi gửi lại."
        )
    if len(value) > TEXT_MAX_LENGTH:
        raise MessageRefused(
            f"Nội dung dài quá {fmt_number(TEXT_MAX_LENGTH)} ký tự (hiện có "
            f"{fmt_number(len(value))}); vui lòng rút gọn."
        )
    return value


def contribute(
    session: Session,
    obligation: Obligation,
    unit_id: str,
    *,
    text: str,
    stored_file: StoredFile | None,
    plan_id: str,
    now: dt.datetime,
    remote_addr: str | None = None,
    form_key: str | None = None,
) -> UnitMessage:
    """Keep, audit and mail one contribution of ``unit_id`` to the lead of ``obligation``
    (``text`` already cleaned by :func:`clean_text`; the caller checked the link and
    that this form was not taken before: :func:`posted_before`)."""
    message = UnitMessage(
        plan_id=plan_id,
        cycle_id=obligation.cycle_id,
        obligation_id=obligation.id,
        unit_id=unit_id,
        to_unit_id=obligation.unit_id,
        kind=KIND,
        subject=TITLE,
        text=text,
        created_at=now,
        file_id=stored_file.id if stored_file is not None else None,
        form_key=form_key,
    )
    session.add(message)
    session.flush()
    write_audit(
        session,
        "task.contribution",
        at=now,
        plan_id=plan_id,
        obligation_id=obligation.id,
        actor=f"unit:{unit_id}",
        remote_addr=remote_addr,
        message_id=message.id,
        task=obligation.deliverable_id,
        to=obligation.unit_id,
        length=len(text),
        file_id=message.file_id,
        file_sha256=stored_file.sha256 if stored_file is not None else None,
    )
    queue_mail(
        session,
        obligation,
        MailKind.TASK_CONTRIBUTION,
        step=f"m{message.id}",
        extra={
            "contributor_id": unit_id,
            "contribution_text": text,
            "contribution_file": stored_file.original_name if stored_file is not None else None,
        },
        now=now,
    )
    return message


def posted_before(
    session: Session, obligation_id: int, unit_id: str, form_key: str
) -> UnitMessage | None:
    """The contribution already kept from the same form (a double click, a reload)."""
    return session.scalar(
        select(UnitMessage).where(
            UnitMessage.obligation_id == obligation_id,
            UnitMessage.unit_id == unit_id,
            UnitMessage.form_key == form_key,
        )
    )


def contributions_to(session: Session, obligation_id: int) -> list[UnitMessage]:
    """The contributions to the task of the lead's ``obligation_id``, oldest first."""
    query = (
        select(UnitMessage)
        .where(UnitMessage.obligation_id == obligation_id, UnitMessage.kind == KIND)
        .order_by(UnitMessage.created_at, UnitMessage.id)
    )
    return list(session.scalars(query))


def contributions_of(session: Session, obligation_id: int, unit_id: str) -> list[UnitMessage]:
    """What ``unit_id`` contributed to that task so far, oldest first."""
    return [m for m in contributions_to(session, obligation_id) if m.unit_id == unit_id]
