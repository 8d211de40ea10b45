"""Types of the plan's time fields, kept out of ``engine.schema`` (which re-exports them)."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Literal

from pydantic import BeforeValidator, Field

from engine.deadline_kind import DeadlineKind as DeadlineKind
from engine.schema_base import Model

# A cycle key: '2026', '2026-H1', '2026-Q2', '2026-04' (engine.calendar.cycles_in_year).
FIRST_PERIOD_PATTERN = r"^\d{4}(?:-(?:0[1-9]|1[0-2]|Q[1-4]|H[12]))?$"


class DeadlinePolicy(StrEnum):
    exact = "exact"
    next_working_day = "next_working_day"  # Bộ luật Dân sự 2015, Điều 148
    previous_working_day = "previous_working_day"


def _year_as_text(value: object) -> object:
    """YAML reads `first_period: 2026` as a number; it is the cycle key '2026'."""
    return str(value) if isinstance(value, int) and not isinstance(value, bool) else value


FirstPeriod = Annotated[str, BeforeValidator(_year_as_text), Field(pattern=FIRST_PERIOD_PATTERN)]


class CutoffPeriod(Model):
    """Data cut-off period (Nghị định 09/2019/NĐ-CP Điều 12)."""

    period: Literal["year", "half_year", "quarter", "month"] = Field(
        "year", description="The reporting period the days below are relative to."
    )
    start_day: int = Field(15, ge=1, le=31)
    start_month: int = Field(12, ge=1, le=12)
    start_in_previous_year: bool = True
    end_day: int = Field(14, ge=1, le=31)
    end_month: int = Field(12, ge=1, le=12)
    phrase: str | None = Field(
        None,
        description="The plan's words about the period, or why it was chosen: printed once, "
        "under the dates, in the assignment email (the others give the dates in one line).",
    )
