"""The kinds of email kehoach queues (each has its templates in notifications/templates)."""

from __future__ import annotations

from enum import StrEnum


class MailKind(StrEnum):
    ASSIGNMENT = "assignment"  # a new duty (or one inherited from an abolished unit)
    TASK_SUPPORT = "task_support"  # to a tracked task's supporting units (phối hợp)
    REMINDER = "reminder"  # n days before the deadline
    OVERDUE = "overdue"  # the day after the deadline
    ESCALATION = "escalation"  # to the unit's head, some days overdue
    RECEIPT = "receipt"  # an answer taken in
    RETURNED = "returned"  # a report returned for revision, with the reason
    CONSOLIDATED = "consolidated"  # the consolidated report, to the body it is for
    DIGEST = "digest"  # Monday: who owes what, to the consolidating unit
    CYCLE_CLOSED = "cycle_closed"  # the closing summary
    REPORT_AFTER_CONSOLIDATION = "report_after_consolidation"  # an answer after the report
    DELIVERY_FAILURE = "delivery_failure"  # to the administrator
    UNIT_MESSAGE = "unit_message"  # a report or comment a unit sent unasked (portal)
    TASK_CONTRIBUTION = "task_contribution"  # a supporting unit's part, to the task's lead
    INHERITED = "inherited"  # to an heir: the open work it took over (engine.successors)
    PLAN_NOTICE = "plan_notice"  # the plan to its Nơi nhận (engine.outbox.plan_notice)
    # The consolidated report's draft, to the consolidating unit (review, approve, sign,
    # send), its reminders and, near the upward date, the letter to the unit's head.
    REPORT_DRAFT = "report_draft"


KINDS = tuple(MailKind)


def mail_kind(kind: str) -> MailKind:
    """The member for ``kind``; a ValueError naming the known kinds otherwise."""
    try:
        return MailKind(kind)
    except ValueError:
        raise ValueError(
            f"unknown email kind {kind!r}; expected one of {', '.join(KINDS)}"
        ) from None
