"""What a deadline's own words promise: is the named day included or not?

"trước ngày 10/9" literally ends on 9/9 (exclusive); "chậm nhất ngày 10/9", "trước hoặc
trong ngày 10/9", "hạn cuối ngày 10/9" include 10/9 (inclusive).  Practice varies on the
first, so a plan may read "trước ngày" as inclusive, but only with its reason written in
the rule's ``note`` (docs: README, "Deadlines and periods").  Words that clearly include
the day can never be read as exclusive.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from engine.deadline_kind import DeadlineKind

# Checked in order: the inclusive forms contain "trước" too ("trước hoặc trong ngày").
_INCLUSIVE = (
    r"chậm nhất",
    r"muộn nhất",
    r"trước hoặc (?:trong|vào|đúng) ngày",
    r"hạn cuối",
    r"không (?:muộn|chậm) hơn",
    r"không quá ngày",
    r"đến hết ngày",
    r"trong ngày",
    r"trong (?:vòng|thời hạn|thời gian) \d+",
    r"kể từ",
)
_EXCLUSIVE = (r"trước ngày", r"trước \d{1,2}/\d{1,2}")


@dataclass(frozen=True)
class Reading:
    """The kind the words give, and the words that gave it (None: the words say nothing)."""

    kind: DeadlineKind | None
    words: str | None
    certain: bool  # False for "trước ngày": its literal reading, which practice varies on


def _norm(text: str) -> str:
    return " ".join(unicodedata.normalize("NFC", text).casefold().split())


def read_phrase(phrase: str | None) -> Reading:
    """The kind the phrase's own words give."""
    if not phrase:
        return Reading(None, None, False)
    text = _norm(phrase)
    for pattern in _INCLUSIVE:
        found = re.search(pattern, text)
        if found:
            return Reading(DeadlineKind.inclusive, found.group(0), True)
    for pattern in _EXCLUSIVE:
        found = re.search(pattern, text)
        if found:
            return Reading(DeadlineKind.exclusive, found.group(0), False)
    return Reading(None, None, False)


def kind_of(rule: object) -> DeadlineKind:
    """The kind a rule resolves to: its field, else its words, else inclusive (the date the
    YAML names is the last day)."""
    stated = getattr(rule, "deadline_kind", None)
    if stated is not None:
        return DeadlineKind(stated)
    read = read_phrase(getattr(rule, "phrase", None))
    return read.kind or DeadlineKind.inclusive


def against_the_letter(rule: object) -> bool:
    """True where the rule reads "trước ngày X" as including X (its reason is in ``note``)."""
    stated = getattr(rule, "deadline_kind", None)
    read = read_phrase(getattr(rule, "phrase", None))
    return stated == DeadlineKind.inclusive and read.kind is DeadlineKind.exclusive
