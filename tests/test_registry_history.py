"""Issue 11: the hierarchy changes under running plans.

The seed plan (UBND huyện Hạ Lang, 2022) runs its 2024 cycle against the 2022 registry;
the 2025 change sets of plan_definitions/registry_changes/ are applied (the district
police end on 28/2/2025, the district level on 30/6/2025, sample heirs); open work of
the units that ended follows their heirs, with one email each and audit rows; 2024
stays attributed to the old units; the 2026 cycle runs against the new hierarchy and no
email goes to a unit that no longer exists. Invalid change sets are refused, located,
and change nothing.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from sqlalchemy import func, select

from cli.main import main
from engine.audit_verify import verify
from engine.context import context_for_obligation
from engine.definitions_cache import current_registry
from engine.errors import DefinitionError
from engine.lifecycle import activate, intake, record_submission, sweep
from engine.register_numbers import register_of
from engine.registry import RegistryView
from engine.registry_history import apply_source
from engine.store import session_scope
from engine.store.models import (
    AuditEvent,
    ConsolidatedReport,
    Obligation,
    OutboxMessage,
    RegistryChange,
    RegistryUnitVersion,
)
from engine.yamlsource import read
from tests.approval_support import approve_sign_send, final_docx_text
from tests.lifecycle_factory import (
    DEFINITIONS,
    filled_answer,
    lc_settings,
    obligation,
    obligations,
    store_files,
    vn,
)
from tests.registry_history_support import (
    RH_CHANGE,
    RH_FILES,
    RH_PLAN,
    SEA,
    WATER,
    apply_change,
    consolidate_at,
    send_report,
)

SEED = DEFINITIONS / "ha_lang_pccc_2022.yaml"
PARENT = DEFINITIONS / "cao_bang_2720_kh_ubnd.yaml"
REGISTRY = DEFINITIONS / "registry_cao_bang.yaml"
CALENDAR = DEFINITIONS / "calendar_vn.yaml"
CHANGES = DEFINITIONS / "registry_changes"
POLICE = CHANGES / "cao_bang_2025_03_cong_an.yaml"
DISTRICT = CHANGES / "cao_bang_2025_07_cap_huyen.yaml"
PLAN, PARENT_PLAN = "ha-lang-pccc-2022", "cao-bang-2720-2022"
CAH, CAT = "ca-huyen-ha-lang", "ca-tinh-cao-bang"
NEW_SEAT = "ubnd-xa-ha-lang-2025"
# Who holds the seed plan's work after the 1/7/2025 change set (the sample communes).
HEIRS = {
    CAT,
    NEW_SEAT,
    "ubnd-xa-ly-quoc-2025",
    "ubnd-xa-quang-long-2025",
    "ubnd-xa-vinh-quy-2025",
    "mttq-xa-ha-lang-2025",
}


@pytest.fixture
def seed_url(sqlite_url, monkeypatch, tmp_path):
    monkeypatch.setenv("KEHOACH_DEMO", "1")
    monkeypatch.setenv("KEHOACH_HOME", str(tmp_path / "home"))
    from engine import config

    config.settings.cache_clear()
    store_files(sqlite_url, REGISTRY, PARENT, SEED, CALENDAR)
    yield sqlite_url
    config.settings.cache_clear()


def _submit(url: str, unit: str, cycle: str, moment: dt.datetime) -> None:
    with session_scope(url) as session:
        target = obligation(session, unit, "bao-cao-nam", cycle, PLAN)
        plan = context_for_obligation(session, target).plan
        values = filled_answer(plan.template("bao-cao-pccc-nam"))
        submission = record_submission(session, target.id, values=values, now=moment)
        intake(session, submission.id, now=moment)


def _dead_on(url: str, day: dt.date) -> dict[str, set[str]]:
    """Units not valid on ``day`` (composed registry) → their email addresses."""
    with session_scope(url) as session:
        registry = current_registry(session, "cao-bang")
        return {u.id: {e.lower() for e in u.emails} for u in registry.units if not u.valid_on(day)}


def test_seed_2024_then_the_2025_reform_then_2026(seed_url, tmp_path):
    # ---- 2024: the 2022 hierarchy, a report consolidated by Công an huyện
    with session_scope(seed_url) as session:
        activate(session, PARENT_PLAN, now=vn(2024, 1, 3), years=[2024])
        activate(session, PLAN, now=vn(2024, 1, 3), years=[2024])
    _submit(seed_url, CAH, "2024", vn(2024, 9, 5))
    _submit(seed_url, "ubnd-xa-an-lac", "2024", vn(2024, 9, 6))
    report_2024 = consolidate_at(
        seed_url, PLAN, "2024", "tong-hop-bao-cao-nam", vn(2024, 9, 25, 9), tmp_path
    )
    assert "ỦY BAN NHÂN DÂN HUYỆN HẠ LANG" in report_2024.markdown
    assert "Nguyễn Phương Huy" in report_2024.markdown

    # ---- 2025 cycle started before the reform: Công an huyện owes its report and the
    # consolidation, the units report "qua Công an huyện"
    with session_scope(seed_url) as session:
        activate(session, PARENT_PLAN, now=vn(2025, 1, 2), years=[2025])
        started = activate(session, PLAN, now=vn(2025, 1, 2), years=[2025])
        assert not started.held and not started.warnings
        open_cah = {
            o.id: o.deliverable_id
            for o in obligations(session, PLAN)
            if o.unit_id == CAH and o.status.open
        }
        # its own specific plan (once, due 2/2/2024, never sent), the 2025 report and
        # the 2025 consolidation
        assert sorted(open_cah.values()) == [
            "bao-cao-nam",
            "ke-hoach-cu-the",
            "tong-hop-bao-cao-nam",
        ]
        closed_2024 = obligation(session, CAH, "bao-cao-nam", "2024", PLAN)
        assert not closed_2024.status.open
        audit_before = session.scalar(select(func.count()).select_from(AuditEvent))

    # ---- the police change, applied on its date (1/3/2025)
    police = apply_change(seed_url, POLICE, vn(2025, 3, 1, 8))
    assert police.created and police.ended == {CAH: [CAT]}
    with session_scope(seed_url) as session:
        for oid, deliverable in open_cah.items():
            moved = session.get(Obligation, oid)
            assert (moved.unit_id, moved.transferred_from) == (CAT, CAH), deliverable
            assert moved.token_version == 2  # links mailed to Công an huyện stop working
        # closed work stays with the old unit
        assert obligation(session, CAH, "bao-cao-nam", "2024", PLAN).unit_id == CAH
        # "qua Công an huyện" now goes through Công an tỉnh
        vias = {
            o.via_unit_id
            for o in obligations(session, PLAN, deliverable="bao-cao-nam", cycle="2025")
        }
        assert vias == {CAT}
        # one email to the heir, saying what, from whom, by when
        [told] = session.scalars(
            select(OutboxMessage).where(
                OutboxMessage.kind == "inherited", OutboxMessage.plan_id == PLAN
            )
        ).all()
        assert told.unit_id == CAT and told.to_addrs == ["pc07.catinh@caobang.example"]
        assert told.context["from_names"] == ["Công an huyện Hạ Lang"]
        dues = {r["due"]["short"]: r["overdue"] for r in told.context["rows"]}
        assert dues == {"2/2/2024": True, "10/9/2025": False, "25/9/2025": False}
        transfers = session.scalars(
            select(AuditEvent).where(
                AuditEvent.action == "obligation.transferred", AuditEvent.plan_id == PLAN
            )
        ).all()
        assert {(a.obligation_id, a.data["from_unit"], a.data["to_unit"]) for a in transfers} == {
            (oid, CAH, CAT) for oid in open_cah
        }
        changed = session.scalar(select(AuditEvent).where(AuditEvent.action == "registry.changed"))
        assert changed.data["change_id"] == "cao-bang-2025-03-cong-an"
        assert session.scalar(select(func.count()).select_from(AuditEvent)) > audit_before
        assert verify(session).intact  # the moves are on the hash chain

    # ---- the district level ends (1/7/2025): the communes merge, UBND huyện's duties pass
    district = apply_change(seed_url, DISTRICT, vn(2025, 7, 1, 8))
    assert district.created and len(district.ended) == 34
    with session_scope(seed_url) as session:
        owners = {o.unit_id for o in obligations(session, PLAN, cycle="2025") if o.status.open}
        assert owners <= HEIRS
        # 2024's answered reports stay attributed to the units of 2024 (what was never
        # answered is open work, and went to the heirs like the rest)
        for unit in (CAH, "ubnd-xa-an-lac"):
            answered = obligation(session, unit, "bao-cao-nam", "2024", PLAN)
            assert answered.status.answered and answered.transferred_from is None
        view = RegistryView(current_registry(session, "cao-bang"))
        assert view.unit_on("ubnd-xa-an-lac", dt.date(2024, 9, 25)).parent == "ubnd-huyen-ha-lang"
        assert view.unit_on(NEW_SEAT, dt.date(2026, 1, 1)).parent == "ubnd-tinh-cao-bang"
        assert verify(session).intact

    # ---- 2026: the new hierarchy, from activation through the deadlines
    with session_scope(seed_url) as session:
        activate(session, PARENT_PLAN, now=vn(2026, 1, 5), years=[2026])
        result = activate(session, PLAN, now=vn(2026, 1, 5), years=[2026])
    assert not result.held
    day = dt.date(2026, 8, 30)
    while day <= dt.date(2026, 10, 5):  # reminders, overdue, escalations, digests
        with session_scope(seed_url) as session:
            for plan_id in (PLAN, PARENT_PLAN):
                sweep(session, plan_id, today=day)
        day += dt.timedelta(days=1)
    _submit(seed_url, "ubnd-xa-ly-quoc-2025", "2026", vn(2026, 9, 8))
    with session_scope(seed_url) as session:
        owed = {
            o.unit_id for o in obligations(session, PLAN, deliverable="bao-cao-nam", cycle="2026")
        }
        assert owed == HEIRS
        [duty] = obligations(session, PLAN, deliverable="tong-hop-bao-cao-nam", cycle="2026")
        assert (duty.unit_id, duty.to_unit_id, duty.via_unit_id) == (CAT, "ubnd-tinh-cao-bang", CAT)
    report_2026 = consolidate_at(
        seed_url, PLAN, "2026", "tong-hop-bao-cao-nam", vn(2026, 9, 25, 9), tmp_path
    )
    # A draft goes nowhere; once approved, numbered, signed and sent, the roll-up goes
    # on upward with no code change: the report reaches the province's plan as the
    # answer of the duty UBND xã Hạ Lang inherited from UBND huyện.
    assert report_2026.upward_obligation_id is None
    conf = lc_settings(tmp_path)
    with session_scope(seed_url) as session:
        sent = approve_sign_send(session, report_2026.id, conf, vn(2026, 9, 25, 10))
        upward = session.get(Obligation, sent.upward_obligation_id)
        assert (upward.unit_id, upward.transferred_from, upward.status) == (
            NEW_SEAT,
            "ubnd-huyen-ha-lang",
            "submitted",
        )
        # numbered in the register of the body it goes out as: the heir
        report = session.get(ConsolidatedReport, report_2026.id)
        assert report.number_text == "01/BC-UBND"
        assert [r.report_id for r in register_of(session, NEW_SEAT, 2026)] == [report.id]
        assert register_of(session, "ubnd-huyen-ha-lang", 2026) == []
        final = final_docx_text(session, report, conf)
    # the draft and the approved report alike: the heir's header and signer (the .docx
    # breaks the header over lines)
    for text in (report_2026.markdown, " ".join(final.split())):
        assert "ỦY BAN NHÂN DÂN XÃ HẠ LANG (KẾ THỪA UBND HUYỆN HẠ LANG)" in text
        assert "THỦ TRƯỞNG ĐƠN VỊ" not in text and "Nông Văn Mẫu" in text
        assert "Ủy ban nhân dân tỉnh Cao Bằng (B/c)" in text  # the report goes to the province
    assert "Số: 01/BC-UBND" in final and "DỰ THẢO" not in final

    # ---- count: no email to a unit after its end, none in 2026 to any abolished unit
    with session_scope(seed_url) as session:
        registry = current_registry(session, "cao-bang")
        ends = {u.id: u.valid_to for u in registry.units if u.valid_to is not None}
        dead_2026 = _dead_on(seed_url, dt.date(2026, 1, 1))
        rows = session.scalars(select(OutboxMessage)).all()
        after_end = [m for m in rows if m.unit_id in ends and m.created_at.date() > ends[m.unit_id]]
        in_2026 = [m for m in rows if m.created_at >= vn(2026, 1, 1, 0)]
        to_dead = [
            m
            for m in in_2026
            if m.unit_id in dead_2026
            or {a.lower() for a in m.to_addrs} & set().union(*dead_2026.values())
        ]
        assert len(in_2026) > 30  # assignments, reminders, digests went out in 2026
        assert (len(after_end), len(to_dead)) == (0, 0)


# ---------------------------------------------------------------- refused change sets

BAD = {
    "successor-missing": (
        "  - op: abolish\n    unit: ca-huyen-ha-lang\n    successors: [ca-xa-khong-co]\n",
        ":11:",
        "đơn vị kế thừa 'ca-xa-khong-co'",
    ),
    # exists in the registry, but not on the change's date: abolished by the op before it
    "successor-ended-that-day": (
        "  - op: abolish\n    unit: phong-y-te-ha-lang\n    successors: [ca-tinh-cao-bang]\n"
        "  - op: abolish\n    unit: ca-huyen-ha-lang\n    successors: [phong-y-te-ha-lang]\n",
        ":14:",
        "đơn vị kế thừa 'phong-y-te-ha-lang' của Công an huyện Hạ Lang (ca-huyen-ha-lang) "
        "không tồn tại ngày 01/03/2025",
    ),
    "cycle": (
        "  - op: abolish\n    unit: phong-vhtt-ha-lang\n    successors: [phong-ktht-ha-lang]\n"
        "  - op: abolish\n    unit: phong-ktht-ha-lang\n    successors: [phong-vhtt-ha-lang]\n",
        ":10:",
        "vòng kế thừa: phong-vhtt-ha-lang → phong-ktht-ha-lang → phong-vhtt-ha-lang",
    ),
    "twice": (
        "  - op: abolish\n    unit: ca-huyen-ha-lang\n    successors: [ca-tinh-cao-bang]\n"
        "  - op: merge\n    units: [ubnd-xa-an-lac, ca-huyen-ha-lang]\n    into: ubnd-xa-thi-hoa\n",
        ":13:",
        "bị giải thể hai lần",
    ),
    "nobody": (
        "  - op: abolish\n    unit: ca-huyen-ha-lang\n",
        ":10:",
        "nghĩa vụ đang mở mà không có đơn vị kế thừa",
    ),
    "reparent-below": (
        "  - op: reparent\n    unit: ubnd-huyen-ha-lang\n    parent: ubnd-xa-thi-hoa\n",
        ":11:",
        "Ủy ban nhân dân huyện Hạ Lang (cấp huyện) không thể trực thuộc Ủy ban nhân dân xã "
        "Thị Hoa (cấp xã): cấp trên phải cùng cấp hoặc cao hơn",
    ),
    "create-below": (
        "  - op: create\n    unit: so-moi\n    name: Sở mới\n    kind: department\n"
        "    level: province\n    parent: ubnd-xa-thi-hoa\n",
        ":14:",
        "Sở mới (cấp tỉnh) không thể trực thuộc Ủy ban nhân dân xã Thị Hoa (cấp xã)",
    ),
    "split-without-rule": (
        "  - op: split\n    unit: ubnd-xa-an-lac\n    into: [ubnd-xa-thi-hoa, ubnd-xa-kim-loan]\n",
        ":11:",
        "không có 'rule'",
    ),
}


def _change_file(tmp_path: Path, name: str, changes: str) -> Path:
    path = tmp_path / f"{name}.yaml"
    path.write_text(
        "kind: registry-change\n"
        f"id: thu-{name}\n"
        "registry: cao-bang\n"
        "name: Thay đổi thử\n"
        "effective: 2025-03-01\n"
        "# the changes\n"
        "\n"
        "changes:\n" + changes,
        encoding="utf-8",
    )
    return path


@pytest.mark.parametrize("case", sorted(BAD))
def test_invalid_change_sets_are_refused_located_and_change_nothing(
    seed_url, tmp_path, capsys, case
):
    changes, where, words = BAD[case]
    with session_scope(seed_url) as session:
        activate(session, PLAN, now=vn(2025, 1, 2), years=[2025])
    path = _change_file(tmp_path, case, changes)
    good = _change_file(
        tmp_path, "good", "  - op: rename\n    unit: phong-y-te-ha-lang\n    name: Phòng Y tế mới\n"
    )
    with session_scope(seed_url) as session:
        audit_rows = session.scalar(select(func.count()).select_from(AuditEvent))
        owners = sorted(
            session.execute(select(Obligation.id, Obligation.unit_id, Obligation.via_unit_id)).all()
        )
    # The good file goes first (date order is the same): the whole command is refused.
    code = main(
        [
            "--database-url",
            seed_url,
            "registry",
            "apply",
            str(good),
            str(path),
            "--at",
            "2025-03-02",
        ]
    )
    err = capsys.readouterr().err
    assert code == 3
    assert f"{path}{where}" in err and words in err, err
    assert "Traceback" not in err and "không lưu gì" in err
    with session_scope(seed_url) as session:
        assert session.scalar(select(func.count()).select_from(RegistryChange)) == 0
        assert session.scalar(select(func.count()).select_from(RegistryUnitVersion)) == 0
        assert session.scalar(select(func.count()).select_from(AuditEvent)) == audit_rows
        assert (
            sorted(
                session.execute(
                    select(Obligation.id, Obligation.unit_id, Obligation.via_unit_id)
                ).all()
            )
            == owners
        )


def test_a_change_set_already_applied_is_not_rewritten(seed_url, tmp_path, capsys):
    assert (
        main(["--database-url", seed_url, "registry", "apply", str(POLICE), "--at", "2025-02-01"])
        == 0
    )
    assert "việc đang mở sẽ chuyển" in capsys.readouterr().out  # not in effect yet
    assert (
        main(["--database-url", seed_url, "registry", "apply", str(POLICE), "--at", "2025-02-02"])
        == 0
    )
    assert "đã áp dụng trước đó" in capsys.readouterr().out
    edited = tmp_path / "police.yaml"
    edited.write_text(
        POLICE.read_text(encoding="utf-8").replace("[ca-tinh-cao-bang]", "[ubnd-tinh-cao-bang]"),
        encoding="utf-8",
    )
    assert main(["--database-url", seed_url, "registry", "apply", str(edited)]) == 3
    assert "không được viết lại" in capsys.readouterr().err
    # the abolished unit, again in another change set: refused
    again = _change_file(
        tmp_path,
        "again",
        "  - op: abolish\n    unit: ca-huyen-ha-lang\n    successors: [ca-tinh-cao-bang]\n",
    )
    with session_scope(seed_url) as session, pytest.raises(DefinitionError) as refused:
        apply_source(session, read(again), vn(2025, 4, 1))
    assert "đã giải thể rồi" in str(refused.value)
    assert main(["--database-url", seed_url, "registry", "history", CAH]) == 0
    shown = capsys.readouterr().out
    assert "đến hết 28/2/2025: Công an huyện Hạ Lang; cấp trên: Công an tỉnh Cao Bằng" in shown
    assert (
        "không còn từ 1/3/2025 [thay đổi cao-bang-2025-03-cong-an]; kế thừa: Công an tỉnh Cao Bằng"
        in shown
    )


# ---------------------------------------------------------------- nothing to the dead


def _district_ends_without_the_communes_heir(seed_url: str, tmp_path: Path) -> None:
    """Apply only the district's end, without the merged communes: their work has nobody."""
    text = DISTRICT.read_text(encoding="utf-8")
    cut = text.index(
        "  # ---------------------------------------------------------------- communes merged"
    )
    rest = text.index(
        "  # ---------------------------------------------------------------- district bodies"
    )
    lone = tmp_path / "district_only.yaml"
    communes = "".join(
        f"  - op: abolish\n    unit: {u}\n" for u in ("ubnd-xa-an-lac", "ubnd-xa-thi-hoa")
    )
    lone.write_text(text[:cut] + communes + text[rest:], encoding="utf-8")
    assert (
        main(["--database-url", seed_url, "registry", "apply", str(lone), "--at", "2025-06-01"])
        == 0
    )


