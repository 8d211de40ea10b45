"""The life of a plan instance: activation, the daily sweep, submissions, intake, review.

Every function takes an explicit session (one transaction, committed by the caller)
and an explicit time; none reads the wall clock. Every one is idempotent: re-running
it for the same inputs creates no second row and queues no second email, because
obligations are upserts keyed by (cycle, unit, deliverable) and every email carries
a stable idempotency key written in the same transaction as the change causing it.

One module per step; this package re-exports what callers outside engine/ use.
"""

from engine.context import PlanContext, context_for_obligation, plan_context, version_of_cycle
from engine.lifecycle.activation import ActivationResult, activate, start_cycle
from engine.lifecycle.intake import IntakeResult, intake, intake_many, take_in_waiting
from engine.lifecycle.review import ReviewError, review
from engine.lifecycle.submissions import (
    FORM_ERROR,
    LockedObligation,
    SubmissionRejected,
    deciding_versions,
    record_submission,
    submission_refusal,
)
from engine.lifecycle.sweep import (
    DEFAULT_REMINDERS,
    DIGEST_WEEKDAY,
    ESCALATE_AFTER_DAYS,
    SweepResult,
    sweep,
)

__all__ = [
    "DEFAULT_REMINDERS",
    "DIGEST_WEEKDAY",
    "ESCALATE_AFTER_DAYS",
    "FORM_ERROR",
    "ActivationResult",
    "IntakeResult",
    "LockedObligation",
    "PlanContext",
    "ReviewError",
    "SubmissionRejected",
    "SweepResult",
    "activate",
    "context_for_obligation",
    "deciding_versions",
    "intake",
    "intake_many",
    "plan_context",
    "record_submission",
    "review",
    "start_cycle",
    "submission_refusal",
    "sweep",
    "take_in_waiting",
    "version_of_cycle",
]
