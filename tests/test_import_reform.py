"""`kehoach import` reads unit names against the registry as it stands on the document's
date: the 2025 change sets (plan_definitions/registry_changes/) that took effect by then
are applied, a name of a unit they abolished is written as its heir with a located
Vietnamese note, a name of a unit with no heir or of no unit at all is marked, never
guessed; each task's time is written in ``due`` where the schema reads it."""

from __future__ import annotations

import pytest
import yaml

from cli.main import main
from engine.importer.api import draft_yaml, import_document
from engine.importer.directory import directory_of
from engine.loader import load, read_files
from engine.registry_files import change_files, registry_with
from engine.yamlsource import read
from tests.import_docs import ROOT

DEFINITIONS = ROOT / "plan_definitions"
REGISTRY = DEFINITIONS / "registry_cao_bang.yaml"
CHANGES = DEFINITIONS / "registry_changes"
DOCUMENT = ROOT / "tests" / "data" / "import_reform" / "ubnd_tinh_pccc_ha_lang_2026.txt"


@pytest.fixture(scope="module")
def registry():
    """The registry file as the command reads it (no schema: engine.importer.directory)."""
    found = directory_of(read(REGISTRY).data, str(REGISTRY))
    assert found is not None
    return found


@pytest.fixture(scope="module")
def draft(registry):
    return import_document(DOCUMENT, registry, change_files([CHANGES]))


def _notes(draft, line):
    return [f.text for f in draft.findings if f.line == line and f.kind == "chưa chắc"]


def test_an_abolished_unit_is_written_as_its_heir_on_the_document_s_date(draft):
    plan = yaml.safe_load(draft_yaml(draft))
    to = {a["heading"]: a["to"] for a in plan["assignments"]}
    # ended 28/2/2025 (cao-bang-2025-03-cong-an): the provincial police carry its work
    assert to["Công an huyện Hạ Lang"] == {"unit": "ca-tinh-cao-bang"}
    heir, literal = _notes(draft, 18)
    assert heir == (
        "“Công an huyện Hạ Lang” là Công an huyện Hạ Lang (ca-huyen-ha-lang), không còn từ "
        "ngày 1/3/2025 (thay đổi danh bạ cao-bang-2025-03-cong-an); vào ngày của văn bản "
        "(16/3/2026) đơn vị kế thừa là Công an tỉnh Cao Bằng: đã ghi ca-tinh-cao-bang"
    )
    assert literal.startswith("“trước ngày 30/6/2026”: theo nghĩa đen")  # its task's due
    # a district department merged into the commune on 1/7/2025
    assert to["Phòng Văn hóa và Thông tin huyện Hạ Lang"] == {"unit": "ubnd-xa-ha-lang-2025"}
    (note,) = _notes(draft, 20)
    assert "(phong-vhtt-ha-lang), không còn từ ngày 1/7/2025" in note
    assert "cao-bang-2025-07-cap-huyen" in note and "đã ghi ubnd-xa-ha-lang-2025" in note
    # the new commune of the same name as an old one is the unit of the date: no note
    assert to["UBND xã Lý Quốc"] == {"unit": "ubnd-xa-ly-quoc-2025"}
    assert _notes(draft, 22) == []
    # the change sets used are named above `registry:`
    comments = " ".join(line.strip("# ") for line in draft_yaml(draft).splitlines())
    assert "sau các thay đổi danh bạ: cao-bang-2025-03-cong-an (từ 1/3/2025)" in comments
    assert draft.changes == [
        "cao-bang-2025-03-cong-an (từ 1/3/2025)",
        "cao-bang-2025-07-cap-huyen (từ 1/7/2025)",
    ]


def test_a_unit_with_no_heir_or_no_unit_at_all_is_marked_not_guessed(draft):
    plan = yaml.safe_load(draft_yaml(draft))
    hdnd = next(r for r in plan["recipients"] if r["name"] == "HĐND huyện Hạ Lang")
    assert "units" not in hdnd and "groups" not in hdnd
    (note,) = _notes(draft, 27)
    assert "(hdnd-huyen-ha-lang), không còn từ ngày 1/7/2025" in note
    assert "không có đơn vị kế thừa" in note and "16/3/2026" in note
    # a body the registry has at no date: a temporary id and the registry draft
    to = {a["heading"]: a["to"] for a in plan["assignments"]}
    assert to["Ban Quản lý Khu kinh tế tỉnh"] == {"unit": "moi-ban-quan-ly-khu-kinh-te-tinh"}
    (note,) = _notes(draft, 24)
    assert note.startswith("“Ban Quản lý Khu kinh tế tỉnh” không có trong danh bạ")


