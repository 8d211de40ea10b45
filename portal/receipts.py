"""The receipt email goes out right after the portal took an answer in itself.

When Prefect is not used or not reachable the portal takes answers in with its own
intake (portal.handoff); the receipt it queues (the clerk's proof that the report
arrived) would then wait for the next dispatcher pass, which may be ten minutes or,
with no dispatcher scheduled, never. So the same process sends those receipts at once:
one dispatcher pass restricted to their outbox rows, best effort (a receipt that does
not go now, e.g. the SMTP server is down, is left exactly as it was for the regular
dispatcher, which retries and reports). A receipt never waits for working hours
(engine/outbox/timing.py). With the intake flow, the flow sends them at its end.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Sequence

from sqlalchemy import select

from engine.config import settings as default_settings
from engine.outbox import MailKind, obligation_key
from engine.store.db import session_scope
from engine.store.models import Submission
from notifications.dispatch import Dispatcher, run_sync

log = logging.getLogger("kehoach.portal")


def receipt_keys(db_url: str, submission_ids: Sequence[int]) -> list[str]:
    """The idempotency keys of the receipts of these submissions (engine.lifecycle.intake)."""
    with session_scope(db_url) as session:
        rows = session.execute(
            select(Submission.obligation_id, Submission.version).where(
                Submission.id.in_(list(submission_ids))
            )
        ).all()
    return [obligation_key(oid, MailKind.RECEIPT, str(version)) for oid, version in rows]


def send_receipts(db_url: str, submission_ids: Sequence[int], now: dt.datetime) -> int:
    """Send the receipts of ``submission_ids`` that are due; how many went. Never raises:
    the answers are taken in whatever happens to their receipts."""
    if not submission_ids:
        return 0
    try:
        keys = receipt_keys(db_url, submission_ids)
        dispatcher = Dispatcher(db_url, default_settings(), now=now, keys=keys, best_effort=True)
        sent = run_sync(dispatcher.run()).sent
    except Exception:
        log.exception("receipts of %d submissions not sent now", len(submission_ids))
        return 0
    if sent < len(keys):
        log.warning("%d of %d receipts left to the dispatcher", len(keys) - sent, len(keys))
    return sent
