"""The transactional outbox: every email is a row written with the change that causes it.

A state change that mails a unit (an obligation marked overdue, a report returned)
calls :func:`enqueue_for_obligation` in the same session, so either both the change
and its email are committed or neither is. Choosing the recipients, building the
template context and the idempotency key are domain decisions, made here in engine/;
notifications/ renders and delivers the rows later. The row's idempotency key makes
re-running a flow harmless and its Message-ID is derived from that key, so a message
that is ever sent twice carries the same Message-ID.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any, NamedTuple, cast

from sqlalchemy import Table, select
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from engine.config import Settings
from engine.config import settings as default_settings
from engine.outbox.context import ContextBuilder, Prepared
from engine.outbox.keys import clean_addresses, json_safe, message_id_for, thread_id_for
from engine.outbox.kinds import MailKind, mail_kind
from engine.states import OutboxStatus
from engine.store.models import Obligation, OutboxMessage, utcnow


class Enqueued(NamedTuple):
    """What :func:`enqueue` did: the key's row, and whether this call inserted it."""

    row: OutboxMessage
    inserted: bool


def enqueue(
    session: Session,
    *,
    kind: MailKind | str,
    idempotency_key: str,
    to_addrs: Any,
    context: dict[str, Any],
    obligation_id: int | None = None,
    plan_id: str | None = None,
    unit_id: str | None = None,
    thread_key: str | None = None,
    cc_addrs: Any = (),
    now: dt.datetime | None = None,
    settings: Settings | None = None,
) -> Enqueued:
    """Add an outbox row in the caller's transaction, once per ``idempotency_key``.

    If a row with the key exists (committed earlier, or by a flow racing this one),
    that row is returned with ``inserted=False`` and nothing is inserted. On SQLite and
    PostgreSQL it is one ``INSERT ... ON CONFLICT DO NOTHING RETURNING`` (the new row),
    and one SELECT more only when the key was taken; elsewhere a SAVEPOINT. The
    Message-ID is derived from the key; ``thread_id`` is the Message-ID of
    ``thread_key``'s message, by default the obligation's assignment, so every mail
    about one obligation threads together (``thread_key=""``: no thread, e.g. a notice
    to the administrator).
    """
    kind = mail_kind(kind)
    conf = settings or default_settings()
    now = now or utcnow()
    message_id = message_id_for(idempotency_key, conf)
    values = dict(
        idempotency_key=idempotency_key,
        message_id=message_id,
        thread_id=thread_id_for(thread_key, obligation_id, conf),
        kind=kind,
        obligation_id=obligation_id,
        plan_id=plan_id,
        unit_id=unit_id,
        to_addrs=clean_addresses(to_addrs),
        cc_addrs=clean_addresses(cc_addrs),
        context=json_safe(context),
        status=OutboxStatus.PENDING,
        attempts=0,
        next_attempt_at=now,
        created_at=now,
    )
    dialect = session.get_bind().dialect.name
    if dialect in ("sqlite", "postgresql"):
        # INSERT ... ON CONFLICT DO NOTHING: when a concurrent flow inserted the same
        # key, PostgreSQL waits for it and skips the row, SQLite serialises writers;
        # either way no error and the caller's transaction stays intact. (Not a
        # SAVEPOINT: with pysqlite's default transaction handling a SAVEPOINT that
        # opens the transaction commits on RELEASE, escaping the caller's rollback.)
        # RETURNING the entity gives the new row, or nothing when the key was taken.
        insert = sqlite_insert if dialect == "sqlite" else postgresql_insert
        row = session.scalar(
            insert(OutboxMessage)
            .values(**values)
            .on_conflict_do_nothing(index_elements=["idempotency_key"])
            .returning(OutboxMessage)
        )
        if row is not None:
            return Enqueued(row, True)
        return Enqueued(_by_key(session, idempotency_key), False)
    # Other databases: a SAVEPOINT keeps the caller's transaction usable when the
    # unique constraint fires; only the savepoint rolls back.
    existing = session.scalar(
        select(OutboxMessage).where(OutboxMessage.idempotency_key == idempotency_key)
    )
    if existing is not None:
        return Enqueued(existing, False)
    row = OutboxMessage(**values)
    try:
        with session.begin_nested():
            session.add(row)
    except IntegrityError:
        return Enqueued(_by_key(session, idempotency_key), False)
    return Enqueued(row, True)


def _by_key(session: Session, idempotency_key: str) -> OutboxMessage:
    row = session.scalar(
        select(OutboxMessage).where(OutboxMessage.idempotency_key == idempotency_key)
    )
    if row is None:  # the conflict was on something else (e.g. a foreign key)
        raise LookupError(f"outbox row {idempotency_key!r} was neither inserted nor found")
    return row


