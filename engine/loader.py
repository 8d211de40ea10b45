"""YAML files → validated definitions, with every problem located at file:line:column.

Two passes: the schema (pydantic) checks shapes and types per file; then the domain
checks (``engine.checks``) look across files — unknown units, groups that expand to
nobody, deadlines in the wrong order, and so on.  All problems are gathered and
reported together; nothing is stored unless there are none.
"""

from __future__ import annotations

import datetime as dt
import difflib
import typing
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from engine.catalog import Catalog, Definition, Loaded
from engine.checks import check_catalog
from engine.errors import DefinitionError, Problem
from engine.schema import (
    DOCUMENT_NUMBER_PATTERN,
    SLUG_PATTERN,
    AnyDocument,
    CalendarOverrides,
    Plan,
    Registry,
)
from engine.schema_time import FIRST_PERIOD_PATTERN
from engine.yamlsource import PathKey, Source, YamlSyntaxError, read
from engine.yamltypes import confusions

KINDS: dict[str, type[BaseModel]] = {
    "registry": Registry,
    "plan": Plan,
    "calendar": CalendarOverrides,
}


# ---------------------------------------------------------------- schema pass

# Names an administrator may reach for, and the field that holds it.
SYNONYMS = {"moves": "policy", "effective": "effective_date", "first_cycle": "first_period"}


def _unwrap_models(annotation: Any) -> list[type[BaseModel]]:
    """The pydantic model classes an annotation may hold (through list, Optional, unions)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    found: list[type[BaseModel]] = []
    for arg in typing.get_args(annotation):
        found.extend(_unwrap_models(arg))
    return found


def _models_at(root: type[BaseModel], loc: tuple[str | int, ...]) -> list[type[BaseModel]]:
    """Best effort: which model(s) the data at ``loc`` is validated against."""
    models: list[type[BaseModel]] = [root]
    for step in loc:
        if isinstance(step, int):
            continue
        next_models: list[type[BaseModel]] = []
        for model in models:
            if step in model.model_fields:
                next_models.extend(_unwrap_models(model.model_fields[step].annotation))
            else:  # a discriminator tag such as 'yearly': keep the variant whose tag matches
                for candidate in models:
                    for name in ("rule", "kind"):
                        info = candidate.model_fields.get(name)
                        if info is not None and step in typing.get_args(info.annotation):
                            next_models.append(candidate)
        if next_models:
            models = list(dict.fromkeys(next_models))
    return models


def _data_path(source: Source, loc: tuple[str | int, ...]) -> PathKey:
    """Drop pydantic's union tags from ``loc`` so it names a real place in the YAML."""
    path: list[str | int] = []
    for step in loc:
        candidate = (*path, step)
        if source.has(candidate) or not source.has(tuple(path)):
            path.append(step)
            continue
        value = _value_at(source.data, tuple(path))
        if isinstance(value, dict) and isinstance(step, str) and step not in value:
            # a missing key is a real step; a tag of a discriminated union is not
            if any(isinstance(v, str) and v == step for v in value.values()):
                continue
            path.append(step)
    return tuple(path)


def _value_at(data: Any, path: PathKey) -> Any:
    for step in path:
        try:
            data = data[step]
        except (KeyError, IndexError, TypeError):
            return None
    return data


def _dotted(path: PathKey) -> str:
    text = ""
    for step in path:
        text += f"[{step}]" if isinstance(step, int) else (f".{step}" if text else str(step))
    return text


def _shown(value: Any) -> str:
    """A value as the message quotes it: short, one line."""
    text = "trống (null)" if value is None else str(value).replace("\n", " ")
    return text if len(text) <= 60 else text[:57] + "…"


def _given(value: Any) -> str:
    """What kind of YAML value the author wrote, in words."""
    if value is None:
        return "để trống (null)"
    if isinstance(value, bool):
        return f"true/false ({str(value).lower()})"
    if isinstance(value, dict):
        return "một mục có các khóa (key: value)"
    if isinstance(value, list):
        return "một danh sách (- ...)"
    if isinstance(value, int | float):
        return f"một số ({_shown(value)})"
    if isinstance(value, dt.date):
        return f"một ngày ({value})"
    return f"'{_shown(value)}'"