def _held_once(out: str) -> list[str]:
    held = [line for line in out.splitlines() if "giữ lại chờ quản trị" in line]
    assert len(held) == 1 and "xã An Lạc" in held[0] and "xã Thị Hoa" in held[0], out
    return held


def test_activation_without_heirs_holds_the_work_says_it_once_and_exits_non_zero(
    seed_url, tmp_path, capsys
):
    _district_ends_without_the_communes_heir(seed_url, tmp_path)
    capsys.readouterr()
    code = main(
        ["--database-url", seed_url, "activate", PLAN, "--year", "2026", "--at", "2026-01-05"]
    )
    out, err = capsys.readouterr()
    assert code == 5 and "không có ai nhận" in err
    _held_once(out)
    assert "is not valid" not in out + err  # no English line
    with session_scope(seed_url) as session:
        assert not [
            o
            for o in obligations(session, PLAN, cycle="2026")
            if o.unit_id in {"ubnd-xa-an-lac", "ubnd-xa-thi-hoa"}
        ]
    code = main(["--database-url", seed_url, "calendar", PLAN, "--year", "2026"])
    out, err = capsys.readouterr()
    assert code == 5 and sum("giữ lại chờ quản trị" in line for line in out.splitlines()) == 1


@pytest.mark.prefect
def test_deploy_and_simulate_without_heirs_say_it_once_and_exit_non_zero(
    seed_url, tmp_path, capsys, prefect_server
):
    """``deploy`` and ``simulate`` do their work for the living and exit 5 for the held."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterName

    _district_ends_without_the_communes_heir(seed_url, tmp_path)
    capsys.readouterr()
    try:
        code = main(["--database-url", seed_url, "deploy", PLAN])
        out, err = capsys.readouterr()
        assert code == 5 and "không có ai nhận" in err, out + err
        _held_once(out)
        assert f"sweep/{PLAN}" in out or PLAN in out  # the living's deployments were made
        code = main(
            [
                "--database-url",
                seed_url,
                "simulate",
                PLAN,
                "--from",
                "2026-01-02",
                "--until",
                "2026-01-03",
                "--no-email",
            ]
        )
        out, err = capsys.readouterr()
        assert code == 5 and "không có ai nhận" in err, out + err
        assert "Traceback" not in out + err
    finally:
        # the deployments go: other tests on this server deploy the seed plan themselves
        with get_client(sync_client=True) as client:
            for found in client.read_deployments(
                deployment_filter=DeploymentFilter(name=DeploymentFilterName(like_=PLAN))
            ):
                client.delete_deployment(found.id)


# ---------------------------------------------------------------- re-parenting


def test_an_office_moving_between_ministries_keeps_old_reports_under_the_old_parent(
    sqlite_url, tmp_path, monkeypatch, capsys
):
    monkeypatch.setenv("KEHOACH_DEMO", "1")
    monkeypatch.setenv("KEHOACH_HOME", str(tmp_path / "home"))
    from engine import config

    config.settings.cache_clear()
    store_files(sqlite_url, *RH_FILES)
    plan_id = RH_PLAN
    with session_scope(sqlite_url) as session:
        activate(session, plan_id, now=vn(2024, 1, 2), years=[2024])
    send_report(sqlite_url, plan_id, WATER, "2024", {"so-ho-so": "12"}, vn(2024, 11, 5))
    old = consolidate_at(sqlite_url, plan_id, "2024", "tong-hop", vn(2024, 11, 25, 9), tmp_path)
    assert "BỘ TÀI NGUYÊN VÀ MÔI TRƯỜNG (THỬ)" in old.markdown
    assert "Cục Quản lý tài nguyên nước (thử)" in old.markdown

    # The change set is applied before its date: nothing moves until 1/3/2025.
    code = main(
        [
            "--database-url",
            sqlite_url,
            "registry",
            "apply",
            str(RH_CHANGE),
            "--at",
            "2025-01-15",
        ]
    )
    assert code == 0 and "sẽ chuyển cho đơn vị kế thừa vào ngày hiệu lực" in capsys.readouterr().out
    with session_scope(sqlite_url) as session:
        activate(session, plan_id, now=vn(2025, 1, 20), years=[2025])
        duty = obligations(session, plan_id, deliverable="tong-hop", cycle="2025")[0]
        # the new ministry owes the 2025 consolidation, and is told on its first day
        assert (duty.unit_id, duty.next_sweep_on) == ("bo-nnmt", dt.date(2025, 3, 1))
        assert not session.scalar(
            select(func.count()).where(
                OutboxMessage.unit_id == "bo-nnmt", OutboxMessage.created_at < vn(2025, 3, 1, 0)
            )
        )
        sweep(session, plan_id, today=dt.date(2025, 3, 1))
    with session_scope(sqlite_url) as session:
        view = RegistryView(current_registry(session, "rh-trung-uong"))
        then, now = (
            view.unit_on(WATER, dt.date(2024, 11, 10)),
            view.unit_on(WATER, dt.date(2025, 11, 10)),
        )
        assert (then.parent, then.name) == ("bo-tnmt", "Cục Quản lý tài nguyên nước (thử)")
        assert (now.parent, now.name) == (
            "bo-nnmt",
            "Cục Quản lý tài nguyên nước (thuộc Bộ mới, thử)",
        )
        # the answered 2024 report stays under the old ministry; new ones go through the new
        assert obligation(session, WATER, "bao-cao-nam", "2024", plan_id).via_unit_id == "bo-tnmt"
        for unit in (WATER, SEA):
            assert (
                obligation(session, unit, "bao-cao-nam", "2025", plan_id).via_unit_id == "bo-nnmt"
            )
        # the sea office's 2024 report was never sent: open work, now through the new ministry
        assert obligation(session, SEA, "bao-cao-nam", "2024", plan_id).via_unit_id == "bo-nnmt"
        told = session.scalars(
            select(OutboxMessage).where(OutboxMessage.unit_id == "bo-nnmt")
        ).all()
        assert {m.kind for m in told} >= {"assignment"} and told
        assert verify(session).intact
    send_report(sqlite_url, plan_id, WATER, "2025", {"so-ho-so": "7"}, vn(2025, 11, 3))
    new = consolidate_at(sqlite_url, plan_id, "2025", "tong-hop", vn(2025, 11, 25, 9), tmp_path)
    again = consolidate_at(sqlite_url, plan_id, "2024", "tong-hop", vn(2024, 11, 25, 9), tmp_path)
    assert (
        "BỘ NÔNG NGHIỆP VÀ MÔI TRƯỜNG (THỬ) (KẾ THỪA BỘ TÀI NGUYÊN VÀ MÔI TRƯỜNG (THỬ))"
        in new.markdown
    )
    assert "Đỗ Văn Mẫu" in new.markdown and "THỦ TRƯỞNG ĐƠN VỊ" not in new.markdown
    assert "Cục Quản lý tài nguyên nước (thuộc Bộ mới, thử)" in new.markdown
    # the 2024 report, read again: still the old names
    assert "Cục Quản lý tài nguyên nước (thử)" in again.markdown
    assert "thuộc Bộ mới" not in again.markdown
    assert main(["--database-url", sqlite_url, "registry", "history", WATER]) == 0
    shown = capsys.readouterr().out
    assert (
        "đến hết 28/2/2025: Cục Quản lý tài nguyên nước (thử); cấp trên: Bộ Tài nguyên và Môi trường (thử)"
        in shown
    )
    assert (
        "từ 1/3/2025 đến nay: Cục Quản lý tài nguyên nước (thuộc Bộ mới, thử); cấp trên: Bộ Nông nghiệp và Môi trường (thử)"
        in shown
    )
    config.settings.cache_clear()


def test_a_unit_ended_by_a_new_registry_version_gets_no_email_and_the_sweep_says_so(
    seed_url, tmp_path
):
    with session_scope(seed_url) as session:
        activate(session, PLAN, now=vn(2025, 1, 2), years=[2025])
    # A registry version loaded later ends Công an huyện without naming a successor (a
    # change set would be refused; a registry file is not checked against running work).
    text = REGISTRY.read_text(encoding="utf-8").replace(
        "    emails: [cah.halang@caobang.example]\n",
        "    emails: [cah.halang@caobang.example]\n    valid_to: 2025-02-28\n",
        1,
    )
    assert "valid_to: 2025-02-28" in text
    ended = tmp_path / "registry_cao_bang.yaml"
    ended.write_text(text, encoding="utf-8")
    store_files(seed_url, ended)
    with session_scope(seed_url) as session:
        result = sweep(session, PLAN, today=dt.date(2025, 9, 3))  # 7 days before 10/9
        assert result.reminders  # the others are reminded
        mails = session.scalars(
            select(OutboxMessage).where(
                OutboxMessage.unit_id == CAH, OutboxMessage.created_at >= vn(2025, 3, 1, 0)
            )
        ).all()
    assert mails == []  # not a reminder, not anything: the unit does not exist
    assert CAH in result.held and "giữ lại chờ quản trị" in result.summary()


SPLIT = """  - op: create
    unit: xa-bac
    name: Ủy ban nhân dân xã Bắc (thử)
    kind: commune-committee
    level: commune
    parent: ubnd-huyen-ha-lang
    emails: [xa.bac@caobang.example]
  - op: create
    unit: xa-nam
    name: Ủy ban nhân dân xã Nam (thử)
    kind: commune-committee
    level: commune
    parent: ubnd-huyen-ha-lang
    emails: [xa.nam@caobang.example]
  - op: split
    unit: ubnd-xa-an-lac
    into: [xa-bac, xa-nam]
