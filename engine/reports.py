"""Report values: aggregate a cycle's reports and show values in documents and pages.

The checks of a unit's answers are in ``engine.values`` (one set of rules for every
path that stores a value); ``validate_values`` and ``fmt_number`` are re-exported here.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from engine.schema import Aggregation, FieldType, ReportTemplate, TemplateField
from engine.values import (
    DROPPED,
    InvalidValue,
    check_value,
    fmt_number,
    is_blank,
    parse_date,
    stored_number_ok,
    stored_value,
    validate_values,
)

__all__ = [
    "aggregate",
    "coverage",
    "display_stored",
    "display_value",
    "fmt_number",
    "validate_values",
]

INVALID_SHOWN = "(giá trị không hợp lệ)"
STORED_INVALID = "(giá trị đã lưu không hợp lệ; đề nghị gửi lại báo cáo)"


def _coerce(field: TemplateField, value: Any) -> tuple[Any, str | None]:
    try:
        return check_value(field, value), None
    except InvalidValue as exc:
        return None, exc.message


# ---------------------------------------------------------------- aggregation

Reports = Sequence[tuple[str, Mapping[str, Any]]]


def _numbers(field: TemplateField, reports: Reports) -> list[Any]:
    out = []
    for _unit, values in reports:
        value = values.get(field.id)
        if stored_number_ok(value):  # never inf, NaN or a number too large to print
            out.append(value)
    return out


def _round(value: float) -> int | float:
    rounded = round(value, 2)
    return int(rounded) if rounded == int(rounded) else rounded


def _parts(template: ReportTemplate | None, field: TemplateField) -> list[TemplateField] | None:
    if field.ratio_of is None or template is None:
        return None
    parts = [template.field(i) for i in field.ratio_of]
    return [p for p in parts if p is not None] if all(parts) else None


def ratio(numerator: TemplateField, denominator: TemplateField, reports: Reports) -> Any:
    """100 × Σ numerator / Σ denominator over the reports giving both (None: Σ = 0)."""
    top = bottom = 0.0
    for _unit, values in reports:
        a, b = values.get(numerator.id), values.get(denominator.id)
        if stored_number_ok(a) and stored_number_ok(b):
            top, bottom = top + float(a), bottom + float(b)  # type: ignore[arg-type]
    return _round(100 * top / bottom) if bottom else None


def aggregate_field(
    field: TemplateField, reports: Reports, template: ReportTemplate | None = None
) -> Any:
    """One field over the given reports, per the field's ``aggregate`` (or ``ratio_of``)."""
    parts = _parts(template, field)
    if parts is not None:
        return ratio(parts[0], parts[1], reports)
    how = field.aggregate
    if how in {Aggregation.sum, Aggregation.mean, Aggregation.min, Aggregation.max}:
        numbers = _numbers(field, reports)
        if how is Aggregation.sum:
            return _round(sum(numbers)) if numbers else 0
        if not numbers:
            return None
        if how is Aggregation.mean:
            return _round(sum(numbers) / len(numbers))
        return min(numbers) if how is Aggregation.min else max(numbers)
    if how is Aggregation.count:
        if field.type is FieldType.choice:
            counts = {choice: 0 for choice in field.choices}
            for _unit, values in reports:
                value = values.get(field.id)
                if value in counts:
                    counts[value] += 1
            return counts
        return sum(1 for _unit, values in reports if not is_blank(values.get(field.id)))
    return [
        {"unit_id": unit, "value": values.get(field.id)}
        for unit, values in reports
        if not is_blank(values.get(field.id))
    ]


def aggregate(
    template: ReportTemplate,
    reports: Iterable[tuple[str, Mapping[str, Any]]],
    applies: Mapping[str, Collection[str]] | None = None,
) -> dict[str, Any]:
    """Every field of ``template`` aggregated over ``[(unit_id, values), ...]``.

    sum/mean/min/max over the numeric answers (mean rounded to 2 places; None when
    nobody answered), count = units answering (for a choice field: units per choice),
    list_by_unit = ``[{"unit_id", "value"}, ...]`` in the given order; a ``ratio_of``
    field = 100 × Σ numerator / Σ denominator. ``applies``: {field id: the units it
    applies to}; a field listed there counts only those units' reports.
    """
    rows = list(reports)
    out: dict[str, Any] = {}
    for field in template.fields:
        allowed = None if applies is None else applies.get(field.id)
        counted = rows if allowed is None else [r for r in rows if r[0] in allowed]
        out[field.id] = aggregate_field(field, counted, template)
    return out


