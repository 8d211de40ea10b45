"""Open work follows successors: what activation, the sweep and ``kehoach registry
apply`` do about units that ended, said once in Vietnamese, and the one email an heir
gets about what it inherited.

Rules (issue 11):
- no obligation, email or link is created for a unit outside its validity: activation
  gives a duty to the unit's heirs (engine.registry.RegistryView.heirs), and when the
  registry names none the duty is *held* (created for nobody) and said so;
- an open obligation of a unit that ended moves to its heir on the change's date (the
  sweep, or ``registry apply`` for a date already passed), recorded on the audit chain
  ('obligation.transferred'); closed obligations stay with the old unit;
- the heir gets one email per plan and day listing what it inherited, from whom, by
  when, each with its own link.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.errors import KehoachError
from engine.registry import RegistryView
from engine.vntext import short_date

if TYPE_CHECKING:
    from engine.context import PlanContext
    from engine.store.models import Obligation

# Exit code of a command that would leave work with nobody (CLI; documented in README).
EXIT_HELD = 5


class WorkHeld(KehoachError):
    """Work of a unit that ended would be left with nobody (no successor recorded)."""

    exit_code = EXIT_HELD


@dataclass
class Ended:
    """An assigned unit no longer valid when one of its duties falls due."""

    first_day: dt.date  # the first deadline it misses
    heirs: list[str]
    deliverables: set[str] = field(default_factory=set)


def note_ended(
    ended: dict[str, Ended], unit_id: str, day: dt.date, heirs: list[str], deliverable_id: str
) -> None:
    found = ended.setdefault(unit_id, Ended(day, list(heirs)))
    found.first_day = min(found.first_day, day)
    found.heirs += [h for h in heirs if h not in found.heirs]
    found.deliverables.add(deliverable_id)


def held_units(ended: dict[str, Ended]) -> list[str]:
    return sorted(unit_id for unit_id, e in ended.items() if not e.heirs)


def _name(view: RegistryView, unit_id: str) -> str:
    unit = view.unit(unit_id)
    return unit.name if unit is not None else unit_id


def _since(view: RegistryView, unit_id: str) -> str:
    unit = view.unit(unit_id)
    if unit is None or unit.valid_to is None:
        return "không có trong danh bạ"
    return f"không còn từ {short_date(unit.valid_to + dt.timedelta(days=1))}"


def ended_notes(view: RegistryView, ended: dict[str, Ended]) -> list[str]:
    """One Vietnamese line per heir (who took over from whom) and one for the units whose
    work is held because the registry names no successor."""
    by_heirs: dict[tuple[str, ...], list[str]] = {}
    for unit_id, info in ended.items():
        by_heirs.setdefault(tuple(info.heirs), []).append(unit_id)
    lines = []
    for heirs, units in sorted(by_heirs.items(), key=lambda kv: (not kv[0], kv[0])):
        names = "; ".join(f"{_name(view, u)} ({_since(view, u)})" for u in sorted(units))
        if heirs:
            lines.append(f"việc chuyển cho {', '.join(_name(view, h) for h in heirs)}: {names}")
        else:
            lines.append(
                f"{len(units)} đơn vị đã không còn mà danh bạ chưa nêu đơn vị kế thừa — việc "
                f"của họ được giữ lại chờ quản trị (không tạo nghĩa vụ, không gửi email): "
                f"{names}. Ghi đơn vị kế thừa bằng `kehoach registry apply TỆP`, rồi kích "
                "hoạt lại kế hoạch"
            )
    return lines


def refuse_if_held(held: Sequence[str], what: str) -> None:
    """The CLI's exit: work left with nobody is an error the administrator must act on."""
    if held:
        raise WorkHeld(
            f"{what}: việc của {len(held)} đơn vị đã không còn không có ai nhận (xem dòng "
            "lưu ý ở trên); mã thoát khác 0"
        )


# ---------------------------------------------------------------- the heir's email


