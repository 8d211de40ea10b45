"""A name only like a registry unit (a score of 80 to 90) is not written as that unit.

The seed with two headings renamed: "Đài Truyền thanh" (no such unit; the nearest is
"Thanh tra huyện Hạ Lang", 89) and "Phòng Lao động TBXH" (the nearest, "Phòng Lao động
- Thương binh và Xã hội huyện Hạ Lang", 84, is the right one), the second also as the
report's "qua …".  Either would be a guess: the draft writes a temporary id with the
nearest names in a comment, `kehoach validate` refuses it until a person writes the
unit, and the command warns once per name."""

from __future__ import annotations

import datetime as dt
import re

import pytest
import yaml

from cli.importer import _registry_file
from cli.main import main
from engine.errors import DefinitionError
from engine.importer.api import draft_yaml, import_document
from engine.importer.units import LIKELY, SURE, UnitMatcher
from engine.loader import load
from tests.import_docs import ROOT

SEED = ROOT / "plan_definitions" / "sources" / "000_c128544cc2c3a018.txt"
REGISTRY = ROOT / "plan_definitions" / "registry_cao_bang.yaml"
RENAMED = {
    "2. Phòng Văn hóa và Thông tin \n": "2. Đài Truyền thanh \n",
    "3. Phòng Kinh tế Hạ tầng \n": "3. Phòng Lao động TBXH \n",
    "báo cáo UBND huyện qua Công \n\nan huyện trước ngày 10/9/": (
        "báo cáo UBND huyện qua Phòng Lao động TBXH trước ngày 10/9/"
    ),
}
GUESSES = ("thanh-tra-huyen-ha-lang", "phong-ldtbxh-ha-lang")


@pytest.fixture(scope="module")
def near_plan(tmp_path_factory):
    text = SEED.read_text(encoding="utf-8")
    for old, new in RENAMED.items():
        assert text.count(old) == 1, old
        text = text.replace(old, new)
    path = tmp_path_factory.mktemp("near") / "ke_hoach.txt"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def registry():
    return _registry_file(REGISTRY)


@pytest.fixture(scope="module")
def draft(near_plan, registry):
    return import_document(near_plan, registry)


def test_the_names_score_in_the_band_between_likely_and_sure(registry):
    matcher = UnitMatcher(
        registry,
        dt.date(2022, 11, 1),
        ["huyện Hạ Lang", "tỉnh Cao Bằng"],
        "Ủy ban nhân dân huyện Hạ Lang",
    )
    for name, nearest in zip(("Đài Truyền thanh", "Phòng Lao động TBXH"), GUESSES, strict=True):
        match = matcher.match(name)
        assert match.best is not None and match.best.id == nearest
        assert LIKELY <= match.best.score < SURE, (name, match.best.score)
        assert match.target() is None and not match.sure and match.near


def test_a_near_name_is_written_unresolved_with_its_nearest_names(draft):
    text = draft_yaml(draft)
    data = yaml.safe_load(text)
    by_heading = {a["heading"]: a for a in data["assignments"]}
    assert by_heading["Đài Truyền thanh"]["to"] == {"unit": "chua-ro-dai-truyen-thanh"}
    assert by_heading["Phòng Lao động TBXH"]["to"] == {"unit": "chua-ro-phong-lao-dong-tbxh"}
    vias = {d["routing"].get("via") for d in data["deliverables"]}
    assert "chua-ro-phong-lao-dong-tbxh" in vias
    # neither guess is written anywhere as a value
    values = [line.split("#")[0] for line in text.splitlines()]
    assert not [v for v in values if any(g in v for g in GUESSES)]
    flat = " ".join(line.strip().lstrip("# ") for line in text.splitlines())
    assert (
        "KIỂM TRA (dòng 110): “Đài Truyền thanh” gần giống “Thanh tra huyện Hạ Lang” "
        "(thanh-tra-huyen-ha-lang, 89 %)"
    ) in flat
    assert (
        "“Phòng Lao động TBXH” gần giống “Phòng Lao động - Thương binh và Xã hội huyện Hạ Lang” "
        "(phong-ldtbxh-ha-lang, 84 %)"
    ) in flat
    # not a unit missing from the registry: no registry draft for it
    assert draft.registry_draft is None


