"""Shared set-up of the registry-history tests (no tests here): a report sent and taken
in, a change set applied at a moment.

``tests/data/registry_history/``: two ministries (sample data) that merge on 1/3/2025,
the water office moving to the new ministry and renamed (``RH_CHANGE``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from engine.consolidation import consolidate
from engine.lifecycle import intake, record_submission
from engine.registry_history import apply_source
from engine.store import session_scope
from engine.yamlsource import read
from tests.lifecycle_factory import DEFINITIONS, lc_settings, obligation

CALENDAR = DEFINITIONS / "calendar_vn.yaml"
RH = Path(__file__).parent / "data" / "registry_history"
RH_FILES = (RH / "registry.yaml", RH / "plan.yaml", CALENDAR)
RH_CHANGE = RH / "changes" / "change_2025_03.yaml"
RH_PLAN, RH_REGISTRY = "rh-ke-hoach-bo", "rh-trung-uong"
WATER, SEA = "cuc-tai-nguyen-nuoc", "cuc-bien-dao"
WATER_2024 = "Cục Quản lý tài nguyên nước (thử)"
WATER_2025 = "Cục Quản lý tài nguyên nước (thuộc Bộ mới, thử)"


def send_report(
    url: str,
    plan_id: str,
    unit: str,
    cycle: str,
    values: Mapping[str, Any],
    moment: dt.datetime,
    deliverable: str = "bao-cao-nam",
) -> int:
    """``unit``'s answer to one obligation, sent and taken in at ``moment``; its id."""
    with session_scope(url) as session:
        target = obligation(session, unit, deliverable, cycle, plan_id)
        submission = record_submission(session, target.id, values=values, now=moment)
        intake(session, submission.id, now=moment)
        return submission.id


def apply_change(url: str, path: Path, moment: dt.datetime) -> Any:
    """The change set of ``path`` applied at ``moment`` (engine.registry_history)."""
    with session_scope(url) as session:
        return apply_source(session, read(path), moment)


def consolidate_at(
    url: str, plan_id: str, cycle: str, consolidation_id: str, moment: dt.datetime, home: Path
) -> Any:
    """One cycle consolidated at ``moment``, its files under ``home`` (a draft)."""
    with session_scope(url) as session:
        return consolidate(
            session, plan_id, cycle, consolidation_id, now=moment, settings=lc_settings(home)
        )
