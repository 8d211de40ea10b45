"""Fuzzing the loader: any YAML it is given ends in a located problem or in success.

Documents are made from the seed plan and the province registry (plan_definitions/),
by replacing random nodes of their tree with values of random YAML types (null,
true/false, huge and non-finite numbers, dates and date-like text, lists, mappings)
and their numbers with extreme ones,
and by damaging the text (a tab, a repeated line, a cut, a BOM, Latin-1 bytes). The
only outcomes allowed are success or ``DefinitionError`` whose every problem names
one of the given files with a line and column (a file that cannot be read at all:
the file alone). The CLI turns exactly these into exit 3 (the cases at the end run
it); anything else would be exit 70.

The normal run tries ``KEHOACH_FUZZ_EXAMPLES`` trees (default 100; about 70 ms each
on the 2-core machine, most of it the cross-file checks) and a quarter as many damaged
texts; a longer run:

    KEHOACH_FUZZ_EXAMPLES=5000 .venv/bin/python -m pytest -q tests/test_loader_fuzz.py --timeout=0
"""

from __future__ import annotations

import contextlib
import copy
import datetime as dt
import io
import os
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cli import main
from engine.errors import DefinitionError
from engine.loader import load
from engine.yamlsource import read

DEFINITIONS = Path(__file__).resolve().parents[1] / "plan_definitions"
PLAN = DEFINITIONS / "ha_lang_pccc_2022.yaml"
REGISTRY = DEFINITIONS / "registry_cao_bang.yaml"
OTHERS = {
    "plan": [
        REGISTRY,
        DEFINITIONS / "calendar_vn.yaml",
        DEFINITIONS / "cao_bang_2720_kh_ubnd.yaml",
    ],
    "registry": [
        PLAN,
        DEFINITIONS / "calendar_vn.yaml",
        DEFINITIONS / "cao_bang_2720_kh_ubnd.yaml",
    ],
}
EXAMPLES = int(os.environ.get("KEHOACH_FUZZ_EXAMPLES", "100"))
TREES = {"plan": read(PLAN).data, "registry": read(REGISTRY).data}


def _paths(node: Any, prefix: tuple = ()) -> list[tuple]:
    found = [prefix]
    if isinstance(node, dict):
        for key, value in node.items():
            found += _paths(value, (*prefix, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            found += _paths(value, (*prefix, index))
    return found


PATHS = {kind: _paths(tree) for kind, tree in TREES.items()}


def _at(tree: Any, path: tuple) -> Any:
    for step in path:
        tree = tree[step]
    return tree


# the numbers of each tree (years, days, months, reminders ...): one mutation in two
# gives one of them an extreme number, where overflows hide
NUMBERS = {kind: [p for p in PATHS[kind] if type(_at(TREES[kind], p)) is int] for kind in TREES}
extreme_numbers = st.one_of(
    st.integers(-(10**6), 10**6),
    st.sampled_from([0, -1, 10**4, 99_999, 10**9, 10**15, 10**16, 10**30]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(),
)

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=10**15, max_value=10**40),
    st.floats(allow_nan=True, allow_infinity=True),
    st.dates(min_value=dt.date(1, 1, 1), max_value=dt.date(9999, 12, 31)),
    st.datetimes(),
    st.sampled_from(
        [
            "",
            "2022-13-01",
            "10/9/2023",
            "2023-9-10",
            "20230910",
            "plan",
            "registry",
            "yearly",
            "all",
            "once",
            "ca-huyen-ha-lang",
            "KH",
            "report",
            "x" * 300,
        ]
    ),
    st.text(max_size=20),
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=6,
)


@st.composite
def mutated_tree(draw: st.DrawFn) -> tuple[str, Any]:
    kind = draw(st.sampled_from(["plan", "plan", "plan", "registry"]))
    tree = copy.deepcopy(TREES[kind])
    for _ in range(draw(st.integers(1, 3))):
        if NUMBERS[kind] and draw(st.booleans()):
            path, value = draw(st.sampled_from(NUMBERS[kind])), draw(extreme_numbers)
        else:
            path, value = draw(st.sampled_from(PATHS[kind])), draw(values)
        if not path:
            tree = value
            break
        node = tree
        try:
            for step in path[:-1]:
                node = node[step]
            node[path[-1]] = value
        except (KeyError, IndexError, TypeError):  # an earlier mutation moved it
            continue
    return kind, tree


def _damage(text: str, how: str, where: float) -> bytes:
    lines = text.splitlines(keepends=True)
    at = int(where * max(len(lines) - 1, 0))
    if how == "tab":
        lines[at] = "\t" + lines[at]
    elif how == "repeat":
        lines.insert(at, lines[at])
    elif how == "cut":
        lines = lines[:at]
    elif how == "bom":
        return b"\xef\xbb\xbf" + text.encode("utf-8")
    elif how == "latin1":
        return text.encode("utf-8").replace("ạ".encode(), b"\xe1", 3)
    elif how == "comments":
        return b"# only a comment\n# and another\n"
    return "".join(lines).encode("utf-8")


def _dump(tree: Any) -> str:
    return yaml.safe_dump(tree, allow_unicode=True, sort_keys=False)


def _check(path: Path, kind: str) -> None:
    files = [path, *OTHERS[kind]]
    try:
        load(files, siblings=False)
    except DefinitionError as exc:
        assert exc.problems
        given = {str(f) for f in files}
        for problem in exc.problems:
            assert problem.location.file in given, str(problem)
            assert problem.location.line >= 1 and problem.location.column >= 1, str(problem)
            assert problem.message.strip(), str(problem)


FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)


