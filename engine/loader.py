"""YAML files → validated definitions, with every problem located at file:line:column.

Two passes: the schema (pydantic) checks shapes and types per file; then the domain
checks (``engine.checks``) look across files — unknown units, groups that expand to
nobody, deadlines in the wrong order, and so on.  All problems are gathered and
reported together; nothing is stored unless there are none.
"""

from __future__ import annotations

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


def _explain(error: dict[str, Any], root: type[BaseModel], loc: tuple[str | int, ...]) -> str:
    kind = error["type"]
    name = str(loc[-1]) if loc else "document"
    if kind == "missing":
        return f"missing required field '{name}'; add it here"
    if kind == "extra_forbidden":
        allowed: list[str] = []
        for model in _models_at(root, loc[:-1]):
            allowed.extend(model.model_fields)
        hint = [SYNONYMS[name]] if SYNONYMS.get(name) in allowed else []
        hint = hint or difflib.get_close_matches(name, allowed, n=1)
        if hint:
            return f"unknown field '{name}'; did you mean '{hint[0]}'?"
        return f"unknown field '{name}'; remove it or see `kehoach schema` for the allowed fields"
    if kind == "string_pattern_mismatch":
        pattern = (error.get("ctx") or {}).get("pattern")
        if pattern == SLUG_PATTERN:
            return (
                f"'{error['input']}' is not a valid id: use lowercase letters, digits and "
                "dashes, e.g. 'cong-an-huyen-ha-lang'"
            )
        if pattern == FIRST_PERIOD_PATTERN:
            return (
                f"'{error['input']}' không phải một kỳ báo cáo; viết như '2026' (năm), "
                "'2026-H1' (6 tháng), '2026-Q2' (quý) hoặc '2026-04' (tháng)"
            )
        if pattern == DOCUMENT_NUMBER_PATTERN:
            return (
                f"'{error['input']}' is not a document number/symbol; write it like "
                "'2720/KH-UBND', '136/2020/NĐ-CP' or '02-KL/TW' (or leave it empty)"
            )
    if kind in {
        "date_from_datetime_parsing",
        "date_parsing",
        "date_type",
        "date_from_datetime_inexact",
    }:
        return f"'{error.get('input')}' is not a date; write it as YYYY-MM-DD, e.g. 2022-10-21"
    if kind == "union_tag_invalid":
        ctx = error.get("ctx") or {}
        return (
            f"'{ctx.get('tag')}' is not a known {ctx.get('discriminator', 'kind').strip(chr(39))}; "
            f"use one of {ctx.get('expected_tags')}"
        )
    if kind == "union_tag_not_found":
        ctx = error.get("ctx") or {}
        return f"missing '{str(ctx.get('discriminator', '')).strip(chr(39))}' that says which kind this is"
    message = str(error["msg"])
    if message.startswith("Value error, "):
        message = message[len("Value error, ") :]
    return message[:1].lower() + message[1:]


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


def validate_source(source: Source) -> tuple[Definition | None, list[Problem]]:
    """Schema-check one parsed document."""
    data = source.data
    if not isinstance(data, dict):
        return None, [
            Problem(source.where(()), "the document must be a mapping with a 'kind' key", "shape")
        ]
    kind = data.get("kind")
    if not isinstance(kind, str) or kind not in KINDS:
        where = source.where(("kind",)) if "kind" in data else source.where(())
        if kind is not None and not isinstance(kind, str):
            shape = (
                "a mapping"
                if isinstance(kind, dict)
                else "a list"
                if isinstance(kind, list)
                else f"'{kind}'"
            )
            message = (
                f"kind: {shape} is not a kind of definition; write one word: registry, plan "
                "or calendar"
            )
        else:
            hint = difflib.get_close_matches(str(kind), list(KINDS), n=1)
            suffix = f"; did you mean '{hint[0]}'?" if hint else ""
            message = (
                f"kind: '{kind}' is not a kind of definition; use one of registry, plan, "
                f"calendar{suffix}"
            )
        return None, [Problem(where, message, "kind")]
    root: type[BaseModel] = KINDS[kind]
    try:
        wrapped = AnyDocument.model_validate({"document": data})
    except ValidationError as exc:
        return None, _schema_problems(source, exc, root)
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
                    f"id: {definition.kind} '{definition.id}' is defined twice (first at "
                    f"{first}); give each a different id or load only one",
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