def test_the_draft_fails_validation_until_a_person_writes_the_unit(draft, tmp_path):
    text = draft_yaml(draft)
    plan = tmp_path / "plan.yaml"
    plan.write_text(text, encoding="utf-8")
    with pytest.raises(DefinitionError) as refused:
        load([plan, REGISTRY], siblings=False)
    named = {p.message for p in refused.value.problems}
    assert any("không có đơn vị 'chua-ro-dai-truyen-thanh'" in m for m in named), named
    assert any("không có đơn vị 'chua-ro-phong-lao-dong-tbxh'" in m for m in named), named
    # the administrator's choice, place by place: the right unit for the TBXH heading,
    # another for the radio station, and the district police for the report's "qua …"
    # (the seed's consolidation is made by the police: through TBXH it would get nothing)
    resolved = (
        text.replace("via: chua-ro-phong-lao-dong-tbxh", "via: ca-huyen-ha-lang")
        .replace("chua-ro-phong-lao-dong-tbxh", "phong-ldtbxh-ha-lang")
        .replace("chua-ro-dai-truyen-thanh", "phong-vhtt-ha-lang")
    )
    plan.write_text(resolved, encoding="utf-8")
    assert len(load([plan, REGISTRY], siblings=False).plans) == 1


def test_the_command_warns_once_per_near_name(near_plan, tmp_path, capsys):
    code = main(["import", str(near_plan), "--registry", str(REGISTRY), "-o", str(tmp_path / "d")])
    err = capsys.readouterr().err
    assert code == 0 and "Traceback" not in err
    warnings = [line for line in err.splitlines() if line.startswith("Cảnh báo:")]
    assert len(warnings) == 2, warnings
    radio = next(w for w in warnings if "“Đài Truyền thanh”" in w)
    assert "dòng 110" in radio and "“Thanh tra huyện Hạ Lang” (89 %)" in radio
    assert "chua-ro-dai-truyen-thanh" in radio
    tbxh = next(w for w in warnings if "“Phòng Lao động TBXH”" in w)
    # the heading (line 120) and the routing (line 193): one warning naming both lines
    assert re.search(r"dòng 120, 193\b", tbxh), tbxh


def test_a_name_only_like_an_ended_unit_is_not_given_its_heir(tmp_path):
    """Mapping a name to the heir of the unit it resembles would be a guess upon a guess:
    "Công an Hạ Lang" in a 2026 plan is only 89 like the district police (ended on
    28/2/2025, heir the provincial police), so it is left for a person, saying the unit
    it resembles no longer exists; the full name is still read as the heir."""
    from engine.importer.directory import directory_of
    from engine.importer.interpret import Interpreter
    from engine.importer.sources import SourceText
    from engine.yamlsource import read

    anchor = "  - id: ca-huyen-ha-lang\n"
    ended = tmp_path / "registry.yaml"
    ended.write_text(
        REGISTRY.read_text(encoding="utf-8").replace(
            anchor, anchor + "    valid_to: 2025-02-28\n    successors: [ca-tinh-cao-bang]\n", 1
        ),
        "utf-8",
    )
    directory = directory_of(read(ended).data)
    day = dt.date(2026, 1, 1)
    matcher = UnitMatcher(directory, day, ["huyện Hạ Lang", "tỉnh Cao Bằng"])
    sure = matcher.match("Công an huyện Hạ Lang")
    assert sure.best is not None and sure.best.id == "ca-tinh-cao-bang" and sure.dated
    match = matcher.match("Công an Hạ Lang")
    assert match.dated is None and match.near
    assert match.best is not None and match.best.id == "ca-huyen-ha-lang"
    context = Interpreter(SourceText("k.txt", [], False, "dòng"), directory)
    context.matcher, context.as_of = matcher, day
    notes: list[str] = []
    assert context.target(match, 7, notes).data() == {"unit": "chua-ro-cong-an-ha-lang"}
    assert "(ca-huyen-ha-lang, 89 %, đơn vị không có vào ngày của văn bản)" in notes[0]
