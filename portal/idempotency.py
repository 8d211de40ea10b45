"""The idempotency key of a posted answer: one rendering of the form, and what was sent.

A replayed POST (a double click, a browser sending the form again, a captured request
sent again) carries the same key as the first, and gets the first one's receipt
instead of a new version. The key is a digest of the form id in the CSRF field (new
each time the form is rendered, bound by its MAC to the link and the browser,
:mod:`portal.csrf`) and of every field posted, files by content. So a reloaded form
sends a new version even with the same content, and so does a correction sent from
the same page (a form the browser kept): only the same form with the same answer is
one answer. The key is stored with the submission, unique per obligation.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from sqlalchemy import Row, bindparam, select
from sqlalchemy.orm import Session
from starlette.datastructures import FormData, UploadFile

from engine.store.models import Submission
from portal import csrf

_submissions = Submission.__table__
_FIRST = select(_submissions.c.id, _submissions.c.version).where(
    _submissions.c.obligation_id == bindparam("obligation_id"),
    _submissions.c.form_key == bindparam("form_key"),
)


def form_key(csrf_field: str, form: FormData) -> str:
    """The key of an answer posted with ``csrf_field`` (already checked) and ``form``."""
    items: list[tuple[str, str, str, str]] = []
    for name, value in form.multi_items():
        if name == csrf.FIELD:
            continue
        if isinstance(value, UploadFile):
            items.append((name, "file", value.filename or "", _content_digest(value)))
        else:
            items.append((name, "text", value, ""))
    digest = hashlib.sha256(csrf.form_id(csrf_field).encode("utf-8", "replace") + b"\0")
    for item in sorted(items):
        digest.update(json.dumps(item, ensure_ascii=False).encode("utf-8", "replace") + b"\n")
    return digest.hexdigest()


def _content_digest(upload: UploadFile) -> str:
    file = upload.file
    file.seek(0)
    digest = hashlib.sha256()
    while chunk := file.read(1 << 20):
        digest.update(chunk)
    file.seek(0)
    return digest.hexdigest()


def first_answer(session: Session, obligation_id: int, key: str) -> Row[Any, Any] | None:
    """(id, version) of the submission stored under ``key``, or None."""
    return session.execute(_FIRST, {"obligation_id": obligation_id, "form_key": key}).first()