def test_the_same_names_before_the_reform_are_the_units_of_then(registry, tmp_path):
    before = tmp_path / "ke-hoach-2024.txt"
    before.write_text(
        DOCUMENT.read_text(encoding="utf-8").replace("16 tháng 3 năm 2026", "16 tháng 3 năm 2024"),
        encoding="utf-8",
    )
    draft = import_document(before, registry, change_files([CHANGES]))
    plan = yaml.safe_load(draft_yaml(draft))
    to = {a["heading"]: a["to"] for a in plan["assignments"]}
    assert to["Công an huyện Hạ Lang"] == {"unit": "ca-huyen-ha-lang"}
    assert to["Phòng Văn hóa và Thông tin huyện Hạ Lang"] == {"unit": "phong-vhtt-ha-lang"}
    assert to["UBND xã Lý Quốc"] == {"unit": "ubnd-xa-ly-quoc"}
    assert draft.changes == []
    assert not any("không còn từ ngày" in f.text for f in draft.findings)


def test_the_draft_validates_against_the_registry_of_its_date(draft, tmp_path):
    catalog, problems = read_files([REGISTRY])
    assert problems == []
    dated = registry_with(catalog.registries["cao-bang"].definition, change_files([CHANGES]))
    (tmp_path / "plan.yaml").write_text(draft_yaml(draft), encoding="utf-8")
    added = yaml.safe_load(
        "units: [{id: moi-ban-quan-ly-khu-kinh-te-tinh, name: Ban Quản lý Khu kinh tế tỉnh "
        "Cao Bằng, kind: agency}]"
    )["units"]
    whole = dated.model_copy(
        update={"units": [*dated.units, *(type(dated.units[0]).model_validate(u) for u in added)]}
    )
    loaded = load([tmp_path / "plan.yaml"], registry_lookup=lambda _id: whole, siblings=False)
    plan = next(iter(loaded.plans.values())).definition
    # each task's time is the schema's: tracked, due on the window's last day
    due = {t.text.split()[0]: (t.window.end, t.phrase) for t in plan.tracked.tasks}
    assert due["Chủ"][1] == "trước ngày 30/6/2026"
    assert str(due["Tuyên"][0]) == "2026-06-30" and due["Tuyên"][1] == "quý II năm 2026"
    assert str(due["Rà"][0]) == "2026-05-31"


def test_the_command_applies_the_change_sets_beside_the_registry(tmp_path, capsys):
    output = tmp_path / "draft.yaml"
    code = main(["import", str(DOCUMENT), "--registry", str(REGISTRY), "-o", str(output)])
    assert code == 0
    err = capsys.readouterr().err
    assert f"{DOCUMENT}:18: chưa chắc: “Công an huyện Hạ Lang” là Công an huyện Hạ Lang" in err
    assert "sau các thay đổi: cao-bang-2025-03-cong-an (từ 1/3/2025)" in err
    assert "to: {unit: ca-tinh-cao-bang}" in output.read_text(encoding="utf-8")
    # named explicitly: only the police change set
    code = main(
        [
            "import",
            str(DOCUMENT),
            "--registry",
            str(REGISTRY),
            "--changes",
            str(CHANGES / "cao_bang_2025_03_cong_an.yaml"),
            "-o",
            str(output),
        ]
    )
    assert code == 0
    text = output.read_text(encoding="utf-8")
    assert "to: {unit: ca-tinh-cao-bang}" in text and "to: {unit: phong-vhtt-ha-lang}" in text


def test_a_change_set_that_does_not_fit_the_registry_is_refused_located(tmp_path, capsys):
    wrong = tmp_path / "sai.yaml"
    wrong.write_text(
        "kind: registry-change\nid: sai\nregistry: cao-bang\nname: Sai\neffective: 2025-01-01\n"
        "changes:\n  - op: abolish\n    unit: khong-co-don-vi\n",
        encoding="utf-8",
    )
    code = main(["import", str(DOCUMENT), "--registry", str(REGISTRY), "--changes", str(wrong)])
    assert code == 3
    err = capsys.readouterr().err
    assert f"{wrong}:8:" in err and "không có đơn vị 'khong-co-don-vi'" in err
    assert "Traceback" not in err


def test_a_file_named_as_changes_that_is_not_a_change_set_is_refused(capsys):
    code = main(["import", str(DOCUMENT), "--registry", str(REGISTRY), "--changes", str(REGISTRY)])
    assert code == 3
    assert "không phải tệp thay đổi danh bạ" in capsys.readouterr().err


def test_a_stored_registry_brings_the_change_sets_applied_to_it(tmp_path, capsys):
    store = f"sqlite:///{tmp_path / 'store.sqlite'}"
    assert main(["--database-url", store, "load", str(REGISTRY)]) == 0
    assert main(["--database-url", store, "registry", "apply", str(CHANGES)]) == 0
    capsys.readouterr()
    output = tmp_path / "draft.yaml"
    code = main(
        [
            "--database-url",
            store,
            "import",
            str(DOCUMENT),
            "--registry",
            "cao-bang",
            "-o",
            str(output),
        ]
    )
    err = capsys.readouterr().err
    assert code == 0, err
    text = output.read_text(encoding="utf-8")
    assert "to: {unit: ca-tinh-cao-bang}" in text and "to: {unit: ubnd-xa-ha-lang-2025}" in text
    assert "là Công an huyện Hạ Lang (ca-huyen-ha-lang), không còn từ ngày 1/3/2025" in err
