"""The responses file of a simulation: which unit sends what, and when (or never).

::

    kind: responses
    plan: ha-lang-pccc-2022          # informational
    defaults:
      submit: on_time                # on_time | never: units not listed below
      days_before_due: [2, 8]        # on-time answers arrive this many days early
      values:                        # report fields: a value, [min, max] or a list to pick from
        so-lop-huan-luyen: [1, 6]
    responses:
      - unit: ubnd-xa-thi-hoa        # matches every obligation of the unit ("*": any unit) …
        deliverable: bao-cao-nam     # … narrowed by deliverable, cycle, plan
        late_days: 4                 # or: at: 2023-09-15T10:00+07:00, days_before_due: 1, never: true
        values: {so-vu-chay: 1}
        summary: "..."
        review: {decision: return, reason: "...", after_days: 1}
        resubmit: {after_days: 2, values: {...}}

Values are picked deterministically (a hash of unit, deliverable and cycle), so two
runs of one simulation send the same reports.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from engine.calendar import TZ
from engine.clock import parse_moment
from engine.schema import FieldType, ReportTemplate


class ResponsesError(ValueError):
    """A responses file that cannot be used (the message says where and what)."""


@dataclass(frozen=True)
class Review:
    decision: str
    reason: str | None
    after_days: int = 1


@dataclass(frozen=True)
class Rule:
    unit: str
    deliverable: str | None = None
    cycle: str | None = None
    plan: str | None = None
    at: dt.datetime | None = None
    days_before_due: int | None = None
    late_days: int | None = None
    never: bool = False
    values: dict[str, Any] = field(default_factory=dict)
    summary: str | None = None
    review: Review | None = None
    resubmit: dict[str, Any] | None = None

    def matches(self, plan_id: str, unit_id: str, deliverable_id: str, cycle_key: str) -> bool:
        return (
            self.unit in ("*", unit_id)
            and self.deliverable in (None, deliverable_id)
            and self.cycle in (None, cycle_key)
            and self.plan in (None, plan_id)
        )


@dataclass
class Responses:
    submit_default: str = "on_time"  # on_time | never
    days_before_due: tuple[int, int] = (2, 8)
    default_values: dict[str, Any] = field(default_factory=dict)
    rules: list[Rule] = field(default_factory=list)
    source: str | None = None

    def rule_for(
        self, plan_id: str, unit_id: str, deliverable_id: str, cycle_key: str
    ) -> Rule | None:
        found = [r for r in self.rules if r.matches(plan_id, unit_id, deliverable_id, cycle_key)]
        # the most specific rule wins
        return max(
            found,
            key=lambda r: (
                (r.deliverable is not None) + (r.cycle is not None) + (r.plan is not None)
            ),
            default=None,
        )


def _int_pair(value: Any, where: str) -> tuple[int, int]:
    if isinstance(value, int):
        return value, value
    if isinstance(value, list) and len(value) == 2 and all(isinstance(v, int) for v in value):
        return int(value[0]), int(value[1])
    raise ResponsesError(f"{where}: expected a number of days or [min, max], got {value!r}")


def _moment(value: Any, where: str) -> dt.datetime:
    if isinstance(value, dt.datetime):
        return value if value.tzinfo else value.replace(tzinfo=TZ)
    if isinstance(value, dt.date):
        return dt.datetime.combine(value, dt.time(9, 0), TZ)
    try:
        return parse_moment(str(value))
    except ValueError as exc:
        raise ResponsesError(f"{where}: {exc}") from None


def parse(data: Any, source: str | None = None) -> Responses:
    where = source or "responses"
    if data is None:
        return Responses(source=source)
    if not isinstance(data, dict):
        raise ResponsesError(f"{where}: the file must be a mapping (kind: responses)")
    if data.get("kind", "responses") != "responses":
        raise ResponsesError(f"{where}: kind must be 'responses', not {data.get('kind')!r}")
    defaults = data.get("defaults") or {}
    submit = defaults.get("submit", "on_time")
    if submit not in ("on_time", "never"):
        raise ResponsesError(f"{where}: defaults.submit must be on_time or never, not {submit!r}")
    out = Responses(
        submit_default=submit,
        days_before_due=_int_pair(
            defaults.get("days_before_due", [2, 8]), f"{where}: defaults.days_before_due"
        ),
        default_values=dict(defaults.get("values") or {}),
        source=source,
    )
    known = {
        "unit",
        "deliverable",
        "cycle",
        "plan",
        "at",
        "days_before_due",
        "late_days",
        "never",
        "values",
        "summary",
        "review",
        "resubmit",
    }
    for index, item in enumerate(data.get("responses") or []):
        here = f"{where}: responses[{index}]"
        if not isinstance(item, dict) or "unit" not in item:
            raise ResponsesError(f"{here}: each response needs 'unit'")
        unknown = sorted(set(item) - known)
        if unknown:
            raise ResponsesError(f"{here}: unknown key(s) {', '.join(unknown)}")
        review = None
        if item.get("review"):
            r = item["review"]
            if r.get("decision") not in ("accept", "return"):
                raise ResponsesError(f"{here}.review: decision must be accept or return")
            if r["decision"] == "return" and not r.get("reason"):
                raise ResponsesError(f"{here}.review: returning needs a reason")
            review = Review(r["decision"], r.get("reason"), int(r.get("after_days", 1)))
        out.rules.append(
            Rule(
                unit=str(item["unit"]),
                deliverable=item.get("deliverable"),
                cycle=str(item["cycle"]) if item.get("cycle") is not None else None,
                plan=item.get("plan"),
                at=_moment(item["at"], f"{here}.at") if item.get("at") else None,
                days_before_due=item.get("days_before_due"),
                late_days=item.get("late_days"),
                never=bool(item.get("never", False)),
                values=dict(item.get("values") or {}),
                summary=item.get("summary"),
                review=review,
                resubmit=dict(item["resubmit"]) if item.get("resubmit") else None,
            )
        )
    return out


def load(path: str | Path | None) -> Responses:
    if path is None:
        return Responses()
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as exc:
        raise ResponsesError(f"{file}: cannot read the responses file ({exc.strerror})") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f":{mark.line + 1}:{mark.column + 1}" if mark else ""
        raise ResponsesError(
            f"{file}{at}: not valid YAML ({getattr(exc, 'problem', exc)})"
        ) from None
    return parse(data, str(file))


# ---------------------------------------------------------------- values


def _pick(seed: str, low: float, high: float, decimals: int = 0) -> float:
    digest = int(hashlib.sha256(seed.encode("utf-8")).hexdigest()[:12], 16)
    fraction = (digest % 10_000) / 9_999
    value = low + (high - low) * fraction
    return round(value, decimals) if decimals else round(value)


def _from_spec(spec: Any, seed: str, kind: FieldType) -> Any:
    if isinstance(spec, list) and len(spec) == 2 and all(isinstance(v, (int, float)) for v in spec):
        decimals = 1 if kind is FieldType.decimal else 0
        return _pick(seed, float(spec[0]), float(spec[1]), decimals)
    if isinstance(spec, list) and spec:
        return spec[int(_pick(seed, 0, len(spec) - 1))]
    return spec


def report_values(
    template: ReportTemplate,
    defaults: dict[str, Any],
    overrides: dict[str, Any],
    seed: str,
    day: dt.date,
) -> dict[str, Any]:
    """Values for every field of ``template``: overrides, then defaults, then by type."""
    values: dict[str, Any] = {}
    for f in template.fields:
        key = f"{seed}:{f.id}"
        if f.id in overrides:
            values[f.id] = _from_spec(overrides[f.id], key, f.type)
            continue
        if f.id in defaults:
            values[f.id] = _from_spec(defaults[f.id], key, f.type)
            continue
        low = f.min if f.min is not None else 0
        if f.type is FieldType.integer:
            values[f.id] = int(_pick(key, low, f.max if f.max is not None else low + 10))
        elif f.type is FieldType.percent:
            values[f.id] = int(_pick(key, max(low, 80), f.max if f.max is not None else 100))
        elif f.type is FieldType.decimal:
            values[f.id] = _pick(key, low, f.max if f.max is not None else low + 100, 1)
        elif f.type is FieldType.choice:
            values[f.id] = f.choices[0]
        elif f.type is FieldType.date:
            values[f.id] = day.isoformat()
        elif f.type is FieldType.text and f.required:
            values[f.id] = "Đơn vị đã triển khai đầy đủ các nhiệm vụ được giao trong kỳ báo cáo."
        # optional text and file fields stay empty
    return values