def queue_inheritance(
    session: Session,
    ctx: PlanContext,
    moved: Sequence[tuple[Obligation, str]],
    now: dt.datetime,
) -> list[str]:
    """One email per heir about the obligations it took over (``moved``: obligation and
    the unit it came from); returns the new outbox keys."""
    from engine.config import settings
    from engine.links import obligation_link
    from engine.outbox.builders import issuer_sender
    from engine.outbox.context import ContextBuilder
    from engine.outbox.kinds import MailKind
    from engine.outbox.queue import enqueue
    from engine.store.models import OutboxMessage
    from engine.vntext import cycle_label

    if not moved:
        return []
    conf = settings()
    builder = ContextBuilder(session, conf, now, whole_registry=False)
    # heir → obligation id → (obligation, the units it stands for)
    per_heir: dict[str, dict[int, tuple[Obligation, list[str]]]] = {}
    for obligation, old in moved:
        mine = per_heir.setdefault(obligation.unit_id, {})
        froms = mine.setdefault(obligation.id, (obligation, []))[1]
        if old not in froms:
            froms.append(old)
    new = []
    for heir_id, by_id in sorted(per_heir.items()):
        items = list(by_id.values())
        first = items[0][0]
        cycle = builder.cycle(first.cycle_id)
        version, _plan, plan_info, templates_dir = builder.plan(cycle)
        heir = builder.unit(version.registry_id, heir_id)
        if not heir.get("valid", True):
            continue  # never mail the dead (an heir that ended too: the next move tells)
        rows = []
        names: list[str] = []
        for obligation, froms in sorted(items, key=lambda i: (i[0].due_date, i[0].id)):
            named = [builder.unit(version.registry_id, old)["name"] for old in froms]
            names += [n for n in named if n not in names]
            rows.append(
                {
                    "from_name": ", ".join(named),
                    "from_count": len(named),
                    "title": ctx.title(obligation.deliverable_id),
                    "cycle": cycle_label(builder.cycle(obligation.cycle_id).key),
                    "due": builder.date(obligation.due_date),
                    "overdue": obligation.due_date < builder.today,
                    "link": obligation_link(obligation, conf),
                }
            )
        coming = [r["due"] for r in rows if not r["overdue"]]
        issuer = builder.unit(version.registry_id, plan_info["issuer_unit"])
        context: dict[str, Any] = {
            "kind": MailKind.INHERITED,
            "plan": plan_info,
            "unit": heir,
            "from_names": names,
            "rows": rows,
            "first_due": coming[0] if coming else None,  # the nearest deadline not passed
            "sender": issuer_sender(issuer, plan_info, conf.mail_from_name),
            "contact": None,
            "link": None,
            "today": builder.date(builder.today),
            "templates_dir": templates_dir,
        }
        key = f"inherit:{version.plan_id}:{heir_id}:{builder.today.isoformat()}"
        existed = session.scalar(
            select(OutboxMessage.id).where(OutboxMessage.idempotency_key == key)
        )
        enqueue(
            session,
            kind=MailKind.INHERITED,
            idempotency_key=key,
            to_addrs=heir["emails"],
            context=context,
            obligation_id=first.id,
            plan_id=version.plan_id,
            unit_id=heir_id,
            thread_key="",
            now=now,
            settings=conf,
        )
        if existed is None:
            new.append(key)
    return new


# ---------------------------------------------------------------- moving at apply time


@dataclass
class Moves:
    transferred: dict[str, list[tuple[int, str, str]]] = field(default_factory=dict)  # per plan
    plans: list[str] = field(default_factory=list)
    activated: dict[str, int] = field(default_factory=dict)  # plan → duties created
    rerouted: dict[str, int] = field(
        default_factory=dict
    )  # per plan: duties now routed to or through an heir