@FUZZ
@given(case=mutated_tree())
def test_any_tree_loads_or_is_a_located_problem(tmp_path_factory, case) -> None:
    kind, tree = case
    path = tmp_path_factory.mktemp("fuzz") / f"{kind}.yaml"
    try:
        text = _dump(tree)
    except (yaml.YAMLError, ValueError):  # not representable in YAML: nothing to feed
        return
    path.write_text(text, encoding="utf-8")
    _check(path, kind)


@settings(max_examples=max(EXAMPLES // 4, 10), deadline=None, database=None)
@given(
    kind=st.sampled_from(["plan", "registry"]),
    how=st.sampled_from(["tab", "repeat", "cut", "bom", "latin1", "comments"]),
    where=st.floats(0, 1),
)
def test_damaged_text_loads_or_is_a_located_problem(tmp_path_factory, kind, how, where) -> None:
    source = PLAN if kind == "plan" else REGISTRY
    path = tmp_path_factory.mktemp("fuzz") / f"{kind}.yaml"
    path.write_bytes(_damage(source.read_text(encoding="utf-8"), how, where))
    _check(path, kind)


@pytest.mark.parametrize(
    ("name", "content", "expected"),
    [
        ("empty.yaml", b"", "tệp trống"),
        ("comments.yaml", b"# chu thich\n", "tệp trống hoặc chỉ có chú thích"),
        ("latin1.yaml", b"kind: plan\nid: k\xe9\n", "không phải UTF-8"),
        ("tab.yaml", b"kind: plan\n\tid: x\n", "ký tự tab"),
        ("dup.yaml", b"kind: plan\nid: a\nid: b\n", "khóa 'id' bị lặp: đã có ở dòng 2"),
        ("as_of_number.yaml", b"kind: plan\nid: a\nas_of: 0\n", "là một số, ở đây cần một ngày"),
        ("as_of_text.yaml", b"kind: plan\nid: a\nas_of: 1/11/2022\n", "(viết 2022-11-01)"),
        ("year_bool.yaml", b"kind: plan\nid: a\nstart_year: true\n", "là true/false"),
        ("year_huge.yaml", b"kind: plan\nid: a\nstart_year: " + b"9" * 30 + b"\n", "quá lớn"),
        ("id_list.yaml", b"kind: plan\nid: [a]\n", "không phải một danh sách"),
        ("kind_null.yaml", b"kind:\nid: a\n", "kind: để trống (null) không phải là loại"),
        ("binary.yaml", b"kind: plan\nid: a\nregistry: !!binary aGVsbG8=\n", "!!binary"),
    ],
)
def test_each_type_confusion_says_where_and_what(tmp_path, name, content, expected) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(DefinitionError) as caught:
        load([path], siblings=False)
    texts = [str(p) for p in caught.value.problems]
    assert any(expected in t and t.startswith(f"{path}:") for t in texts), texts
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        assert main(["validate", str(path)]) == 3
    assert expected in err.getvalue() and "Traceback" not in err.getvalue()


def test_a_directory_is_said_to_be_one(tmp_path) -> None:
    folder = tmp_path / "plan.yaml"
    folder.mkdir()
    with pytest.raises(DefinitionError) as caught:
        load([folder], siblings=False)
    assert "đây là một thư mục, không phải tệp" in str(caught.value)
    empty = tmp_path / "rong"
    empty.mkdir()
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        assert main(["validate", str(empty)]) == 1
    assert "là một thư mục không có tệp .yaml/.yml nào" in err.getvalue()


def test_a_plan_whose_year_overflowed_the_calendar_is_a_located_problem(tmp_path) -> None:
    """start_year: 10**30 ended in exit 70 (OverflowError in the deadline check)."""
    text = PLAN.read_text(encoding="utf-8")
    for year, expected in (("1" + "0" * 30, "quá lớn"), ("99999", "nằm ngoài 1900–2200")):
        path = tmp_path / f"plan-{len(year)}.yaml"
        path.write_text(text.replace("start_year: 2023", f"start_year: {year}"), encoding="utf-8")
        err = io.StringIO()
        with contextlib.redirect_stderr(err):
            assert main(["validate", str(path), *map(str, OTHERS["plan"])]) == 3
        assert f"{path}:18:13: start_year:" in err.getvalue() and expected in err.getvalue()
