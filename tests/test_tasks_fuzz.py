"""Tasks as tracked obligations (issue 10, item 1): fuzzed task constructs, content
sections and completions are loaded, or refused with located errors, never a crash."""

from __future__ import annotations

import json
import os
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.errors import DefinitionError
from engine.loader import load
from tests.tasks_support import (
    CALENDAR,
    DEPARTMENT,
    DEPARTMENT_FILE,
    MINISTRY_FILE,
    MINISTRY_REGISTRY,
    REGISTRY,
    variant,
)

_WORDS = st.sampled_from(
    [
        "quý",
        "IV",
        "II",
        "5",
        "tháng",
        "năm",
        "2026",
        "2024",
        "-",
        "–",
        "/",
        "đến",
        "6 tháng đầu năm",
        "thường xuyên",
        "trước ngày",
        "chậm nhất",
        "30/6",
        "31/2/2026",
        "13",
        "0",
        "99999",
        "giai đoạn",
        "",
        "ngày",
        "hoàn thành trong",
    ]
)
_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-10, 100_000),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
    st.lists(_WORDS, max_size=6).map(" ".join),
)
_TASK_VALUES = st.one_of(
    _SCALARS,
    st.lists(_SCALARS, max_size=3),
    st.fixed_dictionaries(
        {"phrase": st.lists(_WORDS, max_size=6).map(" ".join)},
        optional={
            "year": _SCALARS,
            "policy": st.sampled_from(["exact", "next_working_day", "sideways", 3]),
            "deadline_kind": st.sampled_from(["exclusive", "inclusive", "both", None]),
            "progress": st.one_of(
                _SCALARS, st.fixed_dictionaries({"day": _SCALARS, "month": _SCALARS})
            ),
        },
    ),
)
_KEYS = st.sampled_from(["due", "lead", "supporting", "completion", "deliverable_title", "number"])


def _yaml(value: object) -> str:
    return (
        json.dumps(value, ensure_ascii=False, allow_nan=True)
        .replace("NaN", ".nan")
        .replace("Infinity", ".inf")
    )


@settings(
    max_examples=int(os.environ.get("KEHOACH_FUZZ_EXAMPLES", "100")),
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(key=_KEYS, value=_TASK_VALUES, table=st.booleans())
def test_fuzzed_task_constructs_are_loaded_or_refused_with_a_location(
    tmp_path: Path, key: str, value: object, table: bool
) -> None:
    source = MINISTRY_FILE if table else DEPARTMENT_FILE
    anchor = (
        "        text: Truyền thông về chuyển đổi số trong ngành khoa học và công nghệ.\n"
        if table
        else "        text: Tham mưu UBND tỉnh các giải pháp thúc đẩy chuyển đổi số.\n"
    )
    path = variant(tmp_path, anchor, f"{anchor}        {key}: {_yaml(value)}\n", source)
    registry = MINISTRY_REGISTRY if table else REGISTRY
    try:
        catalog = load([registry, CALENDAR, path])
    except DefinitionError as exc:
        assert exc.problems and all(p.location.line > 0 for p in exc.problems), exc
    else:  # what loads is usable: every tracked task has a real deadline
        plan = next(iter(catalog.plans.values())).definition
        for deliverable in plan.tracked.deliverables:
            assert deliverable.deadline is not None


_SECTION = st.fixed_dictionaries(
    {
        "id": st.sampled_from(["phu-luc", "phu-luc-2", "Phu Luc", ""]),
        "title": st.one_of(st.just("Phụ lục II. Danh mục dự án"), st.just("Kinh phí"), _SCALARS),
        "text": st.one_of(st.just("Theo danh mục kèm theo."), st.just("Ngân sách tỉnh"), _SCALARS),
        "role": st.sampled_from(["funding", "solutions", "appendix", "other", "money", 1]),
    },
    optional={
        "items": st.one_of(_SCALARS, st.lists(_SCALARS, max_size=3)),
        "amounts": st.one_of(
            _SCALARS,
            st.lists(
                st.fixed_dictionaries(
                    {"label": _SCALARS, "amount": _SCALARS},
                    optional={
                        "unit": st.sampled_from(["dong", "billion", "usd"]),
                        "source": _SCALARS,
                    },
                ),
                max_size=2,
            ),
        ),
    },
)
_COMPLETION = st.fixed_dictionaries(
    {},
    optional={
        "by": st.sampled_from(["report", "periodic_report", "email"]),
        "deliverable": st.sampled_from(["bao-cao-6-thang", "khong-co", 3]),
        "field": st.sampled_from(["diem-ho-tro", "so-buoi-tuyen-truyen", "x"]),
        "done_when": _SCALARS,
        "template": st.sampled_from(["ket-qua-nhiem-vu", "bao-cao-cds-6-thang", "khong"]),
        "to": st.sampled_from(["ubnd-tinh-cao-bang", "khong-co", None]),
        "reminders": st.one_of(_SCALARS, st.lists(st.integers(-5, 400), max_size=3)),
    },
)


@settings(
    max_examples=int(os.environ.get("KEHOACH_FUZZ_EXAMPLES", "100")) // 2,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(section=_SECTION, completion=_COMPLETION)
def test_fuzzed_sections_and_completions_are_loaded_or_refused_with_a_location(
    tmp_path: Path, section: dict, completion: dict
) -> None:
    text = DEPARTMENT_FILE.read_text(encoding="utf-8")
    text = text.replace("sections:\n", f"sections:\n  - {_yaml(section)}\n", 1)
    text = text.replace(
        "        due: Tháng 8/2026\n",
        f"        due: Tháng 8/2026\n        completion: {_yaml(completion)}\n",
        1,
    )
    path = tmp_path / DEPARTMENT_FILE.name
    path.write_text(text, encoding="utf-8")
    try:
        catalog = load([REGISTRY, CALENDAR, path])
    except DefinitionError as exc:
        assert exc.problems and all(p.location.line > 0 for p in exc.problems), exc
    else:  # what loads shows: show's text and the portal's sections never raise
        from engine.content import content_lines, sections_of

        plan = catalog.plans[DEPARTMENT].definition
        assert len(sections_of(plan)) == len(plan.sections) and content_lines(plan)
