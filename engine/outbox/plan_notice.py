"""The plan itself to the bodies its Nơi nhận names (issue 10): what ``recipients`` does.

A plan's Nơi nhận lists who receives the signed plan: superiors "(B/c)" to be informed
that it was issued, the bodies that carry it out ("để thực hiện"), others "để biết", and
the issuer's own archive ("Lưu"). On the plan's first activation each unit a line names
(its ``units``, and its ``groups``' members on the activation day) gets one email
(``plan_notice``) saying the plan was issued and why it is sent to it, in the words of
its line. Rules:

- ``archive`` (Lưu) lines mail nobody: the issuer files its own copy;
- a unit named by several lines gets one email, in the strongest role (thực hiện, then
  báo cáo, then để biết) and quoting each of its lines;
- the issuing body is not sent its own plan; a unit that owes something under the plan
  is told by its assignment emails (its links and deadlines), not a second time here;
- a unit that does not exist on the activation day (abolished, not yet created) and a
  unit with no email address get nothing, and the activation says so once;
- the key ``plan-notice:{plan}:{unit}`` sends it once per plan, whatever its versions.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.calendar import local_day
from engine.config import settings
from engine.context import PlanContext
from engine.outbox.builders import contact_of, issuer_sender
from engine.outbox.context import ContextBuilder, _templates_dir, plan_info
from engine.outbox.kinds import MailKind
from engine.outbox.queue import enqueue
from engine.render_plan import recipient_units
from engine.store.models import Cycle, Obligation, PlanInstance

# Strongest first: a unit in an action line and an information line is asked to act.
ROLES = ("action", "report", "information")
ROLE_WORDS = {"action": "để thực hiện", "report": "để báo cáo", "information": "để biết"}


@dataclass
class Notices:
    """What the plan's Nơi nhận sent: new outbox keys, and what was not sent and why."""

    keys: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def _owing(session: Session, instance: PlanInstance) -> set[str]:
    """Units that owe something under the instance (told by their assignments)."""
    return set(
        session.scalars(
            select(Obligation.unit_id)
            .join(Cycle, Obligation.cycle_id == Cycle.id)
            .where(Cycle.instance_id == instance.id)
            .distinct()
        )
    )


def named_units(ctx: PlanContext, day: dt.date) -> dict[str, tuple[str, list[str]]]:
    """unit id → (its strongest role, the Nơi nhận lines naming it), in the plan's order;
    archive lines left out."""
    found: dict[str, tuple[str, list[str]]] = {}
    for line in ctx.plan.recipients:
        if line.purpose == "archive":
            continue
        for unit in recipient_units(ctx.view, line, day):
            role, lines = found.get(unit.id, (line.purpose, []))
            if ROLES.index(line.purpose) < ROLES.index(role):
                role = line.purpose
            found[unit.id] = (role, [*lines, line.name])
    return found


def queue_plan_notices(
    session: Session, ctx: PlanContext, instance: PlanInstance, now: dt.datetime
) -> Notices:
    """One ``plan_notice`` email per unit the plan's Nơi nhận names (rules above)."""
    done = Notices()
    plan, day = ctx.plan, local_day(now)
    conf = settings()
    builder = ContextBuilder(session, conf, now, whole_registry=False)
    registry_id = ctx.version.registry_id
    info = plan_info(plan)
    issuer = builder.unit(registry_id, plan.document.issuer_unit)
    skip = _owing(session, instance) | {plan.document.issuer_unit}
    named = {u: said for u, said in named_units(ctx, day).items() if u not in skip}
    builder.prefetch_unit_ids(registry_id, set(named))  # one query, not one per unit
    for unit_id, (role, lines) in named.items():
        unit = builder.unit(registry_id, unit_id)
        said = f"Nơi nhận “{lines[0]}”: {unit['name']}"
        if not unit.get("valid", True):
            heir_id = (unit.get("heir") or {}).get("id")
            heir = builder.unit(registry_id, heir_id)["name"] if heir_id else None
            done.warnings.append(
                f"{said} không còn tồn tại ngày {day:%d/%m/%Y}; không gửi thư kế hoạch"
                + (f" (đơn vị kế thừa: {heir}, không có trong Nơi nhận)" if heir else "")
            )
            continue
        if not unit["emails"]:
            done.warnings.append(
                f"{said} không có địa chỉ email trong danh bạ; không gửi thư kế hoạch"
            )
            continue
        context: dict[str, Any] = {
            "kind": MailKind.PLAN_NOTICE,
            "plan": info,
            "unit": unit,
            "role": role,
            "role_words": ROLE_WORDS[role],
            "lines": lines,
            "headings": [f"{a.section}. {a.heading}" for a in plan.assignments],
            "sender": issuer_sender(issuer, info, conf.mail_from_name),
            "contact": contact_of(issuer),
            "link": None,
            "today": builder.date(day),
            "templates_dir": _templates_dir(plan, ctx.version),
        }
        key = f"plan-notice:{plan.id}:{unit_id}"
        queued = enqueue(
            session,
            kind=MailKind.PLAN_NOTICE,
            idempotency_key=key,
            to_addrs=unit["emails"],
            context=context,
            plan_id=plan.id,
            unit_id=unit_id,
            thread_key="",
            now=now,
            settings=conf,
        )
        if queued.inserted:
            done.keys.append(key)
    return done
