"""The ``kehoach`` command line.

Exit codes: 0 success; 1 a user error (message says what to do); 2 wrong usage;
3 invalid definition files (every problem listed as file:line:column); 4 not found
(a plan or registry that is not loaded); 70 an internal error (a bug: please report).

The ``validate`` path imports neither Prefect nor SQLAlchemy unless it must look a
registry up in the store, so it stays fast.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib
import json
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from engine.errors import DefinitionError, KehoachError, NotFound

EXIT_OK, EXIT_USER, EXIT_USAGE, EXIT_INVALID, EXIT_NOT_FOUND, EXIT_INTERNAL = 0, 1, 2, 3, 4, 70

# Commands implemented outside engine/ are imported only when used, so `validate`
# never pays for Prefect, FastAPI or aiosmtplib.
LAZY_COMMANDS: dict[str, str] = {
    "status": "engine.status:cmd_status",
    "outbox": "notifications.cli:cmd_outbox",
    "dispatch": "notifications.cli:cmd_dispatch",
    "deploy": "workflows.cli:cmd_deploy",
    "simulate": "workflows.cli:cmd_simulate",
    "demo": "workflows.cli:cmd_demo",
    "portal": "portal.cli:cmd_portal",
    "review": "workflows.cli:cmd_review",
    "close": "engine.closing:cmd_close",
    "reopen": "engine.closing:cmd_reopen",
    "consolidate": "engine.consolidation:cmd_consolidate",
    "activate": "engine.lifecycle:cmd_activate",
}


def _out(text: str = "") -> None:
    sys.stdout.write(text + "\n")


def _err(text: str) -> None:
    sys.stderr.write(text + "\n")


def _database_url(args: argparse.Namespace) -> str:
    from engine.config import settings

    return getattr(args, "database_url", None) or settings().database


def _registry_lookup(args: argparse.Namespace):  # type: ignore[no-untyped-def]
    """Look a registry up in the store, only when a plan needs one not given as a file."""

    def lookup(registry_id: str):  # type: ignore[no-untyped-def]
        url = _database_url(args)
        if url.startswith("sqlite:///") and not Path(url.removeprefix("sqlite:///")).exists():
            return None
        from engine.repository import current_registry
        from engine.store import migrate, session_scope

        migrate(url)
        with session_scope(url) as session:
            return current_registry(session, registry_id)

    return lookup


def _plan_lookup(args: argparse.Namespace):  # type: ignore[no-untyped-def]
    def lookup(plan_id: str):  # type: ignore[no-untyped-def]
        url = _database_url(args)
        if url.startswith("sqlite:///") and not Path(url.removeprefix("sqlite:///")).exists():
            return None
        from engine.repository import current_plan
        from engine.store import migrate, session_scope

        migrate(url)
        with session_scope(url) as session:
            return current_plan(session, plan_id)

    return lookup


def _expand(paths: Sequence[str]) -> list[Path]:
    files: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            files.extend(sorted(path.glob("*.yaml")) + sorted(path.glob("*.yml")))
        elif path.exists():
            files.append(path)
        else:
            raise KehoachError(f"{raw}: no such file; check the path")
    if not files:
        raise KehoachError(
            "no YAML files given; pass plan or registry files, e.g. plan_definitions/*.yaml"
        )
    return files


# ---------------------------------------------------------------- validate / load


def cmd_validate(args: argparse.Namespace) -> int:
    from engine.loader import load

    files = _expand(args.files)
    catalog = load(files, registry_lookup=_registry_lookup(args), plan_lookup=_plan_lookup(args))
    for item in catalog.given():
        _out(f"ok  {item.source.path}  ({item.definition.kind} {item.definition.id})")
    return EXIT_OK


def cmd_load(args: argparse.Namespace) -> int:
    from engine.loader import load
    from engine.repository import store_catalog
    from engine.store import migrate, session_scope

    files = _expand(args.files)
    catalog = load(files, registry_lookup=_registry_lookup(args), plan_lookup=_plan_lookup(args))
    url = _database_url(args)
    migrate(url)
    with session_scope(url) as session:  # all files or none
        results = store_catalog(session, catalog)
    for result in results:
        state = "new version" if result.created else "unchanged"
        _out(f"{result.kind:9} {result.id:32} v{result.version}  {state}")
    return EXIT_OK


def cmd_plans(args: argparse.Namespace) -> int:
    from engine.repository import list_plan_versions
    from engine.store import migrate, session_scope

    url = _database_url(args)
    migrate(url)
    with session_scope(url) as session:
        rows = list_plan_versions(session)
        if not rows:
            _out("No plan is loaded yet. Load one with: kehoach load plan_definitions/*.yaml")
            return EXIT_OK
        _out(f"{'plan':32} {'ver':>3}  {'state':8} {'loaded (UTC)':19}  number / summary")
        for row in rows:
            doc = row.definition["document"]
            state = "current" if row.current else ("retired" if row.retired_at else "old")
            number = doc.get("number") or "(số trống)"
            _out(
                f"{row.plan_id:32} {row.version:>3}  {state:8} "
                f"{row.loaded_at:%Y-%m-%d %H:%M:%S}  {number} — {doc['summary'][:60]}"
            )
    return EXIT_OK


def cmd_schema(args: argparse.Namespace) -> int:
    from engine.schema import json_schema

    text = json.dumps(json_schema(), ensure_ascii=False, indent=2)
    if args.output:
        Path(args.output).write_text(text + "\n", encoding="utf-8")
        _out(f"wrote {args.output}")
    else:
        _out(text)
    return EXIT_OK


# ---------------------------------------------------------------- show / calendar


def _open_plan(args: argparse.Namespace):  # type: ignore[no-untyped-def]
    """(plan, registry, calendar overrides, activation date) from a YAML file or the store."""
    from engine.schema import Plan

    ref = args.plan
    path = Path(ref)
    if path.suffix in {".yaml", ".yml"} or path.exists():
        from engine.loader import load

        if not path.exists():
            raise KehoachError(f"{ref}: no such file; check the path")
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
    from sqlalchemy import select

    from engine.repository import (
        current_calendar,
        plan_definition,
        plan_version,
        registry_for_plan_version,
    )
    from engine.store import migrate, session_scope
    from engine.store.models import PlanInstance

    url = _database_url(args)
    migrate(url)
    with session_scope(url) as session:
        row = plan_version(session, ref)
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
    from engine.render_plan import render_plan

    plan, registry, calendar, activated_on = _open_plan(args)
    _out(render_plan(plan, registry, calendar, activated_on, today=_today(args)))
    return EXIT_OK


def cmd_calendar(args: argparse.Namespace) -> int:
    from engine.render_plan import render_calendar

    plan, _registry, calendar, activated_on = _open_plan(args)
    _out(render_calendar(plan, calendar, args.year, activated_on))
    return EXIT_OK


def _today(args: argparse.Namespace) -> dt.date:
    from engine.calendar import today

    return today()


# ---------------------------------------------------------------- parser


def day_arg(text: str) -> dt.date:
    """A day on the command line: 2027-09-12 or, as written in Vietnamese, 12/9/2027."""
    raw = text.strip()
    try:
        if "/" in raw:
            day, month, year = (int(part) for part in raw.split("/"))
            return dt.date(year, month, day)
        return dt.date.fromisoformat(raw)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"'{text}' không phải là ngày / is not a date: write YYYY-MM-DD or d/m/yyyy"
        ) from None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="kehoach",
        description="Vietnamese government plans as YAML workflows run by Prefect.",
        epilog="Exit codes: 0 ok, 1 user error, 2 usage, 3 invalid definitions, 4 not found, "
        "70 internal error.",
    )
    parser.add_argument(
        "--database-url",
        help="SQLAlchemy URL of the store (default: $KEHOACH_DATABASE_URL or var/kehoach.sqlite)",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    def add(name: str, help_text: str, func: Callable[[argparse.Namespace], int] | str):
        command = sub.add_parser(name, help=help_text, description=help_text)
        command.set_defaults(func=func)
        return command

    p = add("validate", "check definition files (registries, plans, calendars)", cmd_validate)
    p.add_argument("files", nargs="+", metavar="FILE")
    p = add("load", "validate and store definition files as new versions", cmd_load)
    p.add_argument("files", nargs="+", metavar="FILE")
    add("plans", "list stored plans with their versions", cmd_plans)
    p = add("show", "print a plan as a readable tree", cmd_show)
    p.add_argument("plan", metavar="PLAN", help="plan id in the store, or a YAML file")
    p = add("schema", "print the JSON Schema of the YAML definitions", cmd_schema)
    p.add_argument("-o", "--output", help="write to this file instead of standard output")
    p = add("calendar", "print every deadline and event of a year", cmd_calendar)
    p.add_argument("plan", metavar="PLAN", help="plan id in the store, or a YAML file")
    p.add_argument("--year", type=int, default=dt.date.today().year)

    p = add(
        "activate",
        "create a loaded plan's cycles and obligations, and queue the assignment emails",
        LAZY_COMMANDS["activate"],
    )
    p.add_argument("plan", metavar="PLAN")
    p.add_argument(
        "--year",
        dest="years",
        type=int,
        action="append",
        metavar="YEAR",
        help="cycle year (repeatable; default: this year in Viet Nam)",
    )
    p.add_argument("--at", type=day_arg, metavar="DATE", help="activation day (default: now)")
    p = add("status", "four-state status table of a plan's obligations", LAZY_COMMANDS["status"])
    p.add_argument("plan", metavar="PLAN")
    p.add_argument("--cycle", help="cycle key, e.g. 2027 (default: all open cycles)")
    p.add_argument("--no-color", action="store_true", help="plain text, no ANSI colours")
    p.add_argument(
        "--at",
        type=day_arg,
        metavar="DATE",
        help="as of this day, YYYY-MM-DD (default: today, or KEHOACH_NOW)",
    )
    p = add("outbox", "list queued, sent and failed emails", LAZY_COMMANDS["outbox"])
    p.add_argument("--status", choices=["pending", "sending", "sent", "failed", "cancelled"])
    p.add_argument("--kind", help="only this kind (assignment, reminder, overdue, ...)")
    p.add_argument("--limit", type=int, default=50, help="newest N rows (default 50)")
    p = add("dispatch", "send the emails that are due now", LAZY_COMMANDS["dispatch"])
    p.add_argument("--limit", type=int, help="send at most N messages")
    p.add_argument("--now", help="virtual time, ISO 8601 (default: the real time)")
    p = add("deploy", "create or update a plan's Prefect deployments", LAZY_COMMANDS["deploy"])
    p.add_argument("plan", metavar="PLAN", help="plan id, or 'all' for every stored plan")
    p = add("simulate", "run a plan's flows on a virtual clock", LAZY_COMMANDS["simulate"])
    p.add_argument("plan", metavar="PLAN")
    p.add_argument("--from", dest="start", required=True, type=day_arg)
    p.add_argument("--until", dest="until", required=True, type=day_arg)
    p.add_argument("--responses", help="YAML file of who submits what and when")
    p.add_argument("--no-parents", action="store_true", help="do not run the parent plans too")
    p.add_argument("--no-email", action="store_true", help="queue emails but do not send them")
    p = add(
        "demo",
        "set up and simulate the seed plan over a year (the main job)",
        LAZY_COMMANDS["demo"],
    )
    p.add_argument("--year", type=int, help="the cycle to simulate (default 2023)")
    p.add_argument("--prefect-port", type=int, help="port of the local Prefect server (4200)")
    p = add("portal", "serve the units' portal", LAZY_COMMANDS["portal"])
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8700)
    p = add("review", "accept or return a submission", LAZY_COMMANDS["review"])
    p.add_argument("submission", type=int, metavar="SUBMISSION_ID")
    p.add_argument("decision", choices=["accept", "return"])
    p.add_argument("--reason", help="required when returning")
    p.add_argument("--by", default=os.environ.get("USER", "operator"))
    p = add(
        "close",
        "close a cycle by hand (takes answers in, lists who never answered)",
        LAZY_COMMANDS["close"],
    )
    p.add_argument("plan", metavar="PLAN")
    p.add_argument("--cycle", required=True, metavar="KEY", help="cycle key, e.g. 2027")
    p.add_argument(
        "--at",
        type=day_arg,
        metavar="DATE",
        help="closing day, YYYY-MM-DD (default: now)",
    )
    p.add_argument(
        "--force",
        action="store_true",
        help="close even though the cycle's consolidation has not been done",
    )
    p.add_argument("--reason", help="why, recorded in the audit log")
    p.add_argument("--by", default=os.environ.get("USER", "admin"))
    p = add(
        "consolidate",
        "consolidate a cycle's reports now; --revise issues a replacing report",
        LAZY_COMMANDS["consolidate"],
    )
    p.add_argument("plan", metavar="PLAN")
    p.add_argument("--cycle", required=True, metavar="KEY", help="cycle key, e.g. 2027")
    p.add_argument("--consolidation", metavar="ID", help="one consolidation (default: all)")
    p.add_argument(
        "--revise",
        action="store_true",
        help="when reports arrived or changed after the consolidated report, write a new "
        "revision that replaces it (and hand it upward again)",
    )
    p = add("reopen", "reopen a closed cycle until a date", LAZY_COMMANDS["reopen"])
    p.add_argument("plan", metavar="PLAN")
    p.add_argument("--cycle", required=True, metavar="KEY", help="cycle key, e.g. 2027")
    p.add_argument(
        "--until",
        required=True,
        type=day_arg,
        metavar="DATE",
        help="last day the units' links work again, YYYY-MM-DD",
    )
    p.add_argument("--reason", required=True, help="why, recorded in the audit log")
    p.add_argument("--by", default=os.environ.get("USER", "admin"))
    return parser


def _resolve(
    func: Callable[[argparse.Namespace], int] | str,
) -> Callable[[argparse.Namespace], int]:
    if callable(func):
        return func
    module_name, _, attr = func.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name and exc.name.split(".")[0] in {
            "workflows",
            "notifications",
            "portal",
            "engine",
        }:
            raise KehoachError(
                f"this command is not available in this build ({exc.name} missing)"
            ) from None
        raise
    return getattr(module, attr)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return EXIT_USAGE
    try:
        return int(_resolve(args.func)(args) or 0)
    except DefinitionError as exc:
        for problem in exc.problems:
            _err(str(problem))
        count = len(exc.problems)
        _err(f"{count} problem{'s' if count != 1 else ''}; nothing was stored")
        return EXIT_INVALID
    except NotFound as exc:
        _err(f"kehoach: {exc}")
        return EXIT_NOT_FOUND
    except KehoachError as exc:
        _err(f"kehoach: {exc}")
        return exc.exit_code
    except KeyboardInterrupt:
        _err("kehoach: interrupted")
        return 130
    except BrokenPipeError:
        return EXIT_OK
    except Exception as exc:  # a bug, not a user mistake: say so, keep the details
        if os.environ.get("KEHOACH_DEBUG"):
            raise
        _err(
            f"kehoach: internal error: {type(exc).__name__}: {exc}\n"
            "This is a bug. Re-run with KEHOACH_DEBUG=1 for the traceback and report it."
        )
        return EXIT_INTERNAL


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
