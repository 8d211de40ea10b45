"""The loader rejects each kind of mistake at the right line and column, with no traceback."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from cli import main
from engine.errors import DefinitionError
from engine.loader import load

DATA = Path(__file__).parent / "data" / "loader"
BROKEN = sorted((DATA / "broken").glob("*.yaml"))
EXPECT = re.compile(r"# expect: (?P<pos>\d+:\d+|any): (?P<text>.+)")


def _expectation(path: Path) -> tuple[str, str, Path | None]:
    side = path.with_suffix(".expect")
    header = side.read_text(encoding="utf-8") if side.exists() else path.read_text(encoding="utf-8")
    match = EXPECT.match(header.splitlines()[0])
    assert match, f"{path.name} has no '# expect:' line"
    base = None
    if not side.exists():
        second = header.splitlines()[1]
        if second == "# base: base_plan.yaml":
            base = DATA / "base_registry.yaml"
    return match["pos"], match["text"], base


def test_the_corpus_covers_at_least_thirty_mistakes():
    assert len(BROKEN) >= 30


def test_the_bases_are_valid():
    catalog = load([DATA / "base_plan.yaml", DATA / "base_registry.yaml"])
    assert set(catalog.plans) == {"ke-hoach-thu"}
    assert set(catalog.registries) == {"test-tinh"}


@pytest.mark.parametrize("path", BROKEN, ids=[p.stem for p in BROKEN])
def test_broken_file_is_rejected_at_its_place(path: Path):
    pos, text, base = _expectation(path)
    files = [path] + ([base] if base else [])
    with pytest.raises(DefinitionError) as caught:
        load(files, siblings=False)
    mine = [p for p in caught.value.problems if p.location.file == str(path)]
    matching = [p for p in mine if text in p.message]
    assert matching, f"no problem mentions {text!r}: {[str(p) for p in mine]}"
    if pos != "any":
        line, column = map(int, pos.split(":"))
        assert any((p.location.line, p.location.column) == (line, column) for p in matching), (
            f"expected {pos}, got {[str(p) for p in matching]}"
        )


@pytest.mark.parametrize("path", BROKEN[:8] + BROKEN[-8:], ids=lambda p: p.stem)
def test_cli_prints_located_errors_without_traceback(path: Path, capsys):
    _pos, _text, base = _expectation(path)
    args = ["validate", str(path)] + ([str(base)] if base else [])
    code = main(args)
    out, err = capsys.readouterr()
    assert code == 3
    assert "Traceback" not in out + err
    assert re.search(rf"{re.escape(str(path))}:\d+:\d+: ", err)
    assert "không lưu gì" in err


def test_several_problems_are_reported_at_once(tmp_path: Path):
    text = (DATA / "base_plan.yaml").read_text(encoding="utf-8")
    text = text.replace("to: {unit: ca-huyen}", "to: {unit: ca-huyn}")
    text = text.replace("    by: ca-huyen", "    by: phong-vhtt")
    text = text.replace("measured_by: ty-le", "measured_by: khong-co")
    broken = tmp_path / "plan.yaml"
    broken.write_text(text, encoding="utf-8")
    with pytest.raises(DefinitionError) as caught:
        load([broken, DATA / "base_registry.yaml"])
    codes = {p.code for p in caught.value.problems}
    assert {"unknown-unit", "consolidator-receives-nothing", "unknown-field"} <= codes


def test_registry_is_found_next_to_the_plan(tmp_path: Path):
    for name in ("base_plan.yaml", "base_registry.yaml"):
        (tmp_path / name).write_text((DATA / name).read_text(encoding="utf-8"), encoding="utf-8")
    catalog = load([tmp_path / "base_plan.yaml"])
    assert [item.definition.id for item in catalog.given()] == ["ke-hoach-thu"]
    assert "test-tinh" in catalog.registries


def test_vietnamese_text_survives_loading():
    catalog = load([DATA / "base_plan.yaml", DATA / "base_registry.yaml"])
    plan = catalog.plans["ke-hoach-thu"].definition
    assert plan.report_templates[0].fields[0].label == "Số vụ cháy"
    assert plan.document.signer.on_behalf_of == "ỦY BAN NHÂN DÂN"


def _alias_bomb(levels: int) -> str:
    """Nested YAML aliases: each level repeats the one above nine times."""
    lines = ["kind: plan", 'a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for n in range(1, levels):
        lines.append(f"a{n}: &a{n} [{', '.join([f'*a{n - 1}'] * 9)}]")
    return "\n".join(lines) + "\n"


def test_aliases_cannot_blow_a_small_file_up(tmp_path: Path, capsys):
    """Six levels (about 500 bytes) would expand to 531,441 values; the loader refuses at
    the anchor with a located message, and the CLI says so without a traceback."""
    bomb = tmp_path / "bomb.yaml"
    bomb.write_text(_alias_bomb(6), encoding="utf-8")
    assert len(bomb.read_bytes()) < 600
    with pytest.raises(DefinitionError) as caught:
        load([bomb])
    assert any("bị các bí danh (*tên) lặp lại" in str(p) for p in caught.value.problems)
    assert main(["validate", str(bomb)]) == 3
    err = capsys.readouterr().err + capsys.readouterr().out
    assert f"{bomb}:" in err and "hãy viết phần lặp lại ra" in err


def test_aliases_that_repeat_a_little_still_load(tmp_path: Path):
    """An alias used a few times is ordinary YAML and stays allowed."""
    from engine.yamlsource import parse

    text = "a: &x {b: 1, c: [1, 2, 3]}\nd: *x\ne: *x\n"
    assert parse(text, "t.yaml").data["e"] == {"b": 1, "c": [1, 2, 3]}


@pytest.mark.parametrize(
    ("value", "shape"),
    [("{a: 1}", "một mục có các khóa (key: value)"), ("[plan]", "một danh sách (- ...)")],
)
def test_a_kind_that_is_not_a_word_is_a_located_error(tmp_path: Path, capsys, value, shape):
    """`kind:` given a mapping or a list ended in an internal error (exit 70)."""
    path = tmp_path / "kind.yaml"
    path.write_text(f"kind: {value}\nid: x\n", encoding="utf-8")
    assert main(["validate", str(path)]) == 3
    out = capsys.readouterr()
    text = out.err + out.out
    assert f"{path}:1:7: kind: {shape} không phải là loại định nghĩa" in text
    assert "lỗi nội bộ" not in text
