"""Values of the wrong YAML type that the schema's lax coercion would accept silently.

pydantic (lax mode) takes ``true`` for the number 1, a number for a date (seconds
since 1970: ``as_of: 0`` would be 1/1/1970), and infinite or 400-digit numbers for
any number; later steps then guess or break (a year of 10**30 overflowed the
calendar). This pass walks the parsed YAML along the schema's annotations before
validation and reports each such value where it stands, in Vietnamese.
"""

from __future__ import annotations

import datetime as dt
import math
import types
import typing
from collections.abc import Iterator
from enum import Enum
from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel

from engine.errors import Problem
from engine.yamlsource import PathKey, Source

# More digits than any count, year, day or amount a plan may hold (10^15 VND is far
# above a province's budget); a longer number is a typing slip, not data.
MAX_DIGITS = 15


def _dotted(path: PathKey) -> str:
    text = ""
    for step in path:
        text += f"[{step}]" if isinstance(step, int) else (f".{step}" if text else str(step))
    return text or "document"


class _Admits:
    """What an annotation accepts: scalar types, models, list item annotations."""

    def __init__(self, annotation: Any) -> None:
        self.scalars: set[type] = set()
        self.models: list[type[BaseModel]] = []
        self.items: list[Any] = []
        self._add(annotation)

    def _add(self, annotation: Any) -> None:
        origin = typing.get_origin(annotation)
        if origin is Annotated:
            self._add(typing.get_args(annotation)[0])
        elif origin in (Union, types.UnionType):
            for arg in typing.get_args(annotation):
                self._add(arg)
        elif origin is Literal:
            self.scalars.update(type(v) for v in typing.get_args(annotation))
        elif origin is list:
            self.items.extend(typing.get_args(annotation) or [Any])
        elif isinstance(annotation, type) and issubclass(annotation, BaseModel):
            self.models.append(annotation)
        elif isinstance(annotation, type) and issubclass(annotation, Enum):
            self.scalars.add(str)
        elif isinstance(annotation, type):
            self.scalars.add(annotation)

    @property
    def numeric(self) -> bool:
        return bool({int, float} & self.scalars)


def _pick(models: list[type[BaseModel]], data: dict[str, Any]) -> list[type[BaseModel]]:
    """The variant of a discriminated union the data names (by 'rule' or 'kind')."""
    chosen = []
    for model in models:
        for tag in ("rule", "kind"):
            info = model.model_fields.get(tag)
            literal = info is not None and typing.get_origin(info.annotation) is Literal
            if literal and data.get(tag) in typing.get_args(info.annotation):  # type: ignore[union-attr]
                chosen.append(model)
    return chosen or models[:1]


def _number_problem(value: Any, admits: _Admits) -> str | None:
    if isinstance(value, bytes):  # !!binary: pydantic would take the bytes as text
        return "giá trị nhị phân (!!binary) không được dùng trong định nghĩa; viết chữ thường"
    if isinstance(value, bool):
        if admits.numeric and bool not in admits.scalars:
            return f"'{str(value).lower()}' là true/false, ở đây cần một số; viết số"
        return None
    if isinstance(value, float) and not math.isfinite(value):
        return f"'{value}' không phải là một số hữu hạn; viết một số bình thường"
    if isinstance(value, int | float) and len(str(int(abs(value)))) > MAX_DIGITS:
        return (
            f"số có {len(str(int(abs(value))))} chữ số, quá lớn (tối đa {MAX_DIGITS}); "
            "kiểm tra lại giá trị"
        )
    if isinstance(value, int | float) and dt.date in admits.scalars and not admits.numeric:
        return f"'{value}' là một số, ở đây cần một ngày; viết theo dạng YYYY-MM-DD"
    return None


def _walk(source: Source, annotation: Any, value: Any, path: PathKey) -> Iterator[Problem]:
    admits = _Admits(annotation)
    message = _number_problem(value, admits)
    if message is not None:
        yield Problem(source.where(path), f"{_dotted(path)}: {message}", "type")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            for item_annotation in admits.items[:1]:
                yield from _walk(source, item_annotation, item, (*path, index))
    elif isinstance(value, dict) and admits.models:
        for model in _pick(admits.models, value):
            for key, child in value.items():
                info = model.model_fields.get(key)
                if info is not None:
                    yield from _walk(source, info.annotation, child, (*path, key))


def confusions(source: Source, root: type[BaseModel]) -> list[Problem]:
    """Every value of ``source`` that the lax schema would take for something else."""
    return list(_walk(source, root, source.data, ()))