def enqueue_for_obligation(
    session: Session,
    obligation: Obligation,
    kind: MailKind | str,
    step: str = "",
    extra: dict[str, Any] | None = None,
    now: dt.datetime | None = None,
    settings: Settings | None = None,
) -> OutboxMessage | None:
    """Build the whole template context for ``obligation`` from the DB and enqueue it.

    Key: ``obl:{obligation.id}:{kind}:{step}``. ``step`` tells repeated kinds apart:
    days before the deadline for a reminder, the submission version for a receipt,
    the ISO week for a digest. ``extra`` is merged into the context (e.g.
    ``{"reason": ...}`` for ``returned``, ``{"document_path": ...}`` for
    ``consolidated``).
    """
    conf = settings or default_settings()
    now = now or utcnow()
    builder = ContextBuilder(session, conf, now, whole_registry=False)
    item = builder.prepare(obligation, kind, step, extra)
    if not alive(item):
        return None  # never mail a unit outside its validity (engine.successors)
    return _enqueue_item(session, item, now, conf).row


def alive(item: Any) -> bool:
    """Whether the unit an email is for exists on the day it is queued: a unit outside
    its validity (abolished, not yet created) gets no email and no link."""
    unit = item.context.get("unit") or {}
    return bool(unit.get("valid", True))


def _enqueue_item(session: Session, item: Any, now: dt.datetime, conf: Settings) -> Enqueued:
    """:func:`enqueue` of a prepared item (``ContextBuilder.prepare``)."""
    return enqueue(
        session,
        kind=item.kind,
        idempotency_key=item.key,
        to_addrs=item.to_addrs,
        cc_addrs=item.cc_addrs,
        context=item.context,
        obligation_id=item.obligation_id,
        plan_id=item.plan_id,
        unit_id=item.unit_id,
        thread_key=item.thread_key,
        now=now,
        settings=conf,
    )


def enqueue_many_for_obligations(
    session: Session,
    obligations: Iterable[Obligation],
    kind: MailKind | str,
    step: str = "",
    extra: dict[str, Any] | None = None,
    now: dt.datetime | None = None,
    settings: Settings | None = None,
    whole_registry: bool = True,
    builder: ContextBuilder | None = None,
) -> list[str]:
    """:func:`enqueue_for_obligation` for many obligations at once; same keys, same rows.

    Contexts share one :class:`ContextBuilder` and rows go in with multi-row
    ``INSERT ... ON CONFLICT DO NOTHING``. Returns the keys of the rows that were
    new (keys already queued are skipped, as in the single form). ``whole_registry``:
    read every unit at once (many emails) or those each email names (a few); ``builder``
    (with its caches) is the caller's when it queues in chunks.
    """
    kind = mail_kind(kind)
    conf = builder.conf if builder else settings or default_settings()
    now = now or utcnow()
    builder = builder or ContextBuilder(session, conf, now, whole_registry=whole_registry)
    obligations = list(obligations)
    builder.prefetch_units(obligations)
    if kind is MailKind.RECEIPT and len(obligations) > 1:
        builder.prefetch_submissions(obligations)
    items = [i for o in obligations if alive(i := builder.prepare(o, kind, step, extra))]
    dialect = session.get_bind().dialect.name
    if dialect not in ("sqlite", "postgresql"):
        return [i.key for i in items if _enqueue_item(session, i, now, conf).inserted]
    insert = sqlite_insert if dialect == "sqlite" else postgresql_insert
    table = cast(Table, OutboxMessage.__table__)
    if not items:
        return []
    # executemany with RETURNING: SQLAlchemy batches it ("insertmanyvalues") with
    # one cached compiled statement, unlike a huge multi-VALUES literal.
    return list(
        session.scalars(
            insert(table)
            .on_conflict_do_nothing(index_elements=["idempotency_key"])
            .returning(table.c.idempotency_key),
            [_row_values(item, now, conf) for item in items],
        )
    )


def _row_values(item: Prepared, now: dt.datetime, conf: Settings) -> dict[str, Any]:
    return {
        "idempotency_key": item.key,
        "message_id": message_id_for(item.key, conf),
        "thread_id": thread_id_for(item.thread_key, item.obligation_id, conf),
        "kind": item.kind,
        "obligation_id": item.obligation_id,
        "plan_id": item.plan_id,
        "unit_id": item.unit_id,
        "to_addrs": clean_addresses(item.to_addrs),
        "cc_addrs": clean_addresses(item.cc_addrs),
        "context": json_safe(item.context),
        "status": OutboxStatus.PENDING,
        "attempts": 0,
        "next_attempt_at": now,
        "created_at": now,
    }
