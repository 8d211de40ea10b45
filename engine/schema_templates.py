"""Report templates in a plan: the fields a unit answers, how each is aggregated, which
units it applies to (``applies_to``) and percentages computed from two sums (``ratio_of``).
Re-exported by ``engine.schema``.
"""

from __future__ import annotations

import math
from enum import StrEnum

from pydantic import Field, model_validator

from engine.schema_base import Model, Slug


class FieldType(StrEnum):
    integer = "integer"
    decimal = "decimal"
    percent = "percent"
    text = "text"
    date = "date"
    choice = "choice"
    file = "file"


class Aggregation(StrEnum):
    sum = "sum"
    mean = "mean"
    min = "min"
    max = "max"
    count = "count"  # type: ignore[assignment]  # a member named like str.count, on purpose
    list_by_unit = "list_by_unit"


_NUMERIC = {FieldType.integer, FieldType.decimal, FieldType.percent}


class AppliesTo(Model):
    """Which units a report field is for: a unit is asked (and counted) when it is one of
    ``units``, belongs to one of ``groups`` (as of the plan's ``as_of``) or owes the report
    through one of ``assignments``; a unit that took over another's duty is judged as the
    unit it took over from."""

    groups: list[Slug] = Field(default_factory=list)
    units: list[Slug] = Field(default_factory=list)
    assignments: list[Slug] = Field(default_factory=list)

    @model_validator(mode="after")
    def _some_rule(self) -> AppliesTo:
        if not (self.groups or self.units or self.assignments):
            raise ValueError("'applies_to' cần groups, units hoặc assignments")
        return self


class TemplateField(Model):
    id: Slug
    label: str
    short_label: str | None = Field(
        default=None, description="Column heading in the report's phụ lục tables (default: label)."
    )
    type: FieldType
    required: bool = True
    help: str | None = None
    unit: str | None = Field(None, description="Unit of measure shown after the value.")
    min: float | None = Field(default=None, description="Smallest value a numeric field takes.")
    max: float | None = Field(default=None, description="Largest value a numeric field takes.")
    max_length: int | None = Field(
        default=None, ge=1, le=100_000, description="Characters a text field takes (default 20000)."
    )
    choices: list[str] = Field(default_factory=list)
    aggregate: Aggregation = Aggregation.list_by_unit
    applies_to: AppliesTo | None = Field(
        default=None, description="The units asked for this field (default: every unit)."
    )
    ratio_of: list[Slug] | None = Field(
        default=None,
        min_length=2,
        max_length=2,
        description="[numerator field, denominator field]: a percent computed as the ratio "
        "of their sums over the units, never asked in the form.",
    )

    @property
    def derived(self) -> bool:
        """Computed from other fields (``ratio_of``), never asked."""
        return self.ratio_of is not None

    @model_validator(mode="after")
    def _consistent(self) -> TemplateField:
        self._ratio()
        if self.type is FieldType.choice and not self.choices:
            raise ValueError("trường loại 'choice' cần 'choices' (các lựa chọn)")
        if self.type is not FieldType.choice and self.choices:
            raise ValueError("'choices' chỉ dùng cho trường loại 'choice'")
        self._numeric_bounds()
        if self.max_length is not None and self.type is not FieldType.text:
            raise ValueError("'max_length' chỉ dùng cho trường loại 'text'")
        numeric_only = {Aggregation.sum, Aggregation.mean, Aggregation.min, Aggregation.max}
        if self.aggregate in numeric_only and self.type not in _NUMERIC:
            raise ValueError(
                f"aggregate '{self.aggregate.value}' cần một trường số (integer, decimal, "
                f"percent), không phải '{self.type.value}'"
            )
        return self

    def _ratio(self) -> None:
        if self.ratio_of is None:
            return
        if self.type is not FieldType.percent:
            raise ValueError(
                f"'ratio_of' cần trường loại 'percent', không phải '{self.type.value}'"
            )
        if self.id in self.ratio_of or self.ratio_of[0] == self.ratio_of[1]:
            raise ValueError("'ratio_of' ghi hai trường khác: [tử số, mẫu số]")
        # The value is computed: what is only checked on input would never apply. (Judged
        # by value, not by the keys given: a stored definition spells out every default.)
        given = [
            name
            for name, unset in (
                ("aggregate", self.aggregate is Aggregation.list_by_unit),
                ("required", self.required),
                ("min", self.min is None),
                ("max", self.max is None),
                ("applies_to", self.applies_to is None),
            )
            if not unset
        ]
        if given:
            raise ValueError(
                f"'{given[0]}' không có tác dụng với trường 'ratio_of' (giá trị được tính từ "
                f"{self.ratio_of[0]} / {self.ratio_of[1]}, không hỏi đơn vị); hãy xóa nó"
            )

    def _numeric_bounds(self) -> None:
        for name, bound in (("min", self.min), ("max", self.max)):
            if bound is not None and not math.isfinite(bound):
                raise ValueError(f"'{name}' phải là một số hữu hạn, không phải {bound}")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min {self.min:g} lớn hơn max {self.max:g}; đổi chỗ hai giá trị")


class ReportTemplate(Model):
    id: Slug
    title: str
    fields: list[TemplateField] = Field(min_length=1)

    def field(self, field_id: str) -> TemplateField | None:
        return next((f for f in self.fields if f.id == field_id), None)
