"""Builders for the lifecycle tests: a migrated database holding small real definitions.

``tests/data/lifecycle/`` holds a registry (a district whose communes c and e merge into
a new commune on 1/7/2027), a district plan shaped like the seed (reports 10/9 through
the district police, consolidation 25/9, upward to the province) and the province's
plan.  ``synthetic_files`` writes a registry and plan of any size for benchmarks.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.calendar import TZ
from engine.config import Settings
from engine.loader import load
from engine.repository import store_catalog
from engine.store import migrate, session_scope
from engine.store.models import Cycle, Obligation, OutboxMessage, PlanInstance

DATA = Path(__file__).parent / "data" / "lifecycle"
DEFINITIONS = Path(__file__).resolve().parents[1] / "plan_definitions"
DISTRICT = "lc-huyen"
PROVINCE = "lc-tinh-plan"
REPORT = "bao-cao-nam"
SUB_PLAN = "ke-hoach-cu-the"
CONSOLIDATION = "tong-hop"


def filled_answer(template) -> dict[str, str]:  # type: ignore[no-untyped-def]
    """Every field of a report template filled with a valid value (as a unit types it)."""
    from engine.schema import FieldType

    values = {}
    for field in template.fields:
        if field.type is FieldType.choice:
            values[field.id] = field.choices[0]
        elif field.type is FieldType.text:
            values[field.id] = "Đã triển khai đầy đủ"
        elif field.type is FieldType.percent:
            values[field.id] = "100"
        elif field.type in (FieldType.integer, FieldType.decimal):
            values[field.id] = "2"
    return values


def vn(year: int, month: int, day: int, hour: int = 9, minute: int = 0) -> dt.datetime:
    """A moment in Viet Nam, as a tz-aware datetime."""
    return dt.datetime(year, month, day, hour, minute, tzinfo=TZ)


def store_files(url: str, *paths: Path) -> None:
    migrate(url)
    catalog = load(list(paths))
    with session_scope(url) as session:
        store_catalog(session, catalog)


def prepared(url: str) -> str:
    """Migrate ``url`` and store the lifecycle registry and both plans."""
    store_files(url, DATA / "registry.yaml", DATA / "province.yaml", DATA / "district.yaml")
    return url


def lc_settings(home: Path) -> Settings:
    return Settings(home=home, portal_secret="kehoach-test-secret-7f3a9c2e4b1d8f60")


def obligations(
    session: Session,
    plan_id: str = DISTRICT,
    *,
    deliverable: str | None = None,
    cycle: str | None = None,
) -> list[Obligation]:
    query = (
        select(Obligation)
        .join(Cycle, Obligation.cycle_id == Cycle.id)
        .join(PlanInstance, Cycle.instance_id == PlanInstance.id)
        .where(PlanInstance.plan_id == plan_id)
        .order_by(Obligation.id)
    )
    if deliverable is not None:
        query = query.where(Obligation.deliverable_id == deliverable)
    if cycle is not None:
        query = query.where(Cycle.key == cycle)
    return list(session.scalars(query))


def obligation(
    session: Session,
    unit: str,
    deliverable: str = REPORT,
    cycle: str = "2027",
    plan_id: str = DISTRICT,
) -> Obligation:
    [found] = [
        o
        for o in obligations(session, plan_id, deliverable=deliverable, cycle=cycle)
        if o.unit_id == unit
    ]
    return found


def outbox(session: Session, kind: str | None = None) -> list[OutboxMessage]:
    query = select(OutboxMessage).order_by(OutboxMessage.id)
    if kind is not None:
        query = query.where(OutboxMessage.kind == kind)
    return list(session.scalars(query))


def outbox_keys(session: Session) -> set[str]:
    return set(session.scalars(select(OutboxMessage.idempotency_key)))


GOOD_REPORT = {
    "so-vu-chay": "2",
    "thiet-hai": "1.234,5",
    "ty-le-hoc-tap": "90",
    "so-lop": "3",
    "danh-gia": "Tốt",
    "ngay-dien-tap": "15/8/2027",
    "ghi-chu": "Đã rà soát 12 đội dân phòng",
}


# ---------------------------------------------------------------- synthetic scale


def synthetic_files(folder: Path, provinces: int = 34, communes: int = 103) -> list[Path]:
    """A registry of ``provinces`` × ``communes`` commune committees and a plan for all.

    The plan assigns every commune (one group) a sub-plan and a yearly report, with one
    consolidation at the ministry: 34 × 103 = 3,502 units, 7,004 + 1 obligations a year.
    """
    folder.mkdir(parents=True, exist_ok=True)
    lines = [
        "kind: registry",
        "id: quy-mo",
        "name: Đăng ký tổng hợp (quy mô)",
        "units:",
        "  - {id: bo, name: Bộ Công an, kind: ministry, level: central, emails: [bo@scale.example]}",
        "  - {id: chinh-phu, name: Chính phủ, kind: government, level: central, "
        "emails: [chinhphu@scale.example]}",
    ]
    for p in range(1, provinces + 1):
        lines.append(
            f"  - {{id: tinh-{p}, name: Ủy ban nhân dân tỉnh số {p}, kind: province-committee, "
            f"level: province, emails: [tinh{p}@scale.example]}}"
        )
        for c in range(1, communes + 1):
            lines.append(
                f"  - {{id: xa-{p}-{c}, name: Ủy ban nhân dân xã số {c} tỉnh {p}, "
                f"kind: commune-committee, level: commune, parent: tinh-{p}, "
                f"emails: [xa{p}x{c}@scale.example]}}"
            )
    lines += [
        "groups:",
        "  - {id: moi-xa, name: Tất cả các xã, kinds: [commune-committee]}",
    ]
    registry = folder / "registry.yaml"
    registry.write_text("\n".join(lines) + "\n", encoding="utf-8")
    plan = folder / "plan.yaml"
    plan.write_text(
        """kind: plan
id: quy-mo-3500
registry: quy-mo
as_of: 2026-07-01
document:
  type: KH
  issuer_unit: bo
  summary: Kế hoạch thử quy mô toàn quốc
  signer: {name: Nguyễn Văn Thử, title: BỘ TRƯỞNG}
assignments:
  - id: cac-xa
    section: II.1
    heading: UBND các xã, phường, đặc khu
    to: {group: moi-xa}
    tasks: [{id: t1, text: Thực hiện kế hoạch}]
deliverables:
  - id: ke-hoach
    kind: sub_plan
    title: Kế hoạch cụ thể
    routing: {to: bo}
    deadline: {rule: after_activation, days: 30, policy: next_working_day}
  - id: bao-cao
    kind: report
    title: Báo cáo năm
    frequency: yearly
    routing: {to: bo}
    deadline: {rule: yearly, day: 10, month: 9, policy: next_working_day}
    template: mau
consolidations:
  - id: tong-hop
    consolidates: bao-cao
    by: bo
    routing: {to: chinh-phu}
    deadline: {rule: yearly, day: 25, month: 9, policy: next_working_day}
report_templates:
  - id: mau
    title: Mẫu báo cáo
    fields:
      - {id: so-vu, label: Số vụ, type: integer, aggregate: sum}
""",
        encoding="utf-8",
    )
    return [registry, plan]