# pydantic error type -> what the field needs, in Vietnamese
_NEEDS = {
    "string_type": "một đoạn chữ (đặt trong ngoặc kép nếu cần)",
    "int_type": "một số nguyên",
    "int_parsing": "một số nguyên",
    "int_from_float": "một số nguyên (không có phần thập phân)",
    "float_type": "một số",
    "float_parsing": "một số",
    "finite_number": "một số hữu hạn",
    "bool_type": "true hoặc false",
    "bool_parsing": "true hoặc false",
    "list_type": "một danh sách (mỗi phần tử một dòng bắt đầu bằng '- ')",
    "dict_type": "một mục có các khóa (key: value)",
    "model_type": "một mục có các khóa (key: value)",
    "model_attributes_type": "một mục có các khóa (key: value)",
    "date_type": "một ngày dạng YYYY-MM-DD, ví dụ 2022-10-21",
}
_DATE_ERRORS = {
    "date_from_datetime_parsing",
    "date_parsing",
    "date_type",
    "date_from_datetime_inexact",
}
_BOUNDS = {
    "greater_than_equal": ("ge", "phải lớn hơn hoặc bằng"),
    "greater_than": ("gt", "phải lớn hơn"),
    "less_than_equal": ("le", "phải nhỏ hơn hoặc bằng"),
    "less_than": ("lt", "phải nhỏ hơn"),
}


def _date_hint(value: Any) -> str:
    """The ISO spelling of a date written the Vietnamese way (10/9/2023), if it is one."""
    if isinstance(value, str) and value.count("/") == 2:
        try:
            day, month, year = (int(part) for part in value.split("/"))
            return f" (viết {dt.date(year, month, day).isoformat()})"
        except ValueError:
            return ""
    return ""


def _unknown_field(name: str, root: type[BaseModel], loc: tuple[str | int, ...]) -> str:
    allowed: list[str] = []
    for model in _models_at(root, loc[:-1]):
        allowed.extend(model.model_fields)
    hint = [SYNONYMS[name]] if SYNONYMS.get(name) in allowed else []
    hint = hint or difflib.get_close_matches(name, allowed, n=1)
    if hint:
        return f"trường '{name}' không có trong lược đồ; có phải ý bạn là '{hint[0]}'?"
    return (
        f"trường '{name}' không có trong lược đồ; xóa nó, hoặc xem `kehoach schema` để biết "
        "các trường được phép"
    )


def _pattern(error: dict[str, Any]) -> str | None:
    pattern = (error.get("ctx") or {}).get("pattern")
    if pattern == SLUG_PATTERN:
        return (
            f"'{_shown(error['input'])}' không phải là mã (id) hợp lệ: chỉ dùng chữ thường "
            "không dấu, chữ số và dấu gạch ngang, ví dụ 'cong-an-huyen-ha-lang'"
        )
    if pattern == FIRST_PERIOD_PATTERN:
        return (
            f"'{_shown(error['input'])}' không phải một kỳ báo cáo; viết như '2026' (năm), "
            "'2026-H1' (6 tháng), '2026-Q2' (quý) hoặc '2026-04' (tháng)"
        )
    if pattern == DOCUMENT_NUMBER_PATTERN:
        return (
            f"'{_shown(error['input'])}' không phải là số, ký hiệu văn bản; viết như "
            "'2720/KH-UBND', '136/2020/NĐ-CP' hoặc '02-KL/TW' (hoặc để trống)"
        )
    return None


