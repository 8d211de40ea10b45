"""Importing the seed plan's text gives the hand-encoded Hạ Lang plan back: the same basis
references, the same six assignment groups with the same bullets, the same deadlines and
routing, the same recipients.  The differences, if any, are printed."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from engine.importer.api import draft_yaml, import_document, report_lines
from engine.importer.compare import compare
from engine.loader import load, read_files
from tests.import_docs import run_import

ROOT = Path(__file__).resolve().parent.parent
# The seed text as the repository keeps it (the same bytes as shared/seed/).
SEED = ROOT / "plan_definitions" / "sources" / "000_c128544cc2c3a018.txt"
REGISTRY = ROOT / "plan_definitions" / "registry_cao_bang.yaml"
HAND = ROOT / "plan_definitions" / "ha_lang_pccc_2022.yaml"


@pytest.fixture(scope="module")
def registry():
    catalog, problems = read_files([REGISTRY])
    assert not problems
    return catalog.registries["cao-bang"].definition


@pytest.fixture(scope="module")
def draft(registry):
    return import_document(SEED, registry)


@pytest.fixture(scope="module")
def draft_data(draft):
    return yaml.safe_load(draft_yaml(draft))


@pytest.fixture(scope="module")
def hand():
    catalog, problems = read_files([HAND])
    assert not problems
    return catalog.plans["ha-lang-pccc-2022"].definition.model_dump(mode="json")


def test_the_seed_draft_matches_the_hand_encoded_plan(draft_data, hand):
    differences = compare(draft_data, hand)
    for difference in differences:
        print(difference)
    main = [d for d in differences if d.part != "detail"]
    assert main == [], "\n".join(map(str, main))


def test_the_basis_chain_is_read_with_numbers_dates_and_what_implements_what(draft_data):
    basis = {b["number"]: b for b in draft_data["basis"] if b["number"]}
    assert set(basis) == {
        "47-CT/TW",
        "02-KL/TW",
        "1492/QĐ-TTg",
        "78-KH/TU",
        "2720/KH-UBND",
        "99/2019/QH",
        "630/QĐ-TTg",
        "204/KH-UBND",
        "136/2020/NĐ-CP",
    }
    ids = {b["number"]: b["id"] for b in draft_data["basis"] if b["number"]}
    assert sorted(basis["2720/KH-UBND"]["implements"]) == sorted(
        [ids["1492/QĐ-TTg"], ids["78-KH/TU"]]
    )
    assert basis["1492/QĐ-TTg"]["implements"] == [ids["02-KL/TW"]]
    assert (
        str(basis["47-CT/TW"]["date"]) == "2015-06-25"
    )  # from "Chỉ thị số 47 CT/TW ngày 25/6/2015"
    assert basis["204/KH-UBND"]["role"] == "continues"
    assert basis["630/QĐ-TTg"]["role"] == "combined_with"
    # the Đề án is named by title only, and the draft says so
    assert any(b["type"] == "ĐA" and b["number"] is None for b in draft_data["basis"])


def test_the_six_groups_and_their_bullets(draft_data, hand):
    mine = [(a["section"], a["to"], len(a["tasks"])) for a in draft_data["assignments"]]
    theirs = [
        (a["section"], {k: v for k, v in a["to"].items() if v}, len(a["tasks"]))
        for a in hand["assignments"]
    ]
    assert mine == theirs
    assert [t["recurrence"] for a in draft_data["assignments"] for t in a["tasks"]] == [
        t["recurrence"] for a in hand["assignments"] for t in a["tasks"]
    ]
    assert draft_data["assignments"][5]["mode"] == "request"  # "6. Đề nghị Ủy ban Mặt trận …"


def test_deadlines_routing_and_the_combined_report(draft_data):
    report = draft_data["deliverables"][1]
    assert report["deadline"] == {
        "rule": "yearly",
        "day": 10,
        "month": 9,
        "phrase": "trước ngày 10/9/ hằng năm",
        "policy": "next_working_day",
    }
    assert report["routing"] == {"to": "ubnd-huyen-ha-lang", "via": "ca-huyen-ha-lang"}
    consolidation = draft_data["consolidations"][0]
    assert consolidation["routing"] == {"to": "ubnd-tinh-cao-bang", "via": "ca-tinh-cao-bang"}
    assert (consolidation["deadline"]["day"], consolidation["deadline"]["month"]) == (25, 9)
    assert consolidation["by"] == "ca-huyen-ha-lang"
    assert consolidation["on_behalf_of"] == "ubnd-huyen-ha-lang"
    assert "630/QĐ-TTg" in consolidation["combined_with"]


def test_unsure_points_are_marked_in_the_draft_and_reported_with_line_numbers(draft):
    text = draft_yaml(draft)
    lines = report_lines(draft)
    # "trước ngày 10/9" literally ends on 9/9: the reading is left to the administrator
    assert "# KIỂM TRA (dòng 193): “trước ngày 10/9/ hằng năm”: theo nghĩa đen" in text
    assert any(
        line.endswith(
            ".txt:193: chưa chắc: câu không nêu thời hạn; hạn dưới đây là tạm định (assumed: true), sửa theo thực tế"
        )
        for line in lines
    )
    # no line of the seed is left unread
    assert [f for f in draft.findings if f.kind == "không hiểu"] == []
    # the signer: only "CHỦ TỊCH" is in the text
    assert any(":235: chưa chắc: chỉ thấy “CHỦ TỊCH”" in line for line in lines)


def test_the_draft_validates_with_the_registry(tmp_path, draft):
    (tmp_path / "draft.yaml").write_text(draft_yaml(draft), encoding="utf-8")
    shutil.copy(REGISTRY, tmp_path / "registry.yaml")
    catalog = load([tmp_path / "draft.yaml", tmp_path / "registry.yaml"], siblings=False)
    assert len(catalog.plans) == 1


def test_the_command_writes_the_draft_and_diffs_it(tmp_path):
    output = tmp_path / "draft.yaml"
    done = run_import(str(SEED), "--registry", str(REGISTRY), "-o", str(output))
    assert done.returncode == 0, done.stderr
    assert output.read_text(encoding="utf-8").startswith("# yaml-language-server")
    assert "Đã ghi" in done.stderr and "chỗ cần kiểm tra" in done.stderr
    diffed = run_import(str(SEED), "--registry", str(REGISTRY), "--diff", str(HAND))
    print(diffed.stdout)
    assert diffed.returncode == 0, diffed.stdout
    assert "0 khác biệt chính" in diffed.stdout


def test_diff_names_what_differs_and_exits_1(tmp_path):
    changed = HAND.read_text(encoding="utf-8").replace(
        "day: 25\n      month: 9", "day: 20\n      month: 9", 1
    )
    changed = changed.replace(
        "heading: Phòng Kinh tế Hạ tầng", "heading: Phòng Kinh tế và Hạ tầng", 1
    )
    assert changed != HAND.read_text(encoding="utf-8")
    (tmp_path / "plan.yaml").write_text(changed, encoding="utf-8")
    diffed = run_import(
        str(SEED), "--registry", str(REGISTRY), "--diff", str(tmp_path / "plan.yaml")
    )
    assert diffed.returncode == 1
    assert "consolidations: mục 1 (tong-hop-bao-cao-nam): hạn" in diffed.stdout
    assert "II.3 Phòng Kinh tế và Hạ tầng: tiêu đề “Phòng Kinh tế Hạ tầng”" in diffed.stdout
    assert "2 khác biệt chính" in diffed.stdout


def test_the_importer_knows_the_schema_s_document_types():
    from engine.importer.refs import SCHEMA_TYPES
    from engine.schema import DocumentType

    assert {t.value for t in DocumentType} == SCHEMA_TYPES


def test_registry_and_plan_may_be_named_by_their_ids_in_the_store(tmp_path):
    store = f"sqlite:///{tmp_path / 'store.sqlite'}"
    loaded = subprocess.run(
        [sys.executable, "-m", "cli", "--database-url", store, "load", "plan_definitions/"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )
    assert loaded.returncode == 0, loaded.stderr
    base = [sys.executable, "-m", "cli", "--database-url", store, "import", str(SEED)]
    diffed = subprocess.run(
        [*base, "--registry", "cao-bang", "--diff", "ha-lang-pccc-2022"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )
    assert diffed.returncode == 0, diffed.stderr
    assert "0 khác biệt chính" in diffed.stdout
    unknown = subprocess.run(
        [*base, "--registry", "khong-co"], capture_output=True, text=True, cwd=ROOT, timeout=120
    )
    assert unknown.returncode == 4
    assert "chưa nạp danh bạ 'khong-co'" in unknown.stderr and "Traceback" not in unknown.stderr
