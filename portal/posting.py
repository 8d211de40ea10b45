"""The answer POST, in one hop off the event loop.

- A form without a file (most reports) is taken in ONE write transaction: the link
  opened with its obligation's row locked, the versions that decide read under that
  lock, the answer checked and stored, the audit row written. One pooled connection,
  and nothing read twice (an answer cost two transactions and eight statements, the
  obligation and its versions read in both). The lock serialises answers to one
  obligation across processes (on SQLite, BEGIN IMMEDIATE excludes every other writer),
  so the version read is the one the insert follows.
- A form with files stages them (written to disk and checked) before any transaction:
  the link is opened in a read session, then the answer stored in a transaction of its
  own (:func:`portal.answers.submit`), so no upload is read while a lock is held.

A replay (the same form posted again) is answered with its first receipt either way.
Refusal audit rows are written after the answer's transaction, each in its own.
"""

from __future__ import annotations

import logging
import random
import time

from sqlalchemy.exc import IntegrityError, OperationalError
from starlette.responses import Response

from portal import answers
from portal.access import LinkRefused
from portal.link import OpenedPost, Posted, checked_form_key, open_for_answer, refused_post
from portal.state import PortalState, retryable

log = logging.getLogger("kehoach.portal")


def take_answer(state: PortalState, posted: Posted) -> tuple[Response, int | None]:
    """The response to a posted answer and the id of the submission stored (None when
    nothing was: a refusal, an invalid answer, a replay)."""
    if posted.has_files:
        return _answer(state, posted, posted.open(), None)
    return _in_one_transaction(state, posted)


def _in_one_transaction(state: PortalState, posted: Posted) -> tuple[Response, int | None]:
    key = checked_form_key(state, posted.token, posted.form, posted.nonce, posted.addr)
    for attempt in range(1, answers.STORE_ATTEMPTS + 1):
        refused: LinkRefused | None = None
        within: answers.InTransaction | None = None
        try:
            with state.writing() as session:
                try:
                    opened = open_for_answer(
                        state, session, posted.token, posted.nonce, key, lock=True
                    )
                except LinkRefused as exc:
                    refused = exc
                else:
                    within = answers.InTransaction(session, opened.history)
                    result = _answer(state, posted, opened, within)
        except (IntegrityError, OperationalError) as exc:
            # another process stored a clashing row, or SQLite refused its lock: the
            # whole transaction again (it rolled back; nothing of it was kept)
            if attempt == answers.STORE_ATTEMPTS or not retryable(exc):
                raise
            log.info("answer on %s: %s, retrying", posted.token[:12], exc.orig)
            time.sleep(random.uniform(0.01, 0.05) * attempt)
            continue
        if refused is not None:
            raise refused_post(state, posted.token, posted.addr, posted.nonce, refused)
        assert within is not None
        for record in within.deferred:
            record()
        return result
    raise AssertionError("unreachable")


def _answer(
    state: PortalState, posted: Posted, opened: OpenedPost, within: answers.InTransaction | None
) -> tuple[Response, int | None]:
    link = opened.link
    if opened.first is None:
        return answers.submit(
            state,
            link,
            posted.form,
            posted.addr,
            opened.answerable,
            form_key=opened.form_key,
            within=within,
        )
    log.info(
        "replayed answer on obligation %s: receipt of v%s", link.obligation.id, opened.first.version
    )

    def record() -> object:
        assert opened.first is not None
        return state.refusals.record(
            "portal.submit_replayed",
            at=link.opened_at,
            actor=link.actor,
            remote_addr=posted.addr,
            link_hash=link.token_hash,
            obligation_id=link.obligation.id,
            plan_id=link.plan.id,
            submission_id=opened.first.id,
            version=opened.first.version,
        )

    if within is not None:
        within.deferred.append(record)
    else:
        record()
    return answers.receipt_redirect(link, opened.first.version), None
