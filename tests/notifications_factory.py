"""Small builder of real rows for notification tests: a registry, a plan, obligations.

The plan is a cut-down Hạ Lang 2022 PCCC plan built with engine.schema models, so
its stored definition is exactly what the loader would store.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from engine.config import Settings
from engine.repository import content_hash
from engine.schema import (
    Assignment,
    Consolidation,
    Deliverable,
    Plan,
    PlanDocument,
    ReportTemplate,
    Routing,
    Signer,
    Target,
    TaskItem,
    TemplateField,
    YearlyDate,
)
from engine.store.models import (
    Cycle,
    Obligation,
    PlanInstance,
    PlanVersion,
    RegistryUnit,
    RegistryVersion,
)

PLAN_ID = "pccc-ha-lang-2022"
REGISTRY_ID = "cao-bang-2022"
UNIT_ID = "phong-vhtt"
UNIT_EMAIL = "vhtt@halang.example"
HEAD_EMAIL = "truongphong.vhtt@halang.example"
CAH_EMAIL = "cah@halang.example"
FOCAL_EMAIL = "pccc.cah@halang.example"
UBND_EMAIL = "ubnd@halang.example"

# 10/9/2028 is a Sunday: the deadline moves to Monday 11/9/2028 (BLDS 2015, Điều 148).
NOMINAL = dt.date(2028, 9, 10)
DUE = dt.date(2028, 9, 11)
DUE_REASON = "10/9/2028 là Chủ nhật; hạn chuyển sang ngày làm việc tiếp theo (Điều 148 BLDS 2015)"


def make_settings(**overrides: Any) -> Settings:
    """Settings for tests: our own sender, a fixed portal secret, short timeouts."""
    base: dict[str, Any] = dict(
        mail_from="kehoach@halang.example",
        mail_from_name="Hệ thống kehoach huyện Hạ Lang",
        admin_email="admin@halang.example",
        portal_secret="kehoach-test-secret-7f3a9c2e4b1d8f60",
        portal_base_url="http://127.0.0.1:8700",
        smtp_timeout=5.0,
        smtp_connections=2,
    )
    return Settings(**{**base, **overrides})


def smtp_settings(server: Any, **overrides: Any) -> Settings:
    """Settings pointing at a tests.fixtures.smtp server (TLS + AUTH when it has them)."""
    values: dict[str, Any] = {"smtp_host": server.host, "smtp_port": server.port}
    if server.requires_tls:
        values.update(
            smtp_security="starttls",
            smtp_ca_file=str(server.ca_cert_path),
            smtp_username=server.username,
            smtp_password=server.password,
        )
    values.update(overrides)
    return make_settings(**values)


def build_plan(**overrides: Any) -> Plan:
    values: dict[str, Any] = dict(
        kind="plan",
        id=PLAN_ID,
        registry=REGISTRY_ID,
        as_of=dt.date(2022, 11, 1),
        document=PlanDocument(
            type="KH",
            number="134/KH-UBND",
            date=dt.date(2022, 11, 15),
            issuer="UBND huyện Hạ Lang",
            issuer_unit="ubnd-huyen-ha-lang",
            summary="Thực hiện công tác phòng cháy, chữa cháy và cứu nạn, cứu hộ năm 2022",
            signer=Signer(name="Nguyễn Phương Huy", title="CHỦ TỊCH", authority="TM."),
        ),
        assignments=[
            Assignment(
                id="phong-vhtt",
                section="II.2",
                heading="Phòng Văn hóa và Thông tin",
                to=Target(unit=UNIT_ID),
                tasks=[
                    TaskItem(id="tuyen-truyen", text="Tuyên truyền pháp luật về PCCC trên đài."),
                    TaskItem(id="ngay-toan-dan", text="Hưởng ứng Ngày toàn dân PCCC 04/10."),
                ],
            )
        ],
        deliverables=[
            Deliverable(
                id="bao-cao-nam",
                kind="report",
                title="Báo cáo kết quả công tác PCCC và CNCH",
                routing=Routing(to="ubnd-huyen-ha-lang", via="ca-huyen-ha-lang"),
                frequency="yearly",
                deadline=YearlyDate(
                    rule="yearly",
                    day=10,
                    month=9,
                    policy="next_working_day",
                    phrase="trước ngày 10/9 hằng năm",
                ),
                template="ket-qua",
            )
        ],
        consolidations=[
            Consolidation(
                id="tong-hop-huyen",
                consolidates="bao-cao-nam",
                by="ca-huyen-ha-lang",
                routing=Routing(to="ubnd-tinh-cao-bang", via="ca-tinh-cao-bang"),
                deadline=YearlyDate(rule="yearly", day=25, month=9),
            )
        ],
        report_templates=[
            ReportTemplate(
                id="ket-qua",
                title="Kết quả PCCC",
                fields=[TemplateField(id="so-lop", label="Số lớp", type="integer")],
            )
        ],
    )
    values.update(overrides)
    return Plan(**values)


def _unit(uid: str, name: str, emails: list[str], **data: Any) -> RegistryUnit:
    return RegistryUnit(
        unit_id=uid,
        name=name,
        kind="department",
        level="district",
        emails=emails,
        valid_from=dt.date(1900, 1, 1),
        successors=[],
        data=data,
    )


@dataclass
class World:
    plan_version: PlanVersion
    instance: PlanInstance
    cycle: Cycle
    obligation: Obligation


def make_world(
    session: Session,
    *,
    unit_name: str = "Phòng Văn hóa và Thông tin",
    unit_emails: list[str] | None = None,
    source_path: str | None = None,
    **plan_overrides: Any,
) -> World:
    """Registry, plan version, instance, cycle 2028 and one report obligation."""
    registry = RegistryVersion(
        registry_id=REGISTRY_ID,
        version=1,
        content_hash="test",
        source_text="",
        definition={},
        units=[
            _unit("ubnd-huyen-ha-lang", "Ủy ban nhân dân huyện Hạ Lang", [UBND_EMAIL]),
            _unit(
                "ca-huyen-ha-lang",
                "Công an huyện Hạ Lang",
                [CAH_EMAIL],
                focal={
                    "name": "Nông Văn Thắng",
                    "title": "Đội trưởng Đội Cảnh sát PCCC và CNCH",
                    "email": FOCAL_EMAIL,
                    "phone": "0206 3 826 114",
                },
            ),
            _unit("ca-tinh-cao-bang", "Công an tỉnh Cao Bằng", ["catinh@caobang.example"]),
            _unit("ubnd-tinh-cao-bang", "Ủy ban nhân dân tỉnh Cao Bằng", ["ubnd@caobang.example"]),
            _unit(
                UNIT_ID,
                unit_name,
                [UNIT_EMAIL] if unit_emails is None else unit_emails,
                head={"name": "Hoàng Thị Lan", "title": "Trưởng phòng", "email": HEAD_EMAIL},
            ),
            _unit("xa-duc-quang", "Ủy ban nhân dân xã Đức Quang", ["ducquang@halang.example"]),
        ],
    )
    plan = build_plan(**plan_overrides)
    version = PlanVersion(
        plan_id=plan.id,
        version=1,
        # the real hash, as the loader stores it: parsed plans are cached by it
        content_hash=content_hash(plan),
        registry_id=REGISTRY_ID,
        source_path=source_path,
        source_text="",
        definition=plan.model_dump(mode="json"),
    )
    instance = PlanInstance(
        plan_id=plan.id, plan_version=version, activated_on=dt.date(2022, 11, 15)
    )
    cycle = Cycle(
        instance=instance,
        key="2028",
        period_start=dt.date(2027, 12, 15),
        period_end=dt.date(2028, 12, 14),
    )
    session.add_all([registry, version, instance, cycle])
    obligation = add_obligation(session, cycle, UNIT_ID, assignment_ids=["phong-vhtt"])
    return World(version, instance, cycle, obligation)


def add_obligation(
    session: Session,
    cycle: Cycle,
    unit_id: str,
    *,
    assignment_ids: list[str] | None = None,
    status: str = "pending",
    kind: str = "report",
    deliverable_id: str = "bao-cao-nam",
    to_unit_id: str = "ubnd-huyen-ha-lang",
    via_unit_id: str | None = "ca-huyen-ha-lang",
) -> Obligation:
    obligation = Obligation(
        cycle=cycle,
        unit_id=unit_id,
        deliverable_id=deliverable_id,
        kind=kind,
        assignment_ids=assignment_ids or [],
        to_unit_id=to_unit_id,
        via_unit_id=via_unit_id,
        nominal_date=NOMINAL,
        due_date=DUE,
        due_reason=DUE_REASON,
        status=status,
    )
    session.add(obligation)
    session.flush()
    return obligation
