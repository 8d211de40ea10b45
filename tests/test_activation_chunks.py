"""Activation writes and mails its obligations in chunks (bounded memory, issue 14): a
store activated two rows at a time is the store activated in one go.

The figures (peak memory at 3,500 and 35,000 units) are benchmarks/bench_memory.py's.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from sqlalchemy import select

from engine.calendar import TZ
from engine.lifecycle import activate, activation
from engine.loader import load
from engine.repository import store_catalog
from engine.store.db import migrate, session_scope
from engine.store.models import AuditEvent, Obligation, OutboxMessage

ROOT = Path(__file__).resolve().parents[1]
FILES = [
    ROOT / "plan_definitions" / "registry_cao_bang.yaml",
    ROOT / "plan_definitions" / "calendar_vn.yaml",
    ROOT / "plan_definitions" / "cao_bang_2720_kh_ubnd.yaml",
    ROOT / "plan_definitions" / "ha_lang_pccc_2022.yaml",
]
NOW = dt.datetime(2023, 8, 14, 9, 0, tzinfo=TZ)


def activated(url: str) -> dict[str, object]:
    migrate(url)
    with session_scope(url) as session:
        store_catalog(session, load(FILES))
    with session_scope(url) as session:
        result = activate(session, "ha-lang-pccc-2022", now=NOW, years=[2023])
    with session_scope(url) as session:
        return {
            "result": (result.created, result.queued, result.transferred, result.units),
            "obligations": sorted(
                (o.cycle_id, o.unit_id, o.deliverable_id, o.due_date, o.next_sweep_on, o.status)
                for o in session.scalars(select(Obligation))
            ),
            "outbox": sorted(
                (m.idempotency_key, m.kind, tuple(m.to_addrs), m.unit_id)
                for m in session.scalars(select(OutboxMessage))
            ),
            "audit": sorted(
                (a.action, sorted((a.data or {}).get("merged", {}).items()))
                for a in session.scalars(select(AuditEvent))
            ),
        }


def test_two_rows_a_chunk_writes_what_one_chunk_writes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    whole = activated(f"sqlite:///{tmp_path / 'whole.sqlite'}")
    monkeypatch.setattr(activation, "CHUNK", 2)
    chunked = activated(f"sqlite:///{tmp_path / 'chunked.sqlite'}")
    assert whole["result"][0] > 10 and whole["result"][1] > 10  # many chunks of two
    assert chunked == whole
