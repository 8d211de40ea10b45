"""The figures of a consolidated report, as an official reads them.

Each aggregate is over the units its field applies to and says how many of them it
covers and which are missing ("32 vụ (28/31 đơn vị báo cáo; chưa báo cáo: …)"); a
choice counted names the units of the smaller answers ("Chưa tổ chức: 4 đơn vị (…)");
a ratio shows its two sums. Per-unit detail goes into phụ lục tables, one row per unit:
the figures (Phụ lục 2) and the free text (Phụ lục 3).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from engine.applicability import Applicability, UnitFacts
from engine.documents import Appendix
from engine.reports import Coverage, Reports, coverage, display_value, gives
from engine.schema import Aggregation, FieldType, ReportTemplate, TemplateField
from engine.values import fmt_number, stored_number_ok
from engine.vntext import brief_name

NAMES_SHOWN = 8  # more missing units than this: "xem Phụ lục 1"
NOT_APPLICABLE = "x"
# Relative widths of the figure columns of Phụ lục 2 ("96,08%" and "Đã tổ chức" on a line).
_WEIGHTS = {FieldType.decimal: 1.1, FieldType.percent: 1.35, FieldType.choice: 1.5}
FIGURES_TITLE = "Số liệu báo cáo của các đơn vị"
TEXTS_TITLE = "Ý kiến đánh giá, kiến nghị của các đơn vị"


@dataclass
class Figures:
    """Section I's rows, the phụ lục of figures and texts, and each field's coverage."""

    results: list[tuple[str, str, str]]
    appendices: list[Appendix]
    coverage: dict[str, Coverage]


def build_figures(
    template: ReportTemplate,
    applicability: Applicability,
    owing: Sequence[UnitFacts],
    reports: Reports,
    aggregates: Mapping[str, Any],
    names: Mapping[str, str],
) -> Figures:
    """``owing``: every unit that owes the report (Phụ lục order); ``reports``: the
    counted (unit, values); ``aggregates``: as engine.reports.aggregate made them."""
    expected = {f.id: applicability.units_of(f, owing) for f in template.fields}
    covered = coverage(template, reports, expected)
    by_unit = dict(reports)
    results = []
    for f in template.fields:
        value = _value(template, f, aggregates.get(f.id), by_unit, expected[f.id], names)
        covers = _coverage_note(f, covered[f.id], names)
        if f.aggregate is Aggregation.count and f.type is FieldType.choice:
            who = _choice_units(f, by_unit, expected[f.id], names)
            covers = f"{covers}; {who}" if who else covers
        results.append((_label(f, f.label), value, covers))
    appendices = [
        a
        for a in (
            _figures_appendix(template, applicability, owing, by_unit, names),
            _texts_appendix(template, applicability, owing, by_unit, names),
        )
        if a is not None
    ]
    return Figures(results, appendices, covered)


def _label(field: TemplateField, text: str) -> str:
    """A label with its unit of measure: 'Số vụ cháy, nổ (vụ)'."""
    if field.unit and field.type is not FieldType.percent:
        return f"{text} ({field.unit})"
    return text


def _names(units: Sequence[str], names: Mapping[str, str], where: str) -> str:
    if len(units) > NAMES_SHOWN:
        return f"{len(units)} đơn vị, xem {where}"
    return ", ".join(brief_name(names.get(u, u)) for u in units)


def _coverage_note(field: TemplateField, cov: Coverage, names: Mapping[str, str]) -> str:
    """'28/31 đơn vị báo cáo; chưa báo cáo: UBND xã A, …'."""
    total, given = len(cov.expected), len(cov.reported)
    if not total:
        return "Không đơn vị nào phải báo cáo"
    if field.type is FieldType.text:
        said = f"{given}/{total} đơn vị có ý kiến"
        if field.required and cov.missing:
            return f"{said}; chưa có: {_names(cov.missing, names, 'Phụ lục 1')}"
        return said
    if not cov.missing:
        return f"{given}/{total} đơn vị báo cáo"
    return (
        f"{given}/{total} đơn vị báo cáo; chưa báo cáo: {_names(cov.missing, names, 'Phụ lục 1')}"
    )


def _value(
    template: ReportTemplate,
    field: TemplateField,
    value: Any,
    by_unit: Mapping[str, Mapping[str, Any]],
    expected: Sequence[str],
    names: Mapping[str, str],
) -> str:
    if field.ratio_of is not None:
        return _ratio_text(template, field, value, by_unit, expected)
    if field.aggregate is Aggregation.list_by_unit:
        where = "Phụ lục 3" if field.type is FieldType.text else "Phụ lục 2"
        return f"Tổng hợp tại {where}."
    if field.aggregate is Aggregation.count and field.type is FieldType.choice:
        return _choices_text(field, by_unit, expected, names)
    return display_value(field, value, names)


def _ratio_text(
    template: ReportTemplate,
    field: TemplateField,
    value: Any,
    by_unit: Mapping[str, Mapping[str, Any]],
    expected: Sequence[str],
) -> str:
    assert field.ratio_of is not None
    top_field, bottom_field = (template.field(i) for i in field.ratio_of)
    if top_field is None or bottom_field is None:  # pragma: no cover - the loader checks it
        return display_value(field, value)
    top = bottom = 0.0
    for unit in expected:
        values = by_unit.get(unit)
        if values is not None and gives(template, field, values):
            top += values[top_field.id]
            bottom += values[bottom_field.id]
    if value is None or not stored_number_ok(value):
        return "—"
    unit = f" {bottom_field.unit}" if bottom_field.unit else ""
    return f"{fmt_number(value)}% ({fmt_number(top)}/{fmt_number(bottom)}{unit})"


def _chosen(
    field: TemplateField, by_unit: Mapping[str, Mapping[str, Any]], expected: Sequence[str]
) -> dict[str, list[str]]:
    """The units of each answer of a choice field, in the template's order of choices."""
    chosen: dict[str, list[str]] = {choice: [] for choice in field.choices}
    for unit in expected:
        answer = (by_unit.get(unit) or {}).get(field.id)
        if answer in chosen:
            chosen[answer].append(unit)
    return chosen


