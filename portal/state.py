"""What every request needs: settings, database, clock, limits, keys, pages."""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from engine.clock import Clock
from engine.config import Settings
from engine.store.db import connect
from portal import csrf, writes
from portal.audit import RefusalAudit
from portal.pages import Pages
from portal.ratelimit import Limiters

# Multipart overhead allowed on top of the files themselves (fields, boundaries).
FORM_OVERHEAD = 1024 * 1024
MAX_FILES_PER_FORM = 10


def retryable(exc: Exception) -> bool:
    """A clash another try of the transaction can resolve: a duplicate version (unique
    constraint), or SQLite refusing a lock ("database is locked" / "busy")."""
    if isinstance(exc, IntegrityError):
        return True
    text = str(getattr(exc, "orig", exc)).lower()
    return "locked" in text or "busy" in text


@dataclass
class PortalState:
    conf: Settings
    db_url: str
    clock: Clock
    limiters: Limiters
    link_max_age: dt.timedelta | None
    files_dir: Path
    handoff: Callable[[int], None]
    pages: Pages = field(default_factory=Pages)
    csrf_key: bytes = b""
    secure_cookies: bool = False

    def __post_init__(self) -> None:
        self._sessions = sessionmaker(connect(self.db_url), expire_on_commit=False)
        self._locks = [threading.Lock() for _ in range(64)]
        self.refusals = RefusalAudit(self.limiters.refusal_audit, self.writing)

    def obligation_lock(self, obligation_id: int) -> threading.Lock:
        """One of 64 striped locks: answers to one obligation never race in this process."""
        return self._locks[obligation_id % len(self._locks)]

    @property
    def max_file_bytes(self) -> int:
        return int(self.conf.portal_max_upload_mb * 1024 * 1024)

    @property
    def max_body_bytes(self) -> int:
        """``portal_max_upload_mb`` bounds one submission's files together, plus the form."""
        return self.max_file_bytes + FORM_OVERHEAD

    def now(self) -> dt.datetime:
        return self.clock.now()

    @contextmanager
    def reading(self) -> Iterator[Session]:
        """A session that is always rolled back: GET handlers can never write."""
        with self._sessions() as session:
            try:
                yield session
            finally:
                session.rollback()

    @contextmanager
    def writing(self) -> Iterator[Session]:
        """One write transaction (on SQLite it takes the write lock first: portal.writes)."""
        with writes.writing(self.db_url) as session:
            yield session

    def form_token(self, link_token: str, nonce: str) -> str:
        return csrf.form_token(self.csrf_key, link_token, nonce)
