"""The store versions definitions by content on SQLite and PostgreSQL."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import func, inspect, select

from engine.loader import load
from engine.repository import (
    current_plan,
    current_registry,
    list_plan_versions,
    plan_definition,
    plan_version,
    store_catalog,
)
from engine.store import connect, migrate, session_scope
from engine.store.models import PlanVersion, RegistryUnit, RegistryVersion

DATA = Path(__file__).parent / "data" / "loader"
FILES = [DATA / "base_plan.yaml", DATA / "base_registry.yaml"]


def _store(url: str, files) -> list:
    catalog = load(files, siblings=False)
    with session_scope(url) as session:
        return store_catalog(session, catalog)


def test_migrations_create_every_table_and_are_idempotent(db_url: str):
    migrate(db_url)
    migrate(db_url)
    tables = set(inspect(connect(db_url)).get_table_names())
    assert {
        "registry_versions",
        "registry_units",
        "plan_versions",
        "calendar_versions",
        "plan_instances",
        "cycles",
        "obligations",
        "submissions",
        "files",
        "consolidated_reports",
        "outbox",
        "audit_events",
        "scheduler_state",
    } <= tables


def test_loading_the_same_plan_twice_creates_one_version(db_url: str):
    migrate(db_url)
    first = _store(db_url, FILES)
    second = _store(db_url, FILES)
    assert [r.created for r in first] == [True, True]
    assert [r.created for r in second] == [False, False]
    with session_scope(db_url) as session:
        assert session.scalar(select(func.count()).select_from(PlanVersion)) == 1
        assert session.scalar(select(func.count()).select_from(RegistryVersion)) == 1
        assert session.scalar(select(func.count()).select_from(RegistryUnit)) == 7


def test_comments_alone_do_not_make_a_version(db_url: str, tmp_path: Path):
    migrate(db_url)
    _store(db_url, FILES)
    commented = tmp_path / "base_plan.yaml"
    commented.write_text(
        "# a new comment\n" + FILES[0].read_text(encoding="utf-8"), encoding="utf-8"
    )
    results = _store(db_url, [commented, FILES[1]])
    assert not any(r.created for r in results)


def test_a_default_spelled_out_is_not_a_new_version(db_url: str, tmp_path: Path):
    """close_after_days: 60 is the default: writing it out changes nothing; 61 does."""
    migrate(db_url)
    _store(db_url, FILES)
    text = FILES[0].read_text(encoding="utf-8")
    assert "close_after_days" not in text
    spelled = tmp_path / "base_plan.yaml"
    spelled.write_text(text + "close_after_days: 60\n", encoding="utf-8")
    assert not any(r.created for r in _store(db_url, [spelled, FILES[1]]))
    spelled.write_text(text + "close_after_days: 61\n", encoding="utf-8")
    created = {r.kind: r.created for r in _store(db_url, [spelled, FILES[1]])}
    assert created == {"plan": True, "registry": False}


def test_changed_content_makes_a_new_version_and_old_ones_stay_readable(
    db_url: str, tmp_path: Path
):
    migrate(db_url)
    _store(db_url, FILES)
    changed = tmp_path / "base_plan.yaml"
    changed.write_text(
        FILES[0]
        .read_text(encoding="utf-8")
        .replace("Kế hoạch thử nghiệm", "Kế hoạch thử nghiệm (sửa đổi)"),
        encoding="utf-8",
    )
    results = _store(db_url, [changed, FILES[1]])
    plan_result = next(r for r in results if r.kind == "plan")
    assert plan_result.created and plan_result.version == 2
    with session_scope(db_url) as session:
        assert current_plan(session, "ke-hoach-thu").document.summary.endswith("(sửa đổi)")
        old = plan_definition(plan_version(session, "ke-hoach-thu", version=1))
        assert old.document.summary == "Kế hoạch thử nghiệm"
        versions = list_plan_versions(session)
        assert [(v.version, v.current) for v in versions] == [(1, False), (2, True)]
        assert "sửa đổi" in versions[1].source_text
        registry = current_registry(session, "test-tinh")
        assert registry is not None and registry.units[1].name == "Công an tỉnh"


def test_reloading_an_older_content_makes_it_current_again(db_url: str, tmp_path: Path):
    migrate(db_url)
    _store(db_url, FILES)
    changed = tmp_path / "base_plan.yaml"
    changed.write_text(
        FILES[0].read_text(encoding="utf-8").replace("12/KH-UBND", "13/KH-UBND"), encoding="utf-8"
    )
    _store(db_url, [changed, FILES[1]])
    results = _store(db_url, FILES)
    assert next(r for r in results if r.kind == "plan").version == 1
    with session_scope(db_url) as session:
        assert current_plan(session, "ke-hoach-thu").document.number == "12/KH-UBND"


def test_sent_bytes_are_stored_with_lz4_on_postgresql(postgres_url: str):
    """The dispatcher stores ~11 KiB per sent message: lz4 takes a quarter less of the
    server's CPU than pglz for it (migration 0020)."""
    migrate(postgres_url)
    with connect(postgres_url).connect() as connection:
        method = connection.exec_driver_sql(
            "SELECT attcompression FROM pg_attribute"
            " WHERE attrelid = 'outbox'::regclass AND attname = 'raw'"
        ).scalar()
    assert method == "l"
