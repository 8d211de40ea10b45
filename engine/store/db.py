"""Database connection, sessions and Alembic migrations."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import Session, sessionmaker

from engine.faults import killpoint

MIGRATIONS = Path(__file__).parent / "migrations"


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    # pysqlite's own transaction handling is kept on purpose: it begins a transaction
    # at the first write, so a transaction that reads and then writes never has to
    # upgrade a read snapshot (which fails at once under concurrent writers in WAL
    # mode, busy_timeout or not). The price: a SAVEPOINT that opens a transaction
    # commits on RELEASE, so code paths on SQLite never use begin_nested() (the
    # outbox uses INSERT ... ON CONFLICT instead). See docs/DECISIONS.md.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


@lru_cache(maxsize=8)
def connect(url: str) -> Engine:
    """One Engine per URL per process; SQLite files get WAL and a busy timeout; JSON
    columns are read and written by engine.store.json_codec."""
    from engine.store.json_codec import JSON_CODEC

    if url.startswith("sqlite"):
        path = url.split(":///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": 30}, **JSON_CODEC)
        event.listen(engine, "connect", _sqlite_pragmas)
    else:
        engine = create_engine(url, pool_pre_ping=True, **JSON_CODEC)
    return engine


def _alembic_config(url: str):
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def migrate(url: str) -> None:
    """Bring the database at ``url`` to the newest schema (idempotent)."""
    from alembic import command

    engine = connect(url)
    with engine.begin() as connection:
        cfg = _alembic_config(url)
        cfg.attributes["connection"] = connection
        command.upgrade(cfg, "head")


@contextmanager
def session_scope(url: str) -> Iterator[Session]:
    """One transaction: commit on success, roll back on any error."""
    factory = sessionmaker(connect(url), expire_on_commit=False)
    with factory() as session:
        with session.begin():
            yield session
            killpoint("before_commit")
        killpoint("after_commit")
