"""Every command's arguments.  Each command names its function as ``module:function``;
:func:`cli.main.main` imports that module only when the command runs."""

from __future__ import annotations

import argparse
import datetime as dt
import os
from collections.abc import Callable
from typing import Any

Setup = Callable[[argparse.ArgumentParser], None]


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


class CommandParser(argparse.ArgumentParser):
    """A command's parser whose arguments may be added when it is first used.

    ``setup`` runs before the command's arguments are parsed or its help is printed,
    so arguments whose choices come from a heavier module (the outbox states, from
    engine.states, which imports SQLAlchemy) cost the other commands nothing.
    """

    def __init__(self, *args: Any, setup: Setup | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._setup = setup

    def _ready(self) -> None:
        setup, self._setup = self._setup, None
        if setup is not None:
            setup(self)

    def parse_known_args(self, *args: Any, **kwargs: Any):
        self._ready()
        return super().parse_known_args(*args, **kwargs)

    def format_usage(self) -> str:
        self._ready()
        return super().format_usage()

    def format_help(self) -> str:
        self._ready()
        return super().format_help()


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
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=CommandParser)
    _definitions(sub)
    _activate_and_status(sub)
    _mail(sub)
    _prefect(sub)
    _review_and_closing(sub)
    return parser


def _add(
    sub: Any, name: str, help_text: str, func: str, setup: Setup | None = None
) -> argparse.ArgumentParser:
    command: argparse.ArgumentParser = sub.add_parser(
        name, help=help_text, description=help_text, setup=setup
    )
    command.set_defaults(func=func)
    return command


def _definitions(sub: Any) -> None:
    """validate, load, plans, show, schema, calendar (cli.definitions)."""
    p = _add(
        sub,
        "validate",
        "check definition files (registries, plans, calendars)",
        "cli.definitions:cmd_validate",
    )
    p.add_argument("files", nargs="+", metavar="FILE")
    p = _add(
        sub,
        "load",
        "validate and store definition files as new versions",
        "cli.definitions:cmd_load",
    )
    p.add_argument("files", nargs="+", metavar="FILE")
    p.add_argument(
        "--confirm",
        action="store_true",
        help="store a plan version that removes assignments, deliverables, units or fields",
    )
    p.add_argument(
        "--apply-to-running",
        action="store_true",
        help="move cycles already running to the new version (default: they keep theirs)",
    )
    _add(sub, "plans", "list stored plans with their versions", "cli.definitions:cmd_plans")
    p = _add(sub, "show", "print a plan as a readable tree", "cli.definitions:cmd_show")
    p.add_argument("plan", metavar="PLAN", help="plan id in the store, or a YAML file")
    p = _add(
        sub, "schema", "print the JSON Schema of the YAML definitions", "cli.definitions:cmd_schema"
    )
    p.add_argument("-o", "--output", help="write to this file instead of standard output")
    p = _add(
        sub,
        "calendar",
        "print every deadline and event of a year",
        "cli.definitions:cmd_calendar",
    )
    p.add_argument("plan", metavar="PLAN", help="plan id in the store, or a YAML file")
    p.add_argument("--year", type=int, default=dt.date.today().year)


def _activate_and_status(sub: Any) -> None:
    p = _add(
        sub,
        "activate",
        "create a loaded plan's cycles and obligations, and queue the assignment emails",
        "cli.running:cmd_activate",
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
    p = _add(
        sub, "status", "four-state status table of a plan's obligations", "cli.running:cmd_status"
    )
    p.add_argument("plan", metavar="PLAN")
    p.add_argument("--cycle", help="cycle key, e.g. 2027 (default: all open cycles)")
    p.add_argument("--no-color", action="store_true", help="plain text, no ANSI colours")
    p.add_argument(
        "--at",
        type=day_arg,
        metavar="DATE",
        help="as of this day, YYYY-MM-DD (default: today, or KEHOACH_NOW)",
    )


def _outbox_arguments(p: argparse.ArgumentParser) -> None:
    from engine.states import OutboxStatus

    p.add_argument("--status", choices=[status.value for status in OutboxStatus])
    p.add_argument("--kind", help="only this kind (assignment, reminder, overdue, ...)")
    p.add_argument("--limit", type=int, default=50, help="newest N rows (default 50)")


def _mail(sub: Any) -> None:
    _add(
        sub,
        "outbox",
        "list queued, sent and failed emails",
        "cli.mail:cmd_outbox",
        setup=_outbox_arguments,
    )
    p = _add(sub, "dispatch", "send the emails that are due now", "cli.mail:cmd_dispatch")
    p.add_argument("--limit", type=int, help="send at most N messages")
    p.add_argument("--now", help="virtual time, ISO 8601 (default: the real time)")


def _prefect(sub: Any) -> None:
    """deploy, simulate, demo (cli.prefect) and portal (cli.portal)."""
    p = _add(
        sub, "deploy", "create or update a plan's Prefect deployments", "cli.prefect:cmd_deploy"
    )
    p.add_argument("plan", metavar="PLAN", help="plan id, or 'all' for every stored plan")
    p = _add(sub, "simulate", "run a plan's flows on a virtual clock", "cli.prefect:cmd_simulate")
    p.add_argument("plan", metavar="PLAN")
    p.add_argument("--from", dest="start", required=True, type=day_arg)
    p.add_argument("--until", dest="until", required=True, type=day_arg)
    p.add_argument("--responses", help="YAML file of who submits what and when")
    p.add_argument("--no-parents", action="store_true", help="do not run the parent plans too")
    p.add_argument("--no-email", action="store_true", help="queue emails but do not send them")
    p = _add(
        sub,
        "demo",
        "set up and simulate the seed plan over a year (the main job)",
        "cli.prefect:cmd_demo",
    )
    p.add_argument("--year", type=int, help="the cycle to simulate (default 2023)")
    p.add_argument("--prefect-port", type=int, help="port of the local Prefect server (4200)")
    p = _add(sub, "portal", "serve the units' portal", "cli.portal:cmd_portal")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8700)


def _review_and_closing(sub: Any) -> None:
    p = _add(sub, "review", "accept or return a submission", "cli.running:cmd_review")
    p.add_argument("submission", type=int, metavar="SUBMISSION_ID")
    p.add_argument("decision", choices=["accept", "return"])
    p.add_argument("--reason", help="required when returning")
    p.add_argument("--by", default=os.environ.get("USER", "operator"))
    p = _add(
        sub,
        "close",
        "close a cycle by hand (takes answers in, lists who never answered)",
        "cli.running:cmd_close",
    )
    p.add_argument("plan", metavar="PLAN")
    p.add_argument("--cycle", required=True, metavar="KEY", help="cycle key, e.g. 2027")
    p.add_argument(
        "--at", type=day_arg, metavar="DATE", help="closing day, YYYY-MM-DD (default: now)"
    )
    p.add_argument(
        "--force",
        action="store_true",
        help="close even though the cycle's consolidation has not been done",
    )
    p.add_argument("--reason", help="why, recorded in the audit log")
    p.add_argument("--by", default=os.environ.get("USER", "admin"))
    p = _add(
        sub,
        "consolidate",
        "consolidate a cycle's reports now; --revise issues a replacing report",
        "cli.running:cmd_consolidate",
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
    p = _add(sub, "reopen", "reopen a closed cycle until a date", "cli.running:cmd_reopen")
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
