"""The name a run's final state carries in the Prefect UI: what happened, in Vietnamese.

Every run that ends well is "Completed" to Prefect, shown as a green badge with that
word.  A flow that returns ``Completed(name=…)`` keeps the type (it counts as
completed; filters, automations and the caller's result are unchanged) and the runs
list shows the name instead: an intake run of a late report reads "Trễ hạn", one
on time "Đúng hạn", a review "Trả lại" or "Chấp nhận".  The caller of the flow
function still gets the dict (``data``); Prefect resolves the state for it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from prefect.states import Completed, State

from engine.calendar import local_day
from engine.states import ReviewState

LATE = "Trễ hạn"
ON_TIME = "Đúng hạn"
RETURNED = "Trả lại"
ACCEPTED = "Chấp nhận"


def _days_late(result: dict[str, Any]) -> int | None:
    submitted, due = result.get("submitted_at"), result.get("due_date")
    if submitted is None or due is None:
        return None
    return max((local_day(submitted) - due).days, 1)


def _late_text(result: dict[str, Any], label: str) -> str:
    days = _days_late(result)
    return f"{label}: trễ {days} ngày" if days else f"{label}: trễ hạn"


def intake_state(
    taken: Sequence[dict[str, Any]], labels: dict[int, str], data: dict[str, Any]
) -> State[Any] | dict[str, Any]:
    """ "Trễ hạn" when a report taken in by this run came after its deadline (the message
    names them), "Đúng hạn" when every one was on time; ``data`` as it is when the run
    took in nothing new (all taken in before)."""
    new = [r for r in taken if not r["already_done"]]
    if not new:
        return data
    late = [r for r in new if not r["on_time"]]
    if not late:
        what = labels.get(new[0]["submission_id"], "") if len(new) == 1 else f"{len(new)} bản nộp"
        return Completed(name=ON_TIME, message=f"{what}: đúng hạn", data=data)
    texts = [_late_text(r, labels.get(r["submission_id"], "")) for r in late]
    head = "" if len(new) == 1 else f"{len(late)}/{len(new)} bản nộp trễ hạn — "
    return Completed(name=LATE, message=head + "; ".join(texts), data=data)


def review_run_state(
    review_state: ReviewState | str, label: str, reason: str | None, data: dict[str, Any]
) -> State[Any] | dict[str, Any]:
    """ "Trả lại" (the reason in the message) or "Chấp nhận"; ``data`` otherwise."""
    state = ReviewState(review_state)
    if state is ReviewState.RETURNED:
        return Completed(name=RETURNED, message=f"{label}: {reason or 'trả lại'}", data=data)
    if state is ReviewState.ACCEPTED:
        return Completed(name=ACCEPTED, message=f"{label}: chấp nhận", data=data)
    return data
