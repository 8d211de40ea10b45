"""The units' stored answers as a consolidation may count them.

A row written before ``engine.values`` checked every value, or edited in the database,
may hold Infinity, NaN, a number too large to print, or a control character that a
.docx cannot hold. Such a value must not stop the district's report: it is left out
(or cleaned), and said so, per unit and field, in Vietnamese; the rest consolidates.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from engine.context import PlanContext
from engine.schema import ReportTemplate
from engine.values import stored_values

log = logging.getLogger(__name__)


def usable_reports(
    ctx: PlanContext, template: ReportTemplate, reports: Sequence[tuple[str, Any]]
) -> tuple[list[tuple[str, dict[str, Any]]], list[str]]:
    """(unit id, values that can be shown and counted) per report, and one Vietnamese
    line per value left out or cleaned ("<unit>: trường '<label>' <why>")."""
    usable: list[tuple[str, dict[str, Any]]] = []
    problems: list[str] = []
    for unit_id, values in reports:
        clean, found = stored_values(template, values)
        usable.append((unit_id, clean))
        name = ctx.unit_name(unit_id)
        for label, why in found:
            where = f"trường '{label}' " if label else ""
            problems.append(f"{name}: {where}{why}")
    for line in problems:
        log.warning("%s %s: %s", ctx.plan_id, template.id, line)
    return usable, problems
