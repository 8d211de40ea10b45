"""The register of report numbers: each issuing body numbers its reports per year.

"Số: 125/BC-CAH": numbers start at 1 each year, follow one another without a gap and are
never given twice (Nghị định 30: the number restarts each year; below 10 with a leading
zero). A number is taken in the transaction that approves the report, as max + 1 of the
register, so a rolled-back approval leaves no gap; two approvals at once that read the
same max clash on the unique constraint, and the loser's whole transaction is tried again
(:func:`retrying`). On PostgreSQL an advisory lock per
(body, year) makes them wait for each other instead.
"""

from __future__ import annotations

import datetime as dt
import time
import zlib
from collections.abc import Callable
from typing import TypeVar

from sqlalchemy import func, select, text
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session

from engine.store.models import ReportNumber

T = TypeVar("T")


def number_text(number: int, symbol: str) -> str:
    """'05/BC-CAH', '125/BC-CAH' (a leading zero below 10); a Party body's symbol
    ('BC/HU', engine.party) after a hyphen: '05-BC/HU' (Hướng dẫn 36-HD/VPTW)."""
    return f"{number:02d}-{symbol}" if "/" in symbol else f"{number:02d}/{symbol}"


def take_number(
    session: Session,
    *,
    issuer_id: str,
    year: int,
    symbol: str,
    report_id: int,
    by: str,
    now: dt.datetime,
) -> ReportNumber:
    """The next number of ``issuer_id``'s register for ``year``, given to ``report_id``
    (the one it already holds when it has one), flushed in the caller's transaction."""
    held = session.scalar(select(ReportNumber).where(ReportNumber.report_id == report_id))
    if held is not None:
        return held
    if session.get_bind().dialect.name == "postgresql":
        key = zlib.crc32(f"{issuer_id}|{year}".encode())
        session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": key})
    last = session.scalar(
        select(func.max(ReportNumber.number)).where(
            ReportNumber.issuer_id == issuer_id, ReportNumber.year == year
        )
    )
    row = ReportNumber(
        issuer_id=issuer_id,
        year=year,
        number=(last or 0) + 1,
        symbol=symbol,
        report_id=report_id,
        assigned_at=now,
        assigned_by=by,
    )
    session.add(row)
    session.flush()
    return row


def register_of(session: Session, issuer_id: str, year: int) -> list[ReportNumber]:
    """The register of one body and year, in number order."""
    return list(
        session.scalars(
            select(ReportNumber)
            .where(ReportNumber.issuer_id == issuer_id, ReportNumber.year == year)
            .order_by(ReportNumber.number)
        )
    )


def retrying(url: str, work: Callable[[Session], T], attempts: int = 8) -> T:
    """``work`` in a transaction of its own, tried again when it loses a race for a
    number (the unique constraint) or, on SQLite, for the write lock."""
    from engine.store.db import session_scope

    for attempt in range(1, attempts + 1):
        try:
            with session_scope(url) as session:
                return work(session)
        except (IntegrityError, OperationalError) as exc:
            text = str(getattr(exc, "orig", exc)).lower()
            clash = isinstance(exc, IntegrityError) or "locked" in text or "busy" in text
            if not clash or attempt == attempts:
                raise
            time.sleep(0.01 * attempt)
    raise AssertionError("unreachable")  # pragma: no cover
