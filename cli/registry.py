"""``kehoach registry apply CHANGE.yaml …`` and ``kehoach registry history UNIT``.

A change set (``kind: registry-change``, engine.registry_history) is checked against the
registry as it stands and applied whole or not at all: every file given goes in one
transaction, so one refused file leaves the store as it was.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from cli.common import EXIT_OK, database_url, out
from engine.errors import DefinitionError, NotFound, Problem
from engine.vntext import short_date


def _sources(files: list[str]):
    from engine.yamlsource import YamlSyntaxError, read

    sources, problems = [], []
    for name in files:
        paths = sorted(Path(name).glob("*.yaml")) if Path(name).is_dir() else [Path(name)]
        for path in paths:
            try:
                sources.append(read(path))
            except YamlSyntaxError as exc:
                problems.append(Problem(exc.location, str(exc), "syntax"))
    if problems:
        raise DefinitionError(problems)
    return sources


def _effective(source) -> str:
    data = source.data if isinstance(source.data, dict) else {}
    return str(data.get("effective", ""))


def cmd_registry_apply(args: argparse.Namespace) -> int:
    from cli.running import _moment
    from engine.registry_history import apply_source
    from engine.store import session_scope
    from engine.store.db import migrate

    url = database_url(args)
    migrate(url)
    now = _moment(args)
    sources = sorted(_sources(args.files), key=_effective)  # in date order
    lines = []
    with session_scope(url) as session:
        for source in sources:
            result = apply_source(session, source, now)
            cs = result.change_set
            head = f"{cs.id} (hiệu lực {short_date(cs.effective)})"
            if not result.created:
                lines.append(f"{head}: đã áp dụng trước đó, không làm gì thêm")
                continue
            lines.append(
                f"{head}: đã áp dụng — {result.versions} thay đổi đơn vị, "
                f"{len(result.ended)} đơn vị không còn từ ngày này"
                + (" (dữ liệu mẫu, chưa kiểm chứng)" if cs.sample else "")
            )
            moves = result.moves
            if moves is None:
                lines.append(
                    "  việc đang mở sẽ chuyển cho đơn vị kế thừa vào ngày hiệu lực (lượt quét hằng ngày)"
                )
                continue
            for plan_id in moves.plans:
                lines.append(
                    f"  {plan_id}: {len(moves.transferred.get(plan_id, []))} nghĩa vụ đang mở "
                    f"chuyển cho đơn vị kế thừa, {moves.rerouted.get(plan_id, 0)} nghĩa vụ đổi "
                    f"nơi nhận sang đơn vị kế thừa, {moves.activated.get(plan_id, 0)} nghĩa vụ "
                    "mới giao cho đơn vị kế thừa"
                )
    for line in lines:
        out(line)
    return EXIT_OK


def cmd_registry_history(args: argparse.Namespace) -> int:
    from sqlalchemy import select

    from engine.definitions_cache import current_registry
    from engine.registry_asof import history_lines
    from engine.store import session_scope
    from engine.store.db import migrate
    from engine.store.models import RegistryVersion

    url = database_url(args)
    migrate(url)
    with session_scope(url) as session:
        ids = (
            args.registry
            and [args.registry]
            or sorted(
                set(
                    session.scalars(
                        select(RegistryVersion.registry_id).where(RegistryVersion.current)
                    )
                )
            )
        )
        for registry_id in ids:
            registry = current_registry(session, registry_id)
            lines = history_lines(registry, args.unit) if registry is not None else []
            if lines:
                for line in lines:
                    out(line)
                return EXIT_OK
    raise NotFound(
        f"không có đơn vị '{args.unit}' trong danh bạ đã nạp"
        + (f" '{args.registry}'" if args.registry else "")
        + "; xem mã đơn vị trong tệp danh bạ"
    )


def _foresee(plan, registry, calendar, years, activated_on, quiet: bool = False) -> list[str]:
    """Print, once: what the plan's duties in ``years`` do about units that ended (moved
    to whom, or held); returns the units whose work would be left with nobody."""
    from engine.ended import ended_notes, held_units
    from engine.lifecycle.duties import foresee_ended
    from engine.registry import RegistryView

    if registry is None:
        return []
    view = RegistryView(registry, plan.groups)
    ended = foresee_ended(plan, view, calendar, years, activated_on)
    for line in [] if quiet else ended_notes(view, ended):
        out(f"lưu ý ({plan.id}): {line}")
    return held_units(ended)


def say_ended(plan, registry, calendar, years, activated_on, what: str) -> None:
    """:func:`_foresee`, then WorkHeld (exit 5) when work would be left with nobody."""
    from engine.ended import refuse_if_held

    refuse_if_held(_foresee(plan, registry, calendar, years, activated_on), f"{what} {plan.id}")


def foresee_stored(
    url: str, plan_ids: list[str], years: list[int], quiet: bool = False
) -> list[str]:
    """:func:`_foresee` for stored plans (``simulate``, ``deploy``): the units held;
    ``quiet``: print nothing (the flows ``simulate`` runs say it, once per activation)."""
    from sqlalchemy import select

    from engine.repository import (
        current_calendar,
        plan_definition,
        plan_version,
        registry_for_plan_version,
    )
    from engine.store import session_scope
    from engine.store.models import PlanInstance

    held: list[str] = []
    with session_scope(url) as session:
        for plan_id in plan_ids:
            row = plan_version(session, plan_id)
            instance = session.scalar(
                select(PlanInstance).where(PlanInstance.plan_version_id == row.id)
            )
            held += _foresee(
                plan_definition(row),
                registry_for_plan_version(session, row),
                current_calendar(session, "vn"),
                years,
                instance.activated_on if instance else None,
                quiet,
            )
    return sorted(set(held))
