"""The name a run's final state carries in the Prefect UI: what happened, in Vietnamese.

Every run that ends well is "Completed" to Prefect, shown as a green badge with that
word.  A flow that returns ``Completed(name=…)`` keeps the type (it counts as
completed; filters, automations and the caller's result are unchanged) and the runs
list shows the name instead: an intake run of a late report reads "Trễ hạn", one
on time "Đúng hạn", a review "Trả lại" or "Chấp nhận".  The caller of the flow
function still gets the dict (``data``); Prefect resolves the state for it.

The badge keeps the colour and the tick of its type, though: a late run is as green as
an on-time one (seen in the runs list at 1280 px with scripts/prefect-ui-shots.py). So
a run that ends "Trễ hạn" or "Trả lại" also has its name start with "TRỄ HẠN · " /
"TRẢ LẠI · ": the name is the bold line of the runs list, and its search box finds
every late run at once. (Not a tag: a run's tags become ``prefect.tag.<tag>`` resource
ids on every event it emits, and those stay ASCII.)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from prefect.states import Completed, State

from engine.calendar import local_day
from engine.states import ReviewState
from workflows.common import prefix_run_name

LATE = "Trễ hạn"
ON_TIME = "Đúng hạn"
RETURNED = "Trả lại"
ACCEPTED = "Chấp nhận"
# the bad news, also at the head of the run's name
NAME_PREFIXES = {LATE: "TRỄ HẠN · ", RETURNED: "TRẢ LẠI · "}


def _named(name: str, message: str, data: dict[str, Any]) -> State[Any]:
    """``Completed`` named ``name``; the current run renamed when the news is bad."""
    if name in NAME_PREFIXES:
        prefix_run_name(NAME_PREFIXES[name])
    return Completed(name=name, message=message, data=data)


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
        return _named(ON_TIME, f"{what}: đúng hạn", data)
    texts = [_late_text(r, labels.get(r["submission_id"], "")) for r in late]
    head = "" if len(new) == 1 else f"{len(late)}/{len(new)} bản nộp trễ hạn — "
    return _named(LATE, head + "; ".join(texts), data)


def review_run_state(
    review_state: ReviewState | str, label: str, reason: str | None, data: dict[str, Any]
) -> State[Any] | dict[str, Any]:
    """ "Trả lại" (the reason in the message) or "Chấp nhận"; ``data`` otherwise."""
    state = ReviewState(review_state)
    if state is ReviewState.RETURNED:
        return _named(RETURNED, f"{label}: {reason or 'trả lại'}", data)
    if state is ReviewState.ACCEPTED:
        return _named(ACCEPTED, f"{label}: chấp nhận", data)
    return data