@dataclass(frozen=True)
class Coverage:
    """The units a figure is over: those it applies to, and those whose report gives it."""

    expected: tuple[str, ...]
    reported: tuple[str, ...]

    @property
    def missing(self) -> tuple[str, ...]:
        given = set(self.reported)
        return tuple(u for u in self.expected if u not in given)


def gives(template: ReportTemplate, field: TemplateField, values: Mapping[str, Any]) -> bool:
    """Whether a report gives the field (a ratio field: both of its parts, as numbers)."""
    parts = _parts(template, field)
    if parts is not None:
        return all(stored_number_ok(values.get(p.id)) for p in parts)
    value = values.get(field.id)
    if field.type in {FieldType.integer, FieldType.decimal, FieldType.percent}:
        return stored_number_ok(value)
    return not is_blank(value)


def coverage(
    template: ReportTemplate, reports: Reports, expected: Mapping[str, Sequence[str]]
) -> dict[str, Coverage]:
    """Per field: the units it applies to (``expected``, in order) and those of them whose
    counted report gives it."""
    by_unit = dict(reports)
    out = {}
    for field in template.fields:
        units = tuple(expected.get(field.id, ()))
        reported = tuple(u for u in units if u in by_unit and gives(template, field, by_unit[u]))
        out[field.id] = Coverage(units, reported)
    return out


def display_value(
    field: TemplateField, value: Any, unit_names: Mapping[str, str] | None = None
) -> str:
    """An aggregate or a single value as text for documents and the terminal."""
    names = unit_names or {}
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "Có" if value else "Không"
    if isinstance(value, (int, float)):
        if not stored_number_ok(value):
            return INVALID_SHOWN
        text = fmt_number(value)
        if field.type is FieldType.percent:
            return f"{text}%"
        return f"{text} {field.unit}" if field.unit else text
    if isinstance(value, dict):
        return "; ".join(f"{k}: {_count(v)}" for k, v in value.items())
    if isinstance(value, list):
        parts = []
        for item in value:
            if isinstance(item, dict) and "unit_id" in item:
                unit = names.get(item["unit_id"], item["unit_id"])
                parts.append(f"{unit}: {display_value(field, item['value'], names)}")
            else:
                parts.append(_count(item) if isinstance(item, (int, float)) else str(item))
        return "\n".join(parts) if parts else "—"
    if field.type is FieldType.date and isinstance(value, str):
        day = parse_date(value)
        if day:
            return f"{day.day:02d}/{day.month:02d}/{day.year}"
    return str(value)


def _count(value: Any) -> str:
    return fmt_number(value) if stored_number_ok(value) else INVALID_SHOWN


def display_stored(field: TemplateField, value: Any) -> str:
    """A value read from a stored answer as text; never raises (rows written before the
    checks of engine.values, or edited in the database, are shown as invalid)."""
    usable, _why = stored_value(field, value)
    if usable is DROPPED:
        return STORED_INVALID
    return display_value(field, usable)


def values_for_template(
    template: ReportTemplate,
    aggregates: Mapping[str, Any],
    source: ReportTemplate | None = None,
    unit_names: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """Map a consolidation's aggregates onto another template's fields (same ids).

    Used to hand a district report upward: scalars that fit the target field are
    kept, a list by unit becomes text for a text field, anything else is left out.
    """
    values: dict[str, Any] = {}
    for field in template.fields:
        if field.id not in aggregates or field.derived:  # computed where it is consolidated
            continue
        value = aggregates[field.id]
        if value is None or isinstance(value, bool):
            continue
        if field.type in {FieldType.integer, FieldType.decimal, FieldType.percent}:
            if stored_number_ok(value):
                candidate: Any = round(value) if field.type is FieldType.integer else value
                clean, error = _coerce(field, candidate)
                if error is None:
                    values[field.id] = clean
        elif field.type is FieldType.text:
            source_field = source.field(field.id) if source else None
            shown = display_value(source_field or field, value, unit_names)
            if shown != "—":
                values[field.id] = shown
        elif field.type is FieldType.file and isinstance(value, list):
            ids: list[Any] = []
            for item in value:
                inner = item.get("value") if isinstance(item, dict) else item
                ids.extend(inner if isinstance(inner, list) else [inner])
            kept = [i for i in ids if _coerce(field, [i])[1] is None]
            values[field.id] = _coerce(field, kept)[0] or []
        elif isinstance(value, str):
            clean, error = _coerce(field, value)
            if error is None:
                values[field.id] = clean
    return values