def move_open_work(session: Session, registry_id: str, today: dt.date, now: dt.datetime) -> Moves:
    """Move every open obligation of a unit ended by ``today`` to its heir (the sweep's
    transfer, for the plans running on ``registry_id``), then give the held duties of
    their open cycles to the heirs now recorded (activation, idempotent)."""
    from engine.context import plan_context
    from engine.lifecycle.activation import activate
    from engine.lifecycle.sweep import SweepResult, transfer_ended
    from engine.states import OBLIGATION_OPEN, CycleStatus, InstanceStatus
    from engine.store.models import Cycle, Obligation, PlanInstance, PlanVersion

    moves = Moves()
    running = session.execute(
        select(PlanInstance, PlanVersion)
        .join(PlanVersion, PlanInstance.plan_version_id == PlanVersion.id)
        .where(PlanVersion.registry_id == registry_id, PlanInstance.status == InstanceStatus.ACTIVE)
        .order_by(PlanInstance.id)
    ).all()
    for instance, version in running:
        ctx = plan_context(session, version)
        dead = [u.id for u in ctx.view.units.values() if not u.valid_on(today)]
        cycles = session.execute(
            select(Cycle.id, Cycle.key).where(
                Cycle.instance_id == instance.id, Cycle.status != CycleStatus.CLOSED
            )
        ).all()
        if not cycles:
            continue
        moves.plans.append(version.plan_id)
        found = session.scalars(
            select(Obligation)
            .where(
                Obligation.cycle_id.in_([c.id for c in cycles]),
                Obligation.status.in_(OBLIGATION_OPEN),
                Obligation.unit_id.in_(dead),
            )
            .order_by(Obligation.id)
        ).all()
        result = SweepResult(plan_id=version.plan_id, today=today)
        transfer_ended(session, ctx, list(found), today, now, result)
        moves.transferred.setdefault(version.plan_id, []).extend(result.transferred)
        moves.rerouted[version.plan_id] = reroute(session, ctx, [c.id for c in cycles], today, now)
        years = sorted({int(c.key[:4]) for c in cycles if c.key[:4].isdigit()})
        if years:
            again = activate(
                session, version.plan_id, now=now, years=years, version=version.version
            )
            moves.activated[version.plan_id] = again.created
    return moves


def copy_for(
    session: Session, obligation: Obligation, unit_id: str, now: dt.datetime
) -> Obligation | None:
    """A copy of an open duty for another heir of a split (``rule: {each: true}``), or
    None when that heir owes it already."""
    from engine.store.models import Obligation as Row

    held = session.scalar(
        select(Row.id).where(
            Row.cycle_id == obligation.cycle_id,
            Row.unit_id == unit_id,
            Row.deliverable_id == obligation.deliverable_id,
        )
    )
    if held is not None:
        return None
    copied = {
        c: getattr(obligation, c)
        for c in (
            "cycle_id",
            "deliverable_id",
            "kind",
            "assignment_ids",
            "to_unit_id",
            "via_unit_id",
            "nominal_date",
            "due_date",
            "due_reason",
            "status",
            "overdue",
            "next_sweep_on",
        )
    }
    row = Row(
        **copied,
        unit_id=unit_id,
        transferred_from=obligation.transferred_from or obligation.unit_id,
        token_version=1,
        created_at=now,
        updated_at=now,
    )
    session.add(row)
    session.flush()
    return row


def reroute(
    session: Session,
    ctx: PlanContext,
    cycle_ids: Sequence[int],
    today: dt.date,
    now: dt.datetime,
) -> int:
    """Open duties routed to or through a unit that ended ("qua Công an huyện") go to
    or through its heir instead; each change on the audit chain. Returns how many."""
    from sqlalchemy import or_

    from engine.audit import write_audit
    from engine.states import OBLIGATION_OPEN
    from engine.store.models import Obligation as Row

    dead = {
        u.id: heirs[0].id
        for u in ctx.view.units.values()
        if not u.valid_on(today) and (heirs := ctx.view.heirs(u.id, today))
    }
    if not dead or not cycle_ids:
        return 0
    rows = session.scalars(
        select(Row)
        .where(
            Row.cycle_id.in_(list(cycle_ids)),
            Row.status.in_(OBLIGATION_OPEN),
            or_(Row.to_unit_id.in_(list(dead)), Row.via_unit_id.in_(list(dead))),
        )
        .order_by(Row.id)
    ).all()
    for row in rows:
        before = (row.to_unit_id, row.via_unit_id)
        row.to_unit_id = dead.get(row.to_unit_id or "", row.to_unit_id)
        row.via_unit_id = dead.get(row.via_unit_id or "", row.via_unit_id)
        row.updated_at = now
        write_audit(
            session,
            "obligation.rerouted",
            at=now,
            plan_id=ctx.plan_id,
            obligation_id=row.id,
            before={"to": before[0], "via": before[1]},
            after={"to": row.to_unit_id, "via": row.via_unit_id},
        )
    session.flush()
    return len(rows)


def heir_label(view: RegistryView, heir_id: str, old_id: str, day: dt.date) -> str:
    """'Ủy ban nhân dân xã Hạ Lang (kế thừa UBND huyện Hạ Lang)'."""
    from engine.consolidation.figures import brief_name

    heir, old = view.unit_on(heir_id, day), view.unit_on(old_id, day)
    heir_name = heir.name if heir is not None else heir_id
    return f"{heir_name} (kế thừa {brief_name(old.name) if old is not None else old_id})"
