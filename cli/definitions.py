"""``kehoach validate``, ``load``, ``plans``, ``schema``, ``show`` and ``calendar``.

``validate`` imports neither Prefect nor SQLAlchemy unless it must look a registry up
in the store, so the imports below stay inside the functions that need them.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from cli.common import EXIT_OK, database_url, err, out
from engine.errors import KehoachError


def _in_store(args: argparse.Namespace, find: Callable[[Any, str], Any]) -> Callable[[str], Any]:
    """A lookup in the store, only for a definition not given as a file (None when the
    store is a SQLite file that does not exist yet)."""

    def lookup(definition_id: str) -> Any:
        url = database_url(args)
        if url.startswith("sqlite:///") and not Path(url.removeprefix("sqlite:///")).exists():
            return None
        from engine.store import migrate, session_scope

        migrate(url)
        with session_scope(url) as session:
            return find(session, definition_id)

    return lookup


def _registry_lookup(args: argparse.Namespace) -> Callable[[str], Any]:
    def find(session: Any, registry_id: str) -> Any:
        from engine.repository import current_registry

        return current_registry(session, registry_id)

    return _in_store(args, find)


def _plan_lookup(args: argparse.Namespace) -> Callable[[str], Any]:
    def find(session: Any, plan_id: str) -> Any:
        from engine.repository import current_plan

        return current_plan(session, plan_id)

    return _in_store(args, find)


def _expand(paths: Sequence[str]) -> list[Path]:
    files: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found = sorted(path.glob("*.yaml")) + sorted(path.glob("*.yml"))
            if not found:
                raise KehoachError(
                    f"{raw}: là một thư mục không có tệp .yaml/.yml nào; chỉ ra các tệp định "
                    "nghĩa, ví dụ plan_definitions/*.yaml"
                )
            files.extend(found)
        elif path.exists():
            files.append(path)
        else:
            raise KehoachError(f"{raw}: không có tệp này; kiểm tra đường dẫn")
    if not files:
        raise KehoachError(
            "chưa có tệp YAML nào; hãy đưa tệp kế hoạch hoặc danh bạ, ví dụ plan_definitions/*.yaml"
        )
    return files


# ---------------------------------------------------------------- validate / load


def _warnings(catalog: Any) -> None:
    """Each warning of the load, once, located (stderr: the ok lines stay on stdout)."""
    for problem in dict.fromkeys(str(w) for w in catalog.warnings):
        err(problem)


def cmd_validate(args: argparse.Namespace) -> int:
    from engine.loader import load

    files = _expand(args.files)
    catalog = load(files, registry_lookup=_registry_lookup(args), plan_lookup=_plan_lookup(args))
    _warnings(catalog)
    for item in catalog.given():
        out(f"ok  {item.source.path}  ({item.definition.kind} {item.definition.id})")
    return EXIT_OK


def cmd_load(args: argparse.Namespace) -> int:
    """Store the files as new versions (all or none). A plan version that removes
    assignments, deliverables, units or report fields is refused unless ``--confirm``;
    running cycles keep their version unless ``--apply-to-running``."""
    from engine.lifecycle.new_version import versions_before
    from engine.loader import load
    from engine.repository import store_catalog
    from engine.store import migrate, session_scope

    files = _expand(args.files)
    catalog = load(files, registry_lookup=_registry_lookup(args), plan_lookup=_plan_lookup(args))
    _warnings(catalog)
    url = database_url(args)
    migrate(url)
    with session_scope(url) as session:  # all files or none
        plan_ids = [i.definition.id for i in catalog.given() if i.definition.kind == "plan"]
        before = versions_before(session, plan_ids)
        results = store_catalog(session, catalog)
        notes = _new_versions(session, before, args)
    for result in results:
        state = "phiên bản mới" if result.created else "không đổi"
        out(f"{result.kind:9} {result.id:32} v{result.version}  {state}")
    for line in notes:
        out(line)
    return EXIT_OK


class ConfirmationNeeded(KehoachError):
    """A new version removes things: printed, nothing stored, ``--confirm`` to go on
    (exit 1, a user error)."""


def _new_versions(session: Any, before: dict[str, Any], args: argparse.Namespace) -> list[str]:
    """The difference of each replaced plan version; raises (the transaction rolls back)
    when a removal is not confirmed or cannot be applied to running cycles."""
    from engine.clock import clock_from_env
    from engine.lifecycle.new_version import apply_to_running, describe_change, version_changes

    apply = bool(getattr(args, "apply_to_running", False))
    changes = version_changes(session, before, running_too=apply)
    unconfirmed = [c for c in changes if c.needs_confirmation]
    if unconfirmed and not getattr(args, "confirm", False):
        lines: list[str] = []
        for change in unconfirmed:
            lines += describe_change(change, applied=False)
        raise ConfirmationNeeded(
            "\n".join(lines) + "\nKhông lưu gì. Nếu đúng là muốn bỏ những mục trên, chạy lại "
            "với --confirm: các kỳ đang chạy vẫn giữ phiên bản của chúng, phiên bản mới áp dụng "
            "từ kỳ bắt đầu sau (thêm --apply-to-running để áp dụng cả cho các kỳ đang chạy)."
        )
    notes: list[str] = []
    for change in changes:
        if apply:
            apply_to_running(session, change.new, change.running, now=clock_from_env().now())
        notes += describe_change(change, applied=apply)
    return notes


def cmd_plans(args: argparse.Namespace) -> int:
    from engine.calendar import TZ
    from engine.repository import list_plan_versions
    from engine.store import migrate, session_scope

    url = database_url(args)
    migrate(url)
    with session_scope(url) as session:
        rows = list_plan_versions(session)
        if not rows:
            out("Chưa nạp kế hoạch nào. Nạp bằng: kehoach load plan_definitions/*.yaml")
            return EXIT_OK
        out(
            f"{'Kế hoạch':32} {'Bản':>3}  {'Tình trạng':10} {'Nạp lúc (+07:00)':16}  Số — trích yếu"
        )
        for row in rows:
            doc = row.definition["document"]
            state = "hiện hành" if row.current else ("đã thôi" if row.retired_at else "cũ")
            number = doc.get("number") or "(số trống)"
            loaded = row.loaded_at.astimezone(TZ)
            out(
                f"{row.plan_id:32} {row.version:>3}  {state:10} "
                f"{loaded:%d/%m/%Y %H:%M}  {number} — {doc['summary'][:60]}"
            )
    return EXIT_OK


def cmd_schema(args: argparse.Namespace) -> int:
    if getattr(args, "markdown", False):
        from engine.plan_format import plan_format_markdown

        text = plan_format_markdown().rstrip("\n")
    else:
        from engine.plan_format import json_schema

        text = json.dumps(json_schema(), ensure_ascii=False, indent=2)
    if args.output:
        Path(args.output).write_text(text + "\n", encoding="utf-8")
        out(f"đã ghi {args.output}")
    else:
        out(text)
    return EXIT_OK


# ---------------------------------------------------------------- show / calendar


def _plan_from_file(args: argparse.Namespace, path: Path) -> tuple[Any, Any, Any, None]:
    """(plan, registry, calendar overrides, None) from a YAML file and its neighbours."""
    from engine.loader import load
    from engine.schema import Plan

    if not path.exists():
        raise KehoachError(f"{args.plan}: không có tệp này; kiểm tra đường dẫn")
    calendars = [p for p in path.parent.glob("calendar*.y*ml") if p.resolve() != path.resolve()]
    catalog = load(
        [path, *calendars],
        registry_lookup=_registry_lookup(args),
        plan_lookup=_plan_lookup(args),
    )
    plan = next(i.definition for i in catalog.plans.values() if i.source.path == str(path))
    assert isinstance(plan, Plan)
    if plan.registry in catalog.registries:
        registry = catalog.registries[plan.registry].definition
    else:
        registry = _registry_lookup(args)(plan.registry)
    calendar = next((c.definition for c in catalog.calendars.values()), None)
    return plan, registry, calendar, None


def _open_plan(args: argparse.Namespace) -> tuple[Any, Any, Any, dt.date | None]:
    """(plan, registry, calendar overrides, activation date) from a YAML file or the store."""
    path = Path(args.plan)
    if path.suffix in {".yaml", ".yml"} or path.exists():
        return _plan_from_file(args, path)
    from sqlalchemy import select

    from engine.repository import (
        current_calendar,
        plan_definition,
        plan_version,
        registry_for_plan_version,
    )
    from engine.store import migrate, session_scope
    from engine.store.models import PlanInstance

    url = database_url(args)
    migrate(url)
    with session_scope(url) as session:
        row = plan_version(session, args.plan)
        instance = session.scalar(
            select(PlanInstance).where(PlanInstance.plan_version_id == row.id)
        )
        return (
            plan_definition(row),
            registry_for_plan_version(session, row),
            current_calendar(session, "vn"),
            instance.activated_on if instance else None,
        )


def cmd_show(args: argparse.Namespace) -> int:
    from engine.calendar import today
    from engine.render_plan import render_plan

    plan, registry, calendar, activated_on = _open_plan(args)
    out(render_plan(plan, registry, calendar, activated_on, today=today()))
    return EXIT_OK


def cmd_calendar(args: argparse.Namespace) -> int:
    from engine.render_plan import render_calendar

    plan, registry, calendar, activated_on = _open_plan(args)
    out(render_calendar(plan, calendar, args.year, activated_on))
    from cli.registry import say_ended

    say_ended(plan, registry, calendar, [args.year], activated_on, "kehoach calendar")
    return EXIT_OK
