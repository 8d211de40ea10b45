"""Reports on request (báo cáo đột xuất, Nghị định 09/2019/NĐ-CP): a deliverable with
``frequency: on_request`` has no schedule; each request makes one cycle of it.

``request_report`` creates the cycle (key ``2026-DX1``: đột xuất lần 1 năm 2026) with
its dates on the row (opened today, due on the requested day), one obligation per unit
asked (default: every unit the deliverable is owed by), the consolidation duty of each
consolidation of that report (``days`` after the units' date), the assignment emails
with the reason, and an audit row, in one transaction. From then on the cycle is like
any other: reminders and overdue marks by the sweep, answers through the portal,
consolidation on its date, closing.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from engine.audit import write_audit
from engine.calendar import REQUEST_MARK, CycleSpec, Deadline, deadline, local_day
from engine.context import PlanContext, plan_context
from engine.errors import KehoachError, NotFound
from engine.lifecycle.activation import _check_not_before_plan, _first_sweep_days
from engine.lifecycle.duties import _Desired, _holder, _members, _not_held, _route
from engine.outbox.requests import queue_many
from engine.periods import counting_from, effective_date
from engine.repository import plan_version
from engine.schema import Deliverable, Frequency
from engine.states import CycleStatus, InstanceStatus
from engine.store.models import Cycle, Obligation, PlanInstance
from engine.vntext import cycle_label, short_date

MAX_REASON = 2000


class RequestError(KehoachError):
    """A request that cannot be made as asked (nothing is written)."""


@dataclass(frozen=True)
class RequestResult:
    plan_id: str
    deliverable_id: str
    cycle_key: str
    label: str
    due: dt.date
    due_reason: str | None
    units: list[str]
    consolidations: list[str]
    queued: int


def _deliverable(ctx: PlanContext, deliverable_id: str) -> Deliverable:
    found = ctx.plan.deliverable(deliverable_id)
    asked = [d.id for d in ctx.plan.deliverables if d.frequency is Frequency.on_request]
    if found is None:
        raise NotFound(
            f"kế hoạch '{ctx.plan_id}' không có báo cáo '{deliverable_id}'; báo cáo theo yêu "
            f"cầu của kế hoạch: {', '.join(asked) or 'không có'}"
        )
    if found.frequency is not Frequency.on_request:
        raise RequestError(
            f"'{deliverable_id}' là báo cáo {found.frequency.value}, có lịch riêng, không "
            "yêu cầu đột xuất được; báo cáo theo yêu cầu (frequency: on_request): "
            + (", ".join(asked) or "kế hoạch không có")
        )
    return found


def _instance(session: Session, plan_id: str) -> PlanInstance:
    instance = session.scalar(
        select(PlanInstance)
        .where(PlanInstance.plan_id == plan_id, PlanInstance.status == InstanceStatus.ACTIVE)
        .order_by(PlanInstance.id.desc())
        .limit(1)
    )
    if instance is None:
        raise RequestError(
            f"kế hoạch '{plan_id}' chưa được kích hoạt; chạy `kehoach activate {plan_id}` trước"
        )
    return instance


def _asked(
    ctx: PlanContext,
    deliverable: Deliverable,
    units: list[str] | None,
    group: str | None,
    day: dt.date,
) -> dict[str, list[str]]:
    """Unit id -> assignment ids of the units asked: all owing the deliverable, or the
    ones named (each must owe it, so its routing and assignment are the plan's)."""
    members = _members(ctx, deliverable)
    if group is not None:
        if group not in ctx.view.groups:
            known = ", ".join(sorted(ctx.view.groups)) or "không có"
            raise NotFound(f"không có nhóm '{group}' (các nhóm: {known})")
        units = [u.id for u in ctx.view.expand_group(group, day)]
        if not units:
            raise RequestError(f"nhóm '{group}' không có đơn vị nào vào ngày {short_date(day)}")
    if not units:
        return members
    outside = [u for u in units if u not in members]
    if outside:
        raise RequestError(
            f"{', '.join(outside)} không được giao '{deliverable.id}' trong kế hoạch (không "
            f"thuộc phân công nào của báo cáo này); chọn trong: {', '.join(members)}"
        )
    return {u: members[u] for u in dict.fromkeys(units)}


def _next_key(session: Session, plan_id: str, year: int) -> str:
    keys = session.scalars(
        select(Cycle.key)
        .join(PlanInstance, Cycle.instance_id == PlanInstance.id)
        .where(PlanInstance.plan_id == plan_id, Cycle.key.like(f"{year}{REQUEST_MARK}%"))
    ).all()
    numbers = [
        int(k.split(REQUEST_MARK, 1)[1]) for k in keys if k.split(REQUEST_MARK, 1)[1].isdigit()
    ]
    return f"{year}{REQUEST_MARK}{max(numbers, default=0) + 1}"


def _checked_reason(reason: str | None) -> str:
    text = " ".join((reason or "").split())
    if not text:
        raise RequestError("cần --reason: nội dung, lý do yêu cầu báo cáo (gửi kèm thư)")
    if len(text) > MAX_REASON:
        raise RequestError(f"--reason dài {len(text)} ký tự; tối đa {MAX_REASON}")
    return text


def _want_duties(
    ctx: PlanContext,
    cycle: Cycle,
    deliverable: Deliverable,
    asked: dict[str, list[str]],
    dl: Deadline,
    counting: dt.date,
    desired: _Desired,
) -> list[str]:
    """The units' obligations and each consolidation's duty (days after the units' moved
    date); returns the consolidation ids."""
    due = dl.nominal
    routing = (_route(ctx, deliverable.routing.to, due), _route(ctx, deliverable.routing.via, due))
    for unit_id, assignment_ids in asked.items():
        owner = _holder(ctx, unit_id, due) or unit_id
        desired.want(cycle, owner, deliverable.id, "report", dl, assignment_ids, routing, unit_id)
    duties = [c for c in ctx.plan.consolidations if c.consolidates == deliverable.id]
    after_units = CycleSpec(cycle.key, cycle.period_start, dl.due)
    for consolidation in duties:
        cdl = deadline(consolidation.deadline, after_units, counting, ctx.calendar)
        desired.want(
            cycle,
            _holder(ctx, consolidation.by, cdl.nominal) or consolidation.by,
            consolidation.id,
            "consolidation",
            cdl,
            [],
            (
                _route(ctx, consolidation.routing.to, cdl.nominal),
                _route(ctx, consolidation.routing.via, cdl.nominal),
            ),
            consolidation.by,
        )
    return [c.id for c in duties]


def request_report(
    session: Session,
    plan_id: str,
    deliverable_id: str,
    *,
    due: dt.date,
    reason: str,
    now: dt.datetime,
    units: list[str] | None = None,
    group: str | None = None,
    by: str = "operator",
) -> RequestResult:
    """One request of an on-request report: its cycle, obligations and emails (above)."""
    reason = _checked_reason(reason)
    if units and group:
        raise RequestError("ghi --units hoặc --group, không cả hai")
    ctx = plan_context(session, plan_version(session, plan_id))
    _deliverable(ctx, deliverable_id)
    instance = _instance(session, plan_id)
    ctx = plan_context(session, instance.plan_version)  # requests follow the running version
    deliverable = _deliverable(ctx, deliverable_id)
    today = local_day(now)
    start = effective_date(ctx.plan)
    if due < today or due < start:
        raise RequestError(
            f"hạn {short_date(due)} đã qua (hôm nay {short_date(today)}"
            + (f", kế hoạch có hiệu lực từ {short_date(start)}" if due < start else "")
            + "); ghi một ngày từ hôm nay trở đi"
        )
    asked = _asked(ctx, deliverable, units, group, today)
    key = _next_key(session, plan_id, today.year)
    counting = counting_from(ctx.plan, instance.activated_on)
    dl = deadline(deliverable.deadline, CycleSpec(key, today, due), counting, ctx.calendar)
    cycle = Cycle(
        instance_id=instance.id,
        key=key,
        period_start=today,
        period_end=due,
        status=CycleStatus.OPEN,
    )
    session.add(cycle)
    session.flush()
    desired = _Desired(now)
    duties = _want_duties(ctx, cycle, deliverable, asked, dl, counting, desired)
    rows, _existing = _not_held(session, {key: cycle}, desired)
    _check_not_before_plan(ctx.plan, rows)
    _first_sweep_days(ctx, instance, rows, {cycle.id: key}, today)
    created = list(session.scalars(insert(Obligation).returning(Obligation), rows))
    extra = {"request_reason": reason, "request_by": by}
    queued = queue_many(session, [(o, "assignment", "", extra) for o in created], now)
    write_audit(
        session,
        "request.created",
        at=now,
        plan_id=plan_id,
        actor=by,
        cycle=key,
        deliverable=deliverable.id,
        due=due.isoformat(),
        reason=reason,
        units=sorted(asked),
        consolidations=duties,
    )
    return RequestResult(
        plan_id=plan_id,
        deliverable_id=deliverable.id,
        cycle_key=key,
        label=cycle_label(key),
        due=dl.due,
        due_reason=dl.reason,
        units=list(asked),
        consolidations=duties,
        queued=queued,
    )