def _explain(error: dict[str, Any], root: type[BaseModel], loc: tuple[str | int, ...]) -> str:
    """One pydantic error as a Vietnamese sentence: what is wrong and what to write."""
    kind, value, ctx = error["type"], error.get("input"), error.get("ctx") or {}
    name = str(loc[-1]) if loc else "document"
    if kind == "missing":
        return f"thiếu trường bắt buộc '{name}'; thêm nó vào đây"
    if kind == "extra_forbidden":
        return _unknown_field(name, root, loc)
    if kind == "string_pattern_mismatch" and _pattern(error):
        return str(_pattern(error))
    if kind in _DATE_ERRORS:
        return (
            f"{_given(value)} không phải là một ngày; viết theo dạng YYYY-MM-DD, ví dụ "
            f"2022-10-21{_date_hint(value)}"
        )
    if kind in _NEEDS:
        return f"ở đây cần {_NEEDS[kind]}, không phải {_given(value)}"
    if kind in ("literal_error", "enum"):
        return f"{_given(value)} không phải là giá trị được phép; dùng một trong " + str(
            ctx.get("expected")
        ).replace("' or '", "' hoặc '")
    if kind in _BOUNDS:
        key, words = _BOUNDS[kind]
        return f"{_shown(value)}: giá trị {words} {ctx.get(key)}"
    if kind in ("too_short", "too_long"):
        if kind == "too_short":
            return f"cần ít nhất {ctx.get('min_length')} phần tử"
        return f"nhiều nhất {ctx.get('max_length')} phần tử"
    if kind == "union_tag_invalid":
        return (
            f"'{_shown(ctx.get('tag'))}' không phải là một "
            f"{str(ctx.get('discriminator', 'kind')).strip(chr(39))} đã biết; dùng một trong "
            f"{ctx.get('expected_tags')}"
        )
    if kind == "union_tag_not_found":
        return (
            f"thiếu khóa '{str(ctx.get('discriminator', '')).strip(chr(39))}' cho biết đây là "
            "loại nào"
        )
    message = str(error["msg"])
    if message.startswith("Value error, "):  # the schema's own validators say it already
        return message[len("Value error, ") :]
    return f"giá trị không hợp lệ ({_given(value)}): {message}"


def _schema_problems(source: Source, exc: ValidationError, root: type[BaseModel]) -> list[Problem]:
    problems: list[Problem] = []
    for error in exc.errors(include_url=False):
        loc = tuple(error["loc"])
        if loc and loc[0] == "document":
            loc = loc[1:]
        if loc and isinstance(loc[0], str) and loc[0] in KINDS and not source.has((loc[0],)):
            loc = loc[1:]
        path = _data_path(source, loc)
        if error["type"] == "union_tag_invalid":
            tag_key = str((error.get("ctx") or {}).get("discriminator", "")).strip("'")
            if source.has((*path, tag_key)):
                path = (*path, tag_key)
        model_loc = tuple(s for s in loc)
        if error["type"] in {"missing"}:
            where = source.where(path[:-1])
        elif error["type"] == "extra_forbidden":
            where = source.where(path, key=True)
        else:
            where = source.where(path)
        message = _explain(dict(error), root, model_loc)
        problems.append(Problem(where, f"{_dotted(path) or 'document'}: {message}", error["type"]))
    return problems


def _kind_problem(source: Source, data: dict[str, Any]) -> Problem:
    kind = data.get("kind")
    where = source.where(("kind",)) if "kind" in data else source.where(())
    if "kind" not in data:
        message = (
            "thiếu khóa 'kind' cho biết đây là loại định nghĩa nào; thêm 'kind: plan', "
            "'kind: registry' hoặc 'kind: calendar'"
        )
    elif not isinstance(kind, str):
        message = (
            f"kind: {_given(kind)} không phải là loại định nghĩa; viết một từ: registry, plan "
            "hoặc calendar"
        )
    else:
        hint = difflib.get_close_matches(kind, list(KINDS), n=1)
        suffix = f"; có phải ý bạn là '{hint[0]}'?" if hint else ""
        message = (
            f"kind: '{_shown(kind)}' không phải là loại định nghĩa; dùng một trong registry, "
            f"plan, calendar{suffix}"
        )
    return Problem(where, message, "kind")


