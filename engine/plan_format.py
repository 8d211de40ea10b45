"""docs/PLAN_FORMAT.md, generated from the schema's pydantic models (``kehoach schema
--markdown``): every construct, its fields, and a short example in the style of a real
plan (``engine.plan_format_examples``; tests/test_plan_format.py validates each example
against its model and keeps the committed file equal to this output).
"""

from __future__ import annotations

import datetime as dt
import types
import typing
from decimal import Decimal
from enum import Enum
from typing import Any, Literal, Union

from pydantic import BaseModel
from pydantic_core import PydanticUndefined

from engine.plan_format_examples import EXAMPLES
from engine.schema import CalendarOverrides, Plan, Registry
from engine.schema_base import SLUG_PATTERN

ROOTS: tuple[type[BaseModel], ...] = (Plan, Registry, CalendarOverrides)

INTRO = """\
# Plan format (kehoach YAML)

Generated from the pydantic models in `engine/schema*.py` by `kehoach schema --markdown`
(do not edit by hand; `tests/test_plan_format.py` fails when this file and the models
differ). The same models give the JSON Schema (`plan_definitions/kehoach.schema.json`)
that editors use for completion. Every example below is validated against its model by
that test. A YAML file is one document whose `kind` is `plan`, `registry` or `calendar`;
unknown keys are errors, reported as `file:line:column` with what to write instead.

Working examples: `plan_definitions/ha_lang_pccc_2022.yaml` (the seed) and the sample
plans in `plan_definitions/examples/` (tracked tasks, an appendix task table, time
anchored to the plan).
"""


def models() -> list[type[BaseModel]]:
    """Every model reachable from the three document kinds, in first-use order."""
    seen: list[type[BaseModel]] = []

    def visit(model: type[BaseModel]) -> None:
        if model in seen:
            return
        seen.append(model)
        for info in model.model_fields.values():
            for inner in _models_in(info.annotation):
                visit(inner)

    for root in ROOTS:
        visit(root)
    return seen


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    origin = typing.get_origin(annotation)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    if origin is None:
        return []
    return [m for arg in typing.get_args(annotation) for m in _models_in(arg)]


def _anchor(model: type[BaseModel]) -> str:
    return model.__name__.lower()


def type_text(annotation: Any, metadata: list[Any] | None = None) -> str:
    """A field's type as the reference writes it."""
    for item in metadata or []:
        inner = [item, *getattr(item, "metadata", [])]  # a FieldInfo holds its own
        if any(getattr(i, "pattern", None) == SLUG_PATTERN for i in inner):
            return "id"
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is typing.Annotated:
        return type_text(args[0], list(args[1:]))
    if origin in (Union, types.UnionType):
        parts = [type_text(a) for a in args if a is not type(None)]
        return " \\| ".join(dict.fromkeys(parts))
    if origin is Literal:
        return " \\| ".join(f"`{a}`" for a in args)
    if origin is list:
        return f"list of {type_text(args[0]) if args else 'any'}"
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return f"[{annotation.__name__}](#{_anchor(annotation)})"
    if isinstance(annotation, type) and issubclass(annotation, Enum):
        return " \\| ".join(f"`{m.value}`" for m in annotation)
    names = {
        str: "text",
        int: "integer",
        bool: "true/false",
        float: "number",
        dt.date: "date (YYYY-MM-DD)",
        Decimal: "number",
    }
    return names.get(annotation, getattr(annotation, "__name__", str(annotation)))


def _default(info: Any) -> str:
    if info.is_required():
        return "**required**"
    if info.default_factory is not None:
        value = info.default_factory()
        return "`[]`" if value == [] else f"`{value}`"
    if info.default is None or info.default is PydanticUndefined:
        return "—"
    value = info.default.value if isinstance(info.default, Enum) else info.default
    if isinstance(value, bool):
        value = str(value).lower()
    return f"`{value}`"


def _cell(text: str | None) -> str:
    return " ".join((text or "").split()).replace("|", "\\|")


def _doc(model: type[BaseModel]) -> str:
    doc = model.__doc__ or ""
    if doc.startswith(("Usage docs", "!!!")) or model.__module__.startswith("pydantic"):
        return ""
    return " ".join(doc.strip().split("\n\n")[0].split())


def section(model: type[BaseModel]) -> str:
    lines = [f"## {model.__name__}", ""]
    doc = _doc(model)
    if doc:
        lines += [doc, ""]
    lines += ["| field | type | default | meaning |", "| --- | --- | --- | --- |"]
    for name, info in model.model_fields.items():
        kind = type_text(info.annotation, list(info.metadata))
        lines.append(f"| `{name}` | {kind} | {_default(info)} | {_cell(info.description)} |")
    example = EXAMPLES.get(model.__name__)
    if example is not None:
        lines += ["", "```yaml", example.strip("\n"), "```"]
    return "\n".join(lines)


def plan_format_markdown() -> str:
    """The whole reference, as docs/PLAN_FORMAT.md holds it."""
    found = models()
    index = ", ".join(f"[{m.__name__}](#{_anchor(m)})" for m in found)
    parts = [INTRO.rstrip("\n"), f"Constructs: {index}.", *(section(m) for m in found)]
    return "\n\n".join(parts) + "\n"


def json_schema() -> dict:
    """The JSON Schema for every kind of YAML document, for editors (``kehoach schema``)."""
    from engine.schema import AnyDocument

    schema = AnyDocument.model_json_schema()
    inner = schema["properties"]["document"]
    inner["$defs"] = schema.get("$defs", {})
    inner["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    inner["title"] = "kehoach definition (registry, plan or calendar)"
    return inner
