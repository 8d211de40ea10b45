"""The review flow: the consolidating unit accepts or returns a report, from the Prefect UI.

A deployment run (``review/<plan>``, not a subflow) suspends with
``suspend_flow_run(wait_for_input=ReviewDecision)``: the process ends, nothing waits,
and the UI shows a Resume form built from :class:`ReviewDecision`.  On resume the run
is rescheduled and runs again from the top, so every step before the suspend is a
read, and the decision itself (``engine.lifecycle.review``) is idempotent: a decision
already made — from the CLI, or by an earlier attempt of this run — is not made twice.
No Prefect timeout is used: deadlines live in the database.

Where a decision is given as a parameter (CLI, simulation, automation) the flow does
not suspend.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from prefect import flow
from prefect.flow_runs import suspend_flow_run
from prefect.input import RunInput
from prefect.runtime import flow_run
from pydantic import Field

from engine.states import ReviewState
from engine.store.db import session_scope
from engine.store.models import Submission
from workflows.common import (
    add_run_tags,
    cycle_tag,
    database,
    iso,
    plan_short_name,
    plan_tag,
    resolve_now,
    submission_info,
    unit_tag,
)
from workflows.dispatch import send_emails
from workflows.events import (
    SUBMISSION_ACCEPTED,
    SUBMISSION_RETURNED,
    emit,
    related_resources,
    submission_resource,
)
from workflows.run_states import review_run_state
from workflows.tasks import kehoach_task

if TYPE_CHECKING:
    from prefect.client.schemas.objects import FlowRun


class ReviewDecision(RunInput):
    """The operator's decision on one report (the UI's Resume form)."""

    decision: Literal["accept", "return"] = Field(
        description="accept = chấp nhận; return = trả lại để đơn vị hoàn thiện"
    )
    reason: str = Field(
        "", description="Lý do trả lại (bắt buộc khi trả lại; được gửi email cho đơn vị)"
    )
    by: str = Field("operator", description="Người duyệt")


def _run_name() -> str:
    params = flow_run.parameters
    submission_id = params["submission_id"]
    try:
        info = submission_info(database(params.get("database_url")), submission_id)
    except Exception:
        info = None
    return f"duyệt · {info.label}" if info else f"duyệt · bản nộp {submission_id}"


def review_state(database_url: str, submission_id: int) -> tuple[ReviewState | None, str | None]:
    with session_scope(database_url) as session:
        submission = session.get(Submission, submission_id)
        if submission is None:
            return None, None
        return submission.review_state, submission.review_reason


@kehoach_task("decide")
def decide(
    submission_id: int, decision: str, reason: str, by: str, now: str, database_url: str
) -> dict[str, Any]:
    from engine.lifecycle import review

    with session_scope(database_url) as session:
        submission = review(
            session,
            submission_id,
            decision=decision,
            reason=reason or None,
            by=by,
            now=resolve_now(now),
        )
        return {"review_state": submission.review_state, "version": submission.version}


@flow(name="review", flow_run_name=_run_name, persist_result=False, log_prints=True)
def review_flow(
    submission_id: int,
    decision: Literal["accept", "return"] | None = None,
    reason: str | None = None,
    by: str | None = None,
    now: str | None = None,
    database_url: str | None = None,
    dispatch: bool = True,
) -> Any:
    """Accept or return one report; without ``decision``, wait (suspended) for the operator.

    The run ends in a state named "Trả lại" (the reason in its message) or "Chấp nhận"."""
    url = database(database_url)
    info = submission_info(url, submission_id)
    if info is None:
        raise ValueError(f"submission {submission_id} does not exist")
    add_run_tags(*info.tags)

    state, why = review_state(url, submission_id)
    if state in (ReviewState.ACCEPTED, ReviewState.RETURNED):
        print(f"duyệt · {info.label}: đã có quyết định ({state.label.lower()}); không làm lại")
        done = {"submission_id": submission_id, "review_state": state, "already": True}
        return review_run_state(state, info.label, why, done)

    if decision is None:
        answer = suspend_flow_run(
            wait_for_input=ReviewDecision.with_initial_data(
                description=(
                    f"**{info.label}** — chấp nhận (accept) hoặc trả lại (return, kèm lý do). "
                    f"Bản nộp số {submission_id}."
                ),
                decision="accept",
            ),
            key=f"review-{submission_id}",
            timeout=None,  # never a Prefect timeout: deadlines live in the database
        )
        # Resumed: this is a new execution from the top; a decision made meanwhile
        # (CLI) wins, the engine refuses to change it.
        state, why = review_state(url, submission_id)
        if state in (ReviewState.ACCEPTED, ReviewState.RETURNED):
            done = {"submission_id": submission_id, "review_state": state, "already": True}
            return review_run_state(state, info.label, why, done)
        decision, reason, by = answer.decision, answer.reason, answer.by

    moment = resolve_now(now)
    when = iso(moment)
    verb = "chấp nhận" if decision == "accept" else "trả lại"
    result = decide.with_options(task_run_name=f"{verb} · {info.label}")(
        submission_id, decision, reason or "", by or "operator", when, url
    )
    emit(
        SUBMISSION_ACCEPTED if decision == "accept" else SUBMISSION_RETURNED,
        submission_resource(submission_id, f"duyệt · {info.label}"),
        related_resources(
            info.plan_id,
            plan_short_name(url, info.plan_id),
            info.cycle_key,
            info.unit_id,
            info.unit_name,
        ),
        {"reason": reason or None, "by": by},
    )
    sent = send_emails(url, when) if dispatch else None
    print(f"duyệt · {info.label}: {ReviewState(result['review_state']).label.lower()}")
    out = {"submission_id": submission_id, **result, "already": False, "sent": sent}
    return review_run_state(result["review_state"], info.label, reason, out)


def deployment_name(plan_id: str) -> str:
    return f"review/{plan_id}"


def trigger_review(
    submission_id: int, plan_id: str | None = None, database_url: str | None = None
) -> Any:
    """Create a run of the plan's review deployment (it suspends, waiting for the operator).

    ``database_url`` is passed on only when given: a worker normally finds the store in
    its own environment, and a URL with a password does not belong in run parameters.
    """
    from prefect.deployments import run_deployment

    info = submission_info(database(database_url), submission_id)
    if info is None:
        raise LookupError(f"submission {submission_id} does not exist")
    parameters: dict[str, Any] = {"submission_id": submission_id}
    if database_url:
        parameters["database_url"] = database_url
    # timeout=0 returns at once; a sync caller gets the FlowRun, not a coroutine
    run: FlowRun = run_deployment(  # type: ignore[assignment]
        deployment_name(plan_id or info.plan_id),
        parameters=parameters,
        timeout=0,
        as_subflow=False,
        flow_run_name=f"duyệt · {info.label}",
        tags=[plan_tag(info.plan_id), unit_tag(info.unit_id), cycle_tag(info.cycle_key)],
    )
    return run.id