"""


@pytest.mark.parametrize(
    ("rule", "owners"),
    [
        (
            "    rule: {each: true}\n",
            {"bao-cao-nam": {"xa-bac", "xa-nam"}, "ke-hoach-cu-the": {"xa-bac", "xa-nam"}},
        ),
        (
            "    rule: {default: xa-bac, deliverables: {ke-hoach-cu-the: xa-nam}}\n",
            {"bao-cao-nam": {"xa-bac"}, "ke-hoach-cu-the": {"xa-nam"}},
        ),
    ],
    ids=["each", "by-deliverable"],
)
def test_a_split_shares_open_work_as_its_rule_says(seed_url, tmp_path, rule, owners):
    with session_scope(seed_url) as session:
        activate(session, PLAN, now=vn(2025, 1, 2), years=[2025])
    path = _change_file(tmp_path, "split", SPLIT + rule)
    result = apply_change(seed_url, path, vn(2025, 3, 2))
    assert result.ended == {"ubnd-xa-an-lac": ["xa-bac", "xa-nam"]}
    with session_scope(seed_url) as session:
        got: dict[str, set[str]] = {}
        for o in obligations(session, PLAN):
            if o.transferred_from == "ubnd-xa-an-lac":
                got.setdefault(o.deliverable_id, set()).add(o.unit_id)
        assert got == owners
        assert not [o for o in obligations(session, PLAN) if o.unit_id == "ubnd-xa-an-lac"]
        told = {
            m.unit_id
            for m in session.scalars(select(OutboxMessage).where(OutboxMessage.kind == "inherited"))
        }
        assert told == set().union(*owners.values())  # each heir told once, in one email
        moves = session.scalars(
            select(AuditEvent).where(AuditEvent.action == "obligation.transferred")
        ).all()
        assert len(moves) == sum(len(units) for units in owners.values())
        # the next cycle follows the same rule
        activate(session, PLAN, now=vn(2026, 1, 5), years=[2026])
        units_2026 = {
            o.unit_id for o in obligations(session, PLAN, deliverable="bao-cao-nam", cycle="2026")
        }
        assert owners["bao-cao-nam"] <= units_2026 and "ubnd-xa-an-lac" not in units_2026


# ---------------------------------------------------------------- the seed simulated in 2026


@pytest.mark.prefect
def test_the_seed_simulated_after_the_reform_mails_only_the_living(seed_url, prefect_server):  # noqa: ARG001
    """``kehoach simulate`` of the seed plan and its province over September 2026 on the
    real flows, after the 2025 change sets: every unit answers on time but their own
    plans (due in October). The new communes and Công an tỉnh owe and are reminded, the
    report consolidated early is approved on its review-by day (22/9) and reaches the
    province's plan on time as the answer of UBND xã Hạ Lang; no email to an abolished
    unit. (By hand over the whole year: 59 emails to 6 units, none to the 35 that ended.)"""
    from workflows.responses import parse
    from workflows.simulate import simulate

    apply_change(seed_url, POLICE, vn(2025, 3, 1, 8))
    apply_change(seed_url, DISTRICT, vn(2025, 7, 1, 8))
    responses = parse(
        {
            "kind": "responses",
            "defaults": {"submit": "on_time", "days_before_due": [1, 5]},
            "responses": [
                {"unit": "*", "deliverable": d, "never": True}
                for d in ("ke-hoach-cu-the", "ke-hoach-huyen")
            ],
        }
    )
    printed: list[str] = []
    result = simulate(
        PLAN,
        dt.date(2026, 9, 5),
        dt.date(2026, 9, 25),
        responses,
        database_url=seed_url,
        dispatch=False,
        out=printed.append,
    )
    assert result.plans == [PARENT_PLAN, PLAN] and result.submissions == 6
    # said once, in Vietnamese, in the terminal: who took over the ended units' work
    moved = [line for line in printed if "lưu ý (ha-lang-pccc-2022): việc chuyển cho" in line]
    assert len(moved) == len(set(moved)) == 6, printed  # one per heir, as `calendar` says
    assert any("Công an tỉnh Cao Bằng: Công an huyện Hạ Lang" in line for line in moved)
    with session_scope(seed_url) as session:
        owners = {o.unit_id for o in obligations(session, PLAN, cycle="2026")}
        assert owners == HEIRS
        upward = obligation(session, NEW_SEAT, "bao-cao-nam-huyen", "2026", PARENT_PLAN)
        assert (upward.status, upward.on_time, upward.transferred_from) == (
            "submitted",
            True,
            "ubnd-huyen-ha-lang",
        )
        report = session.scalar(select(ConsolidatedReport))
        assert report.approval == "sent" and report.number_text == "01/BC-UBND"
        mails = session.scalars(select(OutboxMessage)).all()
    dead = _dead_on(seed_url, dt.date(2026, 1, 1))
    dead_addrs = set().union(*dead.values())
    to_dead = [
        m for m in mails if m.unit_id in dead or {a.lower() for a in m.to_addrs} & dead_addrs
    ]
    assert len(dead) == 35 and len(mails) > 15 and to_dead == []