def _choices_text(
    field: TemplateField,
    by_unit: Mapping[str, Mapping[str, Any]],
    expected: Sequence[str],
    names: Mapping[str, str],
) -> str:
    """'Đã tổ chức: 27 đơn vị' / 'Chưa tổ chức: 4 đơn vị', one answer a line."""
    chosen = _chosen(field, by_unit, expected)
    return "\n".join(f"{choice}: {len(units)} đơn vị" for choice, units in chosen.items())


def _choice_units(
    field: TemplateField,
    by_unit: Mapping[str, Mapping[str, Any]],
    expected: Sequence[str],
    names: Mapping[str, str],
) -> str:
    """'Chưa tổ chức: UBND xã A, …': the units of every answer but the most frequent."""
    chosen = _chosen(field, by_unit, expected)
    most = max(chosen, key=lambda c: len(chosen[c]))
    return "; ".join(
        f"{choice[:1].lower()}{choice[1:]}: {_names(units, names, 'Phụ lục 2')}"
        for choice, units in chosen.items()
        if units and choice != most
    )


def _cell(template: ReportTemplate, field: TemplateField, values: Mapping[str, Any] | None) -> str:
    """One unit's value in a phụ lục cell: the number alone (the heading has the unit)."""
    if values is None:
        return ""
    if field.ratio_of is not None:
        top, bottom = (values.get(i) for i in field.ratio_of)
        if not (stored_number_ok(top) and stored_number_ok(bottom)) or not bottom:
            return ""
        return f"{fmt_number(round(100 * top / bottom, 2))}%"  # type: ignore[operator]
    value = values.get(field.id)
    if value is None:
        return ""
    if field.type in {FieldType.integer, FieldType.decimal, FieldType.percent}:
        if not stored_number_ok(value):
            return ""
        suffix = "%" if field.type is FieldType.percent else ""
        if isinstance(value, int):  # most cells: fmt_number's Decimal is not needed
            return f"{value:,}".replace(",", ".") + suffix
        return fmt_number(value) + suffix
    shown = display_value(field, value)
    return "" if shown == "—" else shown


def _unit_rows(
    template: ReportTemplate,
    applicability: Applicability,
    owing: Sequence[UnitFacts],
    by_unit: Mapping[str, Mapping[str, Any]],
    names: Mapping[str, str],
    fields: Sequence[Any],
) -> list[list[str]]:
    """One phụ lục row per owing unit: STT, name, then each field's cell."""
    rows = []
    for index, facts in enumerate(owing, 1):
        values = by_unit.get(facts.unit_id)
        cells = [
            _cell(template, f, values) if applicability.covers(f, facts) else NOT_APPLICABLE
            for f in fields
        ]
        rows.append([str(index), names.get(facts.unit_id, facts.unit_id), *cells])
    return rows


def _figures_appendix(
    template: ReportTemplate,
    applicability: Applicability,
    owing: Sequence[UnitFacts],
    by_unit: Mapping[str, Mapping[str, Any]],
    names: Mapping[str, str],
) -> Appendix | None:
    fields = [f for f in template.fields if f.type is not FieldType.text]
    if not fields:
        return None
    rows = _unit_rows(template, applicability, owing, by_unit, names, fields)
    header = ["STT", "Đơn vị"] + [_label(f, f.short_label or f.label) for f in fields]
    wide = len(fields) > 4
    return Appendix(
        FIGURES_TITLE,
        header,
        rows,
        [1.0, 3.6] + [_WEIGHTS.get(f.type, 1.0) for f in fields],
        ["center", None] + ["center"] * len(fields),
        note=f"Ghi chú: ô để trống: đơn vị chưa báo cáo số liệu; {NOT_APPLICABLE}: "
        "chỉ tiêu không áp dụng đối với đơn vị.",
        landscape=wide,
    )


def _texts_appendix(
    template: ReportTemplate,
    applicability: Applicability,
    owing: Sequence[UnitFacts],
    by_unit: Mapping[str, Mapping[str, Any]],
    names: Mapping[str, str],
) -> Appendix | None:
    fields = [f for f in template.fields if f.type is FieldType.text]
    if not fields:
        return None
    rows = _unit_rows(template, applicability, owing, by_unit, names, fields)
    return Appendix(
        TEXTS_TITLE,
        ["STT", "Đơn vị", *(f.short_label or f.label for f in fields)],
        rows,
        [1.0, 4.0] + [11.5 / len(fields)] * len(fields),
        ["center", None] + [None] * len(fields),
        note="Ghi chú: ô để trống: đơn vị chưa gửi báo cáo hoặc không có ý kiến.",
    )
