"""A new version of a running plan: removals are shown and must be confirmed, running
cycles keep their version unless ``--apply-to-running`` asks otherwise.

Measured before the fix: the seed plan cut after 43 of its lines loaded with exit 0 as
v2, dropping every assignment of the running plan without a word.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from sqlalchemy import func, select

from cli import main
from engine.store import session_scope
from engine.store.models import Cycle, Obligation, OutboxMessage, PlanInstance, PlanVersion

ROOT = Path(__file__).parents[1]
DEFINITIONS = ROOT / "plan_definitions"
SEED = "ha_lang_pccc_2022.yaml"
PLAN = "ha-lang-pccc-2022"


@pytest.fixture
def store(tmp_path: Path, capsys) -> tuple[list[str], Path]:
    """The seed plans loaded and the 2023 cycle activated; (CLI prefix, folder of copies)."""
    folder = tmp_path / "defs"
    folder.mkdir()
    for path in DEFINITIONS.glob("*.yaml"):
        shutil.copy(path, folder / path.name)
    db = ["--database-url", f"sqlite:///{tmp_path / 'kehoach.sqlite'}"]
    assert main([*db, "load", *map(str, sorted(folder.glob("*.yaml")))]) == 0
    assert main([*db, "activate", PLAN, "--year", "2023", "--at", "2023-01-02"]) == 0
    capsys.readouterr()
    return db, folder


def _url(db: list[str]) -> str:
    return db[1]


def _versions(db: list[str]) -> list[tuple[int, bool]]:
    with session_scope(_url(db)) as session:
        rows = session.execute(
            select(PlanVersion.version, PlanVersion.current)
            .where(PlanVersion.plan_id == PLAN)
            .order_by(PlanVersion.version)
        ).all()
    return [(v, c) for v, c in rows]


def _cycle(db: list[str], key: str) -> tuple[int, int]:
    """(version the cycle runs on, its obligations)."""
    with session_scope(_url(db)) as session:
        version, cycle_id = session.execute(
            select(PlanVersion.version, Cycle.id)
            .join(PlanInstance, PlanInstance.plan_version_id == PlanVersion.id)
            .join(Cycle, Cycle.instance_id == PlanInstance.id)
            .where(PlanInstance.plan_id == PLAN, Cycle.key == key)
        ).one()
        count = session.scalar(
            select(func.count()).select_from(Obligation).where(Obligation.cycle_id == cycle_id)
        )
    return version, count or 0


def _truncated(folder: Path, lines: int = 43) -> Path:
    seed = (DEFINITIONS / SEED).read_text(encoding="utf-8").splitlines(keepends=True)
    path = folder / SEED
    path.write_text("".join(seed[:lines]), encoding="utf-8")
    return path


def test_a_truncated_plan_is_shown_and_refused(store, capsys):
    db, folder = store
    before = _cycle(db, "2023")
    code = main([*db, "load", str(_truncated(folder))])
    err = capsys.readouterr().err
    assert code == 1
    assert "bỏ 6 phân công" in err and "cong-an-huyen (II.1 Công an huyện)" in err
    assert "bỏ 3 sản phẩm phải nộp" in err and "bao-cao-nam" in err
    assert "bỏ 32 đơn vị mất nghĩa vụ" in err
    assert "bỏ 15 trường của mẫu báo cáo" in err  # the seed template has 15 fields
    assert "kỳ năm 2023 (2023, phiên bản v1, đang mở): 33 nghĩa vụ, 33 nghĩa vụ thuộc" in err
    assert "Không lưu gì" in err and "--confirm" in err
    assert "Traceback" not in err
    assert _versions(db) == [(1, True)]
    assert _cycle(db, "2023") == before


def test_confirmed_the_new_version_leaves_running_cycles_alone(store, capsys):
    db, folder = store
    path = _truncated(folder)
    assert main([*db, "load", "--confirm", str(path)]) == 0
    out = capsys.readouterr().out
    assert "v2  phiên bản mới" in out and "(giữ phiên bản cũ)" in out
    assert "phiên bản v2 áp dụng từ kỳ bắt đầu sau" in out
    assert _versions(db) == [(1, False), (2, True)]
    assert _cycle(db, "2023") == (1, 33)
    assert main([*db, "status", PLAN, "--cycle", "2023", "--at", "2023-03-01"]) == 0
    assert "Chưa hoàn thành, còn hạn: 33" in capsys.readouterr().out
    # the next cycle starts under v2, which asks nothing
    assert main([*db, "activate", PLAN, "--year", "2024", "--at", "2024-01-02"]) == 0
    assert "v2: 0 nghĩa vụ mới" in capsys.readouterr().out


def test_applying_removals_to_running_cycles_is_refused(store, capsys):
    db, folder = store
    path = _truncated(folder)
    code = main([*db, "load", "--confirm", "--apply-to-running", str(path)])
    err = capsys.readouterr().err
    assert code == 1
    assert "65 nghĩa vụ đã giao sẽ mất căn cứ" in err and "ca-huyen-ha-lang/bao-cao-nam" in err
    assert _versions(db) == [(1, True)]
    assert _cycle(db, "2023") == (1, 33)


def _with_extra_report(folder: Path) -> Path:
    """The seed with a second yearly report (an addition only)."""
    text = (DEFINITIONS / SEED).read_text(encoding="utf-8")
    start = text.index("  - id: bao-cao-nam\n")
    end = text.index("consolidations:")
    extra = text[start:end].replace("id: bao-cao-nam", "id: bao-cao-bo-sung", 1)
    path = folder / SEED
    path.write_text(text[:end] + extra + text[end:], encoding="utf-8")
    return path


def _queued(db: list[str]) -> int:
    with session_scope(_url(db)) as session:
        return session.scalar(select(func.count()).select_from(OutboxMessage)) or 0


def test_additions_need_no_confirmation_and_reach_running_cycles_only_when_asked(store, capsys):
    db, folder = store
    path = _with_extra_report(folder)
    assert main([*db, "load", str(path)]) == 0
    out = capsys.readouterr().out
    assert "thêm: 1 sản phẩm phải nộp" in out
    assert _cycle(db, "2023") == (1, 33)
    mails = _queued(db)
    # the same file again, now asking for the running cycles: they move to v2 and get
    # the new report's duties (and their assignment emails)
    assert main([*db, "load", "--apply-to-running", str(path)]) == 0
    out = capsys.readouterr().out
    assert "chuyển sang phiên bản mới" in out and "→ v2" in out
    assert _cycle(db, "2023") == (2, 33 + 32)
    assert _cycle(db, "once") == (2, 32)
    assert _queued(db) == mails + 32


def test_a_removed_field_is_confirmed_and_may_apply_to_running_cycles(store, capsys):
    db, folder = store
    text = (DEFINITIONS / SEED).read_text(encoding="utf-8")
    field = (
        "      - id: kien-nghi\n"
        "        short_label: Khó khăn, vướng mắc; kiến nghị, đề xuất\n"
        "        label: Khó khăn, vướng mắc và kiến nghị, đề xuất\n"
        "        type: text\n"
        "        required: false\n"
        "        aggregate: list_by_unit\n"
    )
    assert field in text
    path = folder / SEED
    path.write_text(text.replace(field, ""), encoding="utf-8")
    assert main([*db, "load", "--apply-to-running", str(path)]) == 1
    assert "bỏ 1 trường của mẫu báo cáo" in capsys.readouterr().err
    assert _versions(db) == [(1, True)]
    assert main([*db, "load", "--confirm", "--apply-to-running", str(path)]) == 0
    assert _cycle(db, "2023") == (2, 33)
