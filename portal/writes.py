"""Write transactions that take SQLite's write lock up front.

A deferred SQLite transaction that reads first and writes later cannot wait for the
write lock when another connection wrote in between: SQLite answers "database is
locked" at once (the busy timeout does not apply to a snapshot upgrade). The
portal's writes (a submission, the inline intake, audit rows) all read first, so on
SQLite they run on an engine whose transactions start with ``BEGIN IMMEDIATE``:
writers queue on the busy timeout instead of failing, readers are never blocked
(WAL). Other databases use the shared engine (row locks do the same there).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import Session, sessionmaker

from engine.store.db import connect
from engine.store.json_codec import JSON_CODEC

BUSY_TIMEOUT_MS = 30_000


def _pragmas(dbapi_connection, _record) -> None:
    dbapi_connection.isolation_level = None  # no implicit BEGIN: see _begin
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
    cursor.close()


def _begin(connection) -> None:
    connection.exec_driver_sql("BEGIN IMMEDIATE")


@lru_cache(maxsize=8)
def write_engine(url: str) -> Engine:
    if not url.startswith("sqlite"):
        return connect(url)
    path = url.split(":///", 1)[-1]
    if path and path != ":memory:":
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, connect_args={"timeout": BUSY_TIMEOUT_MS / 1000}, **JSON_CODEC)
    event.listen(engine, "connect", _pragmas)
    event.listen(engine, "begin", _begin)
    return engine


@lru_cache(maxsize=8)
def _factory(url: str) -> sessionmaker[Session]:
    return sessionmaker(write_engine(url), expire_on_commit=False)


@contextmanager
def writing(url: str) -> Iterator[Session]:
    """One write transaction: commit on success, roll back on any error."""
    with _factory(url)() as session, session.begin():
        yield session
