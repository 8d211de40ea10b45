"""The deadline sentence every email, page and document shows: the plan's own words, the
computed date and why it differs, never a date the plan did not write.

- a phrase: "Kế hoạch ghi: “trước ngày 10/9/ hằng năm” … 10/9/2023 là Chủ nhật; theo
  Điều 148 …: Thứ Hai, 11/9/2023."
- ``assumed: true``: "Hạn do đơn vị tổng hợp đề nghị (kế hoạch không nêu thời hạn) …";
  the escalation then cites that unit, not the plan (:func:`describe`'s ``basis``).
- no phrase: the date alone, with the reason it moved.

The sentence is said in full once, in the first email of a duty (the assignment) and on
its page; the repeated emails (reminders, overdue notices, escalations…) carry only
``short``: one clause saying that, not why, the date differs from the plan's words.
"""

from __future__ import annotations

from typing import Any

from engine.deadline_words import against_the_letter, kind_of
from engine.schema import DeadlinePolicy, Plan

ASSUMED = "Hạn do đơn vị tổng hợp đề nghị"
POLICY_WORDS = {
    DeadlinePolicy.next_working_day: "nếu là ngày nghỉ, chuyển sang ngày làm việc tiếp theo "
    "theo Điều 148 Bộ luật Dân sự 2015",
    DeadlinePolicy.previous_working_day: "nếu là ngày nghỉ, chuyển về ngày làm việc liền trước",
    DeadlinePolicy.exact: "giữ nguyên cả khi là ngày nghỉ",
}


# The short clause for a reason, by the words engine/calendar.py writes it with (checked in
# order: an exclusive "trước ngày" that also moved is said to have moved).
_SHORT_FOR = (
    (("chuyển sang ngày làm việc", "chuyển về ngày làm việc"), "đã chuyển do ngày nghỉ"),
    (("giữ nguyên",), "giữ nguyên dù là ngày nghỉ"),
    (("không tính ngày",), "không tính ngày kế hoạch ghi"),
)
SHORT_ASSUMED = "hạn do đơn vị tổng hợp đề nghị"
SHORT_OTHER = "hạn đã điều chỉnh"
SHORT_INCLUSIVE = "tính cả ngày kế hoạch ghi"


def short_clause(rule: Any, reason: str | None) -> str | None:
    """The one clause a repeated email puts beside the date (None: the date is the one
    the plan's words name)."""
    if rule is not None and rule.assumed:
        return SHORT_ASSUMED
    if not reason:
        # "trước ngày 10/9" read as including 10/9: the date is not the letter's 9/9.
        return SHORT_INCLUSIVE if rule is not None and against_the_letter(rule) else None
    text = reason.casefold()
    for words, clause in _SHORT_FOR:
        if any(word in text for word in words):
            return clause
    return SHORT_OTHER


def rule_of(plan: Plan, deliverable_id: str) -> Any:
    """The deadline rule of a deliverable or a consolidation duty (None if unknown)."""
    deliverable = plan.deliverable(deliverable_id)
    if deliverable is not None:
        return deliverable.deadline
    duty = next((c for c in plan.consolidations if c.id == deliverable_id), None)
    return duty.deadline if duty is not None else None


def _capital(text: str) -> str:
    """The first letter upper-case, past any opening quote ("“trước ngày”" → "“Trước ngày”")."""
    index = len(text) - len(text.lstrip("“\"'("))
    if index < len(text) and text[index].isalpha():
        return text[:index] + text[index].upper() + text[index + 1 :]
    return text


def _end(text: str) -> str:
    text = text.strip()
    return text if text.endswith((".", "!", "?")) else text + "."


def describe(rule: Any, reason: str | None, plan_ref: str | None = None) -> dict[str, Any]:
    """What a message says about one deadline.

    ``reason`` is the obligation's stored ``due_reason`` (why its due date is not the date
    the plan names); ``plan_ref`` names the plan in ``basis`` ("Theo Kế hoạch số …").  The
    sentence goes beside the computed date, so it does not repeat it."""
    assumed = bool(rule is not None and rule.assumed)
    phrase = rule.phrase if rule is not None else None
    parts: list[str] = []
    if assumed:
        note = (rule.note or "").strip().rstrip(".")
        # A note that already says the plan names no deadline is not told so twice.
        head = (
            ASSUMED if "không nêu" in note.lower() else f"{ASSUMED} (kế hoạch không nêu thời hạn)"
        )
        if note:
            head += f": {note}"
        parts.append(_end(head))
    elif phrase:
        quoted = f"Kế hoạch ghi: “{phrase.strip()}”"
        if against_the_letter(rule):
            quoted += f" (cách tính hạn: {rule.note.strip().rstrip('.')})"
        parts.append(_end(quoted))
    if reason:
        parts.append(_end(_capital(reason)))
    # Without a reason the date shown beside the sentence is the one the words name.
    basis = f"Theo {plan_ref}" if plan_ref else "Theo kế hoạch"
    if assumed:
        basis = "Theo hạn do đơn vị tổng hợp đề nghị (kế hoạch không nêu thời hạn)"
    return {
        "sentence": " ".join(parts),
        "short": short_clause(rule, reason),
        "phrase": phrase,
        "assumed": assumed,
        "kind": kind_of(rule).value if rule is not None else None,
        "policy": POLICY_WORDS.get(rule.policy) if rule is not None else None,
        "basis": basis,
    }
