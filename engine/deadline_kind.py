"""Whether a deadline's named day is included (kept apart from the schema's pydantic
types so the words' reading, :mod:`engine.deadline_words`, loads without pydantic)."""

from __future__ import annotations

from enum import StrEnum


class DeadlineKind(StrEnum):
    exclusive = "exclusive"  # "trước ngày 10/9": the last day is 9/9
    inclusive = "inclusive"  # "chậm nhất ngày 10/9", "trước hoặc trong ngày 10/9"