def validate_source(source: Source) -> tuple[Definition | None, list[Problem]]:
    """Schema-check one parsed document."""
    data = source.data
    if not isinstance(data, dict):
        return None, [
            Problem(
                source.where(()),
                f"tài liệu phải là một mục có khóa 'kind' (kind: plan ...), không phải "
                f"{_given(data)}",
                "shape",
            )
        ]
    kind = data.get("kind")
    if not isinstance(kind, str) or kind not in KINDS:
        return None, [_kind_problem(source, data)]
    root: type[BaseModel] = KINDS[kind]
    # values the lax schema would coerce (true for 1, a number for a date, 10**30):
    # reported, and the definition withheld so no later step works on them
    confused = confusions(source, root)
    try:
        wrapped = AnyDocument.model_validate({"document": data})
    except ValidationError as exc:
        return None, confused + _schema_problems(source, exc, root)
    if confused:
        return None, confused
    return wrapped.document, []


# ---------------------------------------------------------------- catalogue


RegistryLookup = Callable[[str], Registry | None]


def read_files(paths: Iterable[str | Path]) -> tuple[Catalog, list[Problem]]:
    """Parse and schema-check files; duplicates of an id across files are problems."""
    catalog = Catalog()
    problems: list[Problem] = []
    for path in paths:
        try:
            source = read(path)
        except YamlSyntaxError as exc:
            problems.append(Problem(exc.location, exc.message, "syntax"))
            continue
        definition, found = validate_source(source)
        problems.extend(found)
        if definition is None:
            continue
        table = catalog.table(definition.kind)
        if definition.id in table:
            first = table[definition.id].source.where(("id",))
            problems.append(
                Problem(
                    source.where(("id",)),
                    f"id: {definition.kind} '{definition.id}' được định nghĩa hai lần (lần đầu "
                    f"ở {first}); đặt mã khác cho một trong hai, hoặc chỉ nạp một tệp",
                    "duplicate",
                )
            )
            continue
        table[definition.id] = Loaded(definition, source)
    return catalog, problems


def _add_siblings(catalog: Catalog, paths: list[Path]) -> None:
    """Registries and plans next to the given files serve as context (not re-stored)."""
    plans = [p.definition for p in catalog.plans.values() if isinstance(p.definition, Plan)]
    wanted_registries = {p.registry for p in plans} - set(catalog.registries)
    wanted_plans = {p.parent_plan for p in plans if p.parent_plan} - set(catalog.plans)
    if not (wanted_registries or wanted_plans):
        return
    given = {p.resolve() for p in paths}
    folders = {p.resolve().parent for p in paths}
    for folder in sorted(folders):
        for sibling in sorted(folder.glob("*.y*ml")):
            if sibling.resolve() in given:
                continue
            try:
                head = sibling.read_text(encoding="utf-8")[:4000]
            except (OSError, UnicodeDecodeError):
                continue
            if not any(f"id: {w}" in head for w in wanted_registries | wanted_plans):
                continue
            extra, problems = read_files([sibling])
            if problems:
                continue
            for item in extra.items():
                table = catalog.table(item.definition.kind)
                if item.definition.id not in table:
                    table[item.definition.id] = item
                    catalog.context_ids.add((item.definition.kind, item.definition.id))


def load(
    paths: Iterable[str | Path],
    *,
    registry_lookup: RegistryLookup | None = None,
    plan_lookup: Callable[[str], Plan | None] | None = None,
    siblings: bool = True,
) -> Catalog:
    """Read, schema-check and domain-check ``paths``; raise DefinitionError listing all problems."""
    path_list = [Path(p) for p in paths]
    catalog, problems = read_files(path_list)
    if siblings:
        _add_siblings(catalog, path_list)
    problems.extend(
        check_catalog(catalog, registry_lookup=registry_lookup, plan_lookup=plan_lookup)
    )
    if problems:
        raise DefinitionError(problems)
    return catalog
