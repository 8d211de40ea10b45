"""POST of the answer form: check, store files and the submission, hand over to intake.

Order of work, so that a refused answer leaves nothing behind:
1. the link (re-derived from the token) and the CSRF token: checked by ``portal.link``
   before :func:`submit` runs, which receives the opened link;
2. every file is staged in ``files_dir/.incoming`` and checked (size, type by content);
3. the values are checked against the template (``engine.values.validate_values``);
4. only then, in one transaction: files moved into place, ``StoredFile`` rows, the
   submission (``engine.lifecycle.record_submission``) and the audit event.
   If that transaction fails, files it placed are removed again.
5. after commit: the intake handoff (off the request) and a redirect to the receipt.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import functools
import logging
import random
import time
from collections.abc import Callable, Sequence
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import delete
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session
from starlette.datastructures import FormData, UploadFile
from starlette.responses import RedirectResponse, Response

from engine.lifecycle import (
    FORM_ERROR,
    LockedObligation,
    SubmissionRejected,
    record_submission,
)
from engine.schema import FieldType
from engine.store.models import AnswerDraft
from engine.values import validate_values
from portal import audit, idempotency, uploads
from portal.access import OpenedLink
from portal.obligation import obligation_response
from portal.state import MAX_FILES_PER_FORM, PortalState, retryable
from portal.view import SUMMARY_FIELD, SUMMARY_MAX, Answer, answer_for, can_answer

log = logging.getLogger("kehoach.portal")

STORE_ATTEMPTS = 5

# engine.lifecycle's error keys for a sub-plan -> the form's fields
SUB_PLAN_ERROR_FIELDS = {"summary": SUMMARY_FIELD, "files": "van-ban"}


@dataclass
class InTransaction:
    """An answer taken inside its caller's write transaction (portal.posting: the link
    was opened in it with its obligation's row locked): the session, the versions read
    under the lock, and the refusal audit rows to write after it ends (each in its own
    transaction: portal.audit.RefusalAudit)."""

    session: Session
    history: Sequence[Any]
    deferred: list[Callable[[], object]] = dataclasses.field(default_factory=list)


class _Invalid(Exception):
    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__("invalid")
        self.errors = errors


def form_field(field_id: str) -> str:
    return f"f-{field_id}"


def _text_values(answer: Answer, form: FormData) -> dict[str, str]:
    """What the unit typed, to show again next to the errors."""
    shown: dict[str, str] = {}
    for field in answer.fields:
        if field.type is FieldType.file:
            continue
        value = form.get(form_field(field.id))
        if isinstance(value, str):
            shown[field.id] = value
    return shown


def _stage_files(
    state: PortalState, answer: Answer, form: FormData
) -> tuple[dict[str, uploads.StagedFile], dict[str, str]]:
    staged: dict[str, uploads.StagedFile] = {}
    errors: dict[str, str] = {}
    budget = state.max_file_bytes
    try:
        for field in answer.file_fields:
            item = form.get(form_field(field.id))
            if not isinstance(item, UploadFile) or not item.filename:
                continue
            item.file.seek(0)
            try:
                staged[field.id] = uploads.stage(
                    item.file, item.filename, field.id, state.files_dir, budget
                )
                budget -= staged[field.id].size
            except uploads.UploadRejected as exc:
                errors[field.id] = exc.message
    except BaseException:
        uploads.discard(list(staged.values()))
        raise
    return staged, errors


def submit(
    state: PortalState,
    link: OpenedLink,
    form: FormData,
    addr: str,
    answerable: tuple[bool, str | None] | None = None,
    form_key: str | None = None,
    within: InTransaction | None = None,
) -> tuple[Response, int | None]:
    """The response to an answer posted on ``link`` (opened by ``portal.link``, its CSRF
    field checked), and the id of the stored submission (None when nothing was stored).
    ``answerable``: :func:`can_answer` as read when the link was opened (read here if not);
    ``form_key``: the answer's idempotency key (portal.idempotency): an answer already
    stored under it is not stored again, its receipt is the answer.
    ``within``: store in the caller's transaction, where the link was opened (no file
    is staged there: a form with files is taken with ``within=None``)."""
    now, plan = link.opened_at, link.plan
    answer = answer_for(plan, link.obligation, state.reading)
    if answerable is None:
        with state.reading() as session:
            answerable = can_answer(session, link.obligation, now)
    allowed, why_not = answerable

    def audit_event(action: str, **data: Any) -> None:  # a refusal: rows bounded per address
        record = functools.partial(
            state.refusals.record,
            action,
            at=now,
            actor=link.actor,
            remote_addr=addr,
            link_hash=link.token_hash,
            obligation_id=link.obligation.id,
            plan_id=plan.id,
            **data,
        )
        if within is not None:
            within.deferred.append(record)
        else:
            record()

    if answer is None or not allowed:
        audit_event("portal.submit_rejected", reason="not-open")
        message = why_not or "Nhiệm vụ này không nhận báo cáo qua cổng."
        return state.pages.error(409, "Không gửi được", message, back=link.page), None
    uploads_given = [v for _, v in form.multi_items() if isinstance(v, UploadFile) and v.filename]
    if len(uploads_given) > MAX_FILES_PER_FORM:
        audit_event("portal.submit_rejected", reason="too-many-files")
        return state.pages.error(400, back=link.page), None

    staged, errors = _stage_files(state, answer, form)
    try:
        summary, raw = _check_values(answer, form, staged, errors)
        if errors:
            raise _Invalid(errors)
        pending = _Answer(link, answer, staged, raw, summary, addr, form_key)
        if within is not None:  # the caller's transaction: it retries the whole of it
            submission_id, version, replayed = _store_once(state, pending, False, within)
        else:
            submission_id, version, replayed = _store(state, pending)
    except (_Invalid, SubmissionRejected) as exc:
        uploads.discard(list(staged.values()))
        problems = _field_errors(answer, exc.errors)
        audit_event("portal.submit_rejected", fields=sorted(problems))
        return _form_again(state, link, answer, form, problems), None
    except BaseException:
        uploads.discard(list(staged.values()))
        raise
    if replayed:  # the same answer, stored meanwhile by a request racing this one
        uploads.discard(list(staged.values()))
        return receipt_redirect(link, version), None
    log.info(
        "submission %s (v%s) stored for obligation %s", submission_id, version, link.obligation.id
    )
    return receipt_redirect(link, version), submission_id


def receipt_redirect(link: OpenedLink, version: int) -> Response:
    """To the receipt of ``version`` (an explicit fragment: otherwise the browser would
    keep the form's "#gui-bao-cao")."""
    return RedirectResponse(f"{link.page}/receipt/{version}#da-nhan", status_code=303)


def _check_values(
    answer: Answer, form: FormData, staged: dict[str, uploads.StagedFile], errors: dict[str, str]
) -> tuple[str | None, dict[str, Any]]:
    """Validate the typed values (file fields count as present when a file was staged).

    Returns (summary, raw values); problems are added to ``errors``."""
    raw: dict[str, Any] = {}
    for field in answer.template.fields:
        if field.type is FieldType.file:
            raw[field.id] = ["0"] if field.id in staged else []
        else:
            value = form.get(form_field(field.id))
            raw[field.id] = value if isinstance(value, str) else ""
    # The placeholder "0" marks a staged file; the real id exists only after storing.
    probe = {k: (["1"] if v == ["0"] else v) for k, v in raw.items()}
    values, problems = validate_values(answer.template, probe)
    for field_id, message in problems.items():
        errors.setdefault(field_id, message)
    summary = None
    if answer.sub_plan:
        summary = str(values.pop(SUMMARY_FIELD, "") or "") or None
        if summary and len(summary) > SUMMARY_MAX:
            errors.setdefault(
                SUMMARY_FIELD, f"Tóm tắt dài quá {SUMMARY_MAX} ký tự; vui lòng rút gọn."
            )
    return summary, raw


@dataclass
class _Answer:
    """A checked answer waiting to be stored."""

    link: OpenedLink
    answer: Answer
    staged: dict[str, uploads.StagedFile]
    raw: dict[str, Any]
    summary: str | None
    addr: str
    form_key: str | None = None
    placed: list[Path] = dataclasses.field(default_factory=list)  # files this answer put in place

    @property
    def obligation_id(self) -> int:
        return int(self.link.obligation.id)

    @property
    def now(self) -> dt.datetime:
        return self.link.opened_at


def _store(state: PortalState, pending: _Answer) -> tuple[int, int, bool]:
    """(submission id, version, whether it was stored before under the answer's key);
    every file it placed is removed again if it fails."""
    try:
        # Answers to one obligation are written one at a time in this process; another
        # process may still race (SQLite locks no row first): then the version number
        # clashes, or SQLite refuses to upgrade a read snapshot to a write ("database is
        # locked" at once, without waiting): the whole transaction is tried again.
        with state.obligation_lock(pending.obligation_id):
            for attempt in range(1, STORE_ATTEMPTS + 1):
                try:
                    return _store_once(state, pending, retry=attempt > 1)
                except (IntegrityError, OperationalError) as exc:
                    if attempt == STORE_ATTEMPTS or not retryable(exc):
                        raise
                    log.info("obligation %s: %s, retrying", pending.obligation_id, exc.orig)
                    time.sleep(random.uniform(0.01, 0.05) * attempt)
        raise AssertionError("unreachable")
    except BaseException:
        for path in pending.placed:
            with contextlib.suppress(OSError):
                path.unlink()
        raise


def _store_once(
    state: PortalState, pending: _Answer, retry: bool, within: InTransaction | None = None
) -> tuple[int, int, bool]:
    """Store ``pending`` in a transaction of its own, or in ``within``'s, where its
    obligation was read and locked (not read again)."""
    locked = None
    if within is not None:
        locked = LockedObligation(pending.link.obligation, pending.link.plan, within.history)
    opened = nullcontext(within.session) if within is not None else state.writing()
    with opened as session:
        if retry and pending.form_key:
            # The link's session found no answer under this key; one stored since (by a
            # request racing this one) made the first try clash on it.
            first = idempotency.first_answer(session, pending.obligation_id, pending.form_key)
            if first is not None:
                return first.id, first.version, True
        file_ids: dict[str, int] = {}
        for field_id, item in pending.staged.items():
            row = uploads.place(session, item, state.files_dir, pending.now, pending.placed)
            file_ids[field_id] = row.id
        values = None
        if not pending.answer.sub_plan:
            values = {
                k: ([file_ids[k]] if k in file_ids else [] if v == [] else v)
                for k, v in pending.raw.items()
            }
        submission = record_submission(
            session,
            pending.obligation_id,
            values=values,
            summary=pending.summary,
            file_ids=list(file_ids.values()),
            source="portal",
            now=pending.now,
            actor=pending.link.actor,
            remote_addr=pending.addr,
            form_key=pending.form_key,
            locked=locked,
        )
        if pending.link.obligation.draft_saved_at is not None:
            # the answer sent replaces the draft the unit saved (portal.drafts)
            session.execute(
                delete(AnswerDraft).where(AnswerDraft.obligation_id == pending.obligation_id)
            )
        audit.record(
            session,
            "portal.submit",
            at=pending.now,
            actor=pending.link.actor,
            remote_addr=pending.addr,
            link_hash=pending.link.token_hash,
            obligation_id=pending.obligation_id,
            plan_id=pending.link.plan.id,
            submission_id=submission.id,
            version=submission.version,
            files=[{"id": i, "sha256": pending.staged[k].sha256} for k, i in file_ids.items()],
        )
        return submission.id, submission.version, False


def _field_errors(answer: Answer, errors: dict[str, str]) -> dict[str, str]:
    """Map the engine's error keys onto the form's fields (unknown keys go to the form)."""
    known = {f.id for f in answer.fields}
    out: dict[str, str] = {}
    for key, message in errors.items():
        target = SUB_PLAN_ERROR_FIELDS.get(key, key) if answer.sub_plan else key
        if key == "files" and not answer.sub_plan:
            target = answer.file_fields[0].id if answer.file_fields else FORM_ERROR
        out[target if target in known else FORM_ERROR] = message
    return out


def _form_again(
    state: PortalState, link: OpenedLink, answer: Answer, form: FormData, errors: dict[str, str]
) -> Response:
    return obligation_response(
        state, link, status_code=422, values=_text_values(answer, form), errors=errors
    )
