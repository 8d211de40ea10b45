"""Database connection, sessions and Alembic migrations."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.orm import Session, sessionmaker

from engine.faults import killpoint
from engine.store.models import Base

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


def schema_revisions(connection: Connection) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(the revisions the database is at, the newest this code knows): equal when migrated."""
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    heads = ScriptDirectory.from_config(_alembic_config("sqlite://")).get_heads()
    current = MigrationContext.configure(connection).get_current_heads()
    return tuple(current), tuple(heads)


# The audit log is append-only where the database can enforce it: UPDATE, DELETE (and
# TRUNCATE) of audit_events raise, and a chain head only moves forward. Someone with the
# rights to drop a trigger can still edit rows; the hash chain then shows it
# (engine.audit_verify). Installed by migration 0004_audit_chain and by
# metadata.create_all. A migration that recreates audit_events on SQLite (batch mode)
# drops its triggers and must install them again.
_REFUSE = "audit log is append-only"
_SQLITE_GUARDS = [
    f"CREATE TRIGGER IF NOT EXISTS audit_events_no_update BEFORE UPDATE ON audit_events "
    f"BEGIN SELECT RAISE(ABORT, '{_REFUSE}: UPDATE refused'); END",
    f"CREATE TRIGGER IF NOT EXISTS audit_events_no_delete BEFORE DELETE ON audit_events "
    f"BEGIN SELECT RAISE(ABORT, '{_REFUSE}: DELETE refused'); END",
    f"CREATE TRIGGER IF NOT EXISTS audit_chain_heads_no_delete BEFORE DELETE ON "
    f"audit_chain_heads BEGIN SELECT RAISE(ABORT, '{_REFUSE}: DELETE refused'); END",
    f"CREATE TRIGGER IF NOT EXISTS audit_chain_heads_forward BEFORE UPDATE ON "
    f"audit_chain_heads WHEN NEW.seq < OLD.seq OR NEW.chain <> OLD.chain "
    f"BEGIN SELECT RAISE(ABORT, '{_REFUSE}: a chain head only moves forward'); END",
]
_POSTGRES_GUARDS = [
    "CREATE OR REPLACE FUNCTION kehoach_audit_refuse() RETURNS trigger LANGUAGE plpgsql AS "
    f"$$ BEGIN RAISE EXCEPTION USING MESSAGE = '{_REFUSE}: ' || TG_OP || ' refused'; END $$",
    "CREATE OR REPLACE FUNCTION kehoach_audit_head_forward() RETURNS trigger LANGUAGE plpgsql "
    "AS $$ BEGIN IF NEW.seq < OLD.seq OR NEW.chain <> OLD.chain THEN "
    f"RAISE EXCEPTION '{_REFUSE}: a chain head only moves forward'; END IF; RETURN NEW; END $$",
    "CREATE OR REPLACE TRIGGER audit_events_append_only BEFORE UPDATE OR DELETE ON "
    "audit_events FOR EACH ROW EXECUTE FUNCTION kehoach_audit_refuse()",
    "CREATE OR REPLACE TRIGGER audit_events_no_truncate BEFORE TRUNCATE ON audit_events "
    "FOR EACH STATEMENT EXECUTE FUNCTION kehoach_audit_refuse()",
    "CREATE OR REPLACE TRIGGER audit_chain_heads_no_delete BEFORE DELETE ON "
    "audit_chain_heads FOR EACH ROW EXECUTE FUNCTION kehoach_audit_refuse()",
    "CREATE OR REPLACE TRIGGER audit_chain_heads_no_truncate BEFORE TRUNCATE ON "
    "audit_chain_heads FOR EACH STATEMENT EXECUTE FUNCTION kehoach_audit_refuse()",
    "CREATE OR REPLACE TRIGGER audit_chain_heads_forward BEFORE UPDATE ON audit_chain_heads "
    "FOR EACH ROW EXECUTE FUNCTION kehoach_audit_head_forward()",
]
_SQLITE_TRIGGERS = [
    "audit_events_no_update",
    "audit_events_no_delete",
    "audit_chain_heads_no_delete",
    "audit_chain_heads_forward",
]
_POSTGRES_TRIGGERS = [
    ("audit_events_append_only", "audit_events"),
    ("audit_events_no_truncate", "audit_events"),
    ("audit_chain_heads_no_delete", "audit_chain_heads"),
    ("audit_chain_heads_no_truncate", "audit_chain_heads"),
    ("audit_chain_heads_forward", "audit_chain_heads"),
]


def install_audit_guards(connection: Connection) -> None:
    """The triggers that refuse UPDATE and DELETE of the audit log (idempotent)."""
    name = connection.dialect.name
    for statement in _POSTGRES_GUARDS if name == "postgresql" else _SQLITE_GUARDS:
        if name in ("postgresql", "sqlite"):
            connection.exec_driver_sql(statement)


def drop_audit_guards(connection: Connection) -> None:
    """Remove those triggers (a downgrade; tests that play an attacker with DB rights)."""
    if connection.dialect.name == "postgresql":
        for trigger, table in _POSTGRES_TRIGGERS:
            connection.exec_driver_sql(f"DROP TRIGGER IF EXISTS {trigger} ON {table}")
        connection.exec_driver_sql("DROP FUNCTION IF EXISTS kehoach_audit_refuse()")
        connection.exec_driver_sql("DROP FUNCTION IF EXISTS kehoach_audit_head_forward()")
    elif connection.dialect.name == "sqlite":
        for trigger in _SQLITE_TRIGGERS:
            connection.exec_driver_sql(f"DROP TRIGGER IF EXISTS {trigger}")


@event.listens_for(Base.metadata, "after_create")
def _guards_after_create_all(_metadata, connection: Connection, **_kw) -> None:
    install_audit_guards(connection)


@contextmanager
def session_scope(url: str) -> Iterator[Session]:
    """One transaction: commit on success, roll back on any error."""
    factory = sessionmaker(connect(url), expire_on_commit=False)
    with factory() as session:
        with session.begin():
            yield session
            killpoint("before_commit")
        killpoint("after_commit")
