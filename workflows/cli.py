"""``kehoach deploy``, ``simulate``, ``demo`` and ``review``: functions engine/cli.py wires in.

Each takes an ``argparse.Namespace`` and returns an exit code (0 ok, 1 user error,
4 not found — as engine/cli.py documents).  Attributes read (all optional unless said):

- deploy:   ``plan`` (required; ``all`` deploys every stored plan), ``database_url``
- simulate: ``plan``, ``start`` and ``until`` (dates, required), ``responses``,
            ``database_url``, ``no_parents``, ``no_email``
- demo:     ``year`` (default 2023), ``prefect_port`` (default 4200), ``database_url``
- review:   ``submission``, ``decision`` (accept|return), ``reason``, ``by``, ``database_url``

Commands needing Prefect use ``PREFECT_API_URL`` when it answers, else start (or
reuse) a local server on SQLite with ``PREFECT_HOME=<home>/prefect`` on port 4200,
which keeps running afterwards so its UI stays useful.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import shutil
import sys
from pathlib import Path

from engine.config import settings
from engine.errors import KehoachError

DEFINITIONS = Path(__file__).resolve().parents[1] / "plan_definitions"
SEED_PLAN = "ha-lang-pccc-2022"
DEMO_YEAR = 2023
DEMO_RESPONSES = DEFINITIONS / "simulations" / "ha_lang_2023_responses.yaml"


def _out(text: str = "") -> None:
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def _database(args: argparse.Namespace) -> str:
    return getattr(args, "database_url", None) or settings().database


def _prefect(home: Path, port: int | None = None):  # type: ignore[no-untyped-def]
    """A reachable Prefect API, pointed at by this process (env + settings)."""
    from workflows.server import DEFAULT_PORT, ensure_server

    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    try:
        server = ensure_server(home / "prefect", port=port or DEFAULT_PORT)
    except RuntimeError as exc:
        raise KehoachError(f"cannot start a local Prefect server: {exc}") from None
    os.environ["PREFECT_API_URL"] = server.api_url
    if "prefect" in sys.modules:  # imported already: its settings were read at import
        import prefect.settings

        prefect.settings.temporary_settings(
            updates={prefect.settings.PREFECT_API_URL: server.api_url}
        ).__enter__()
    return server


def _stop_hint(server) -> str:  # type: ignore[no-untyped-def]
    if server.home is not None and (server.home / "server.pid").exists():
        return f"{sys.executable} -m workflows.server stop {server.home}"
    return "(this server was already running; stop it where it was started)"


def _restart_hint(server) -> str:  # type: ignore[no-untyped-def]
    from urllib.parse import urlparse

    from workflows.server import start_command

    if server.home is None:
        return ""
    address = urlparse(server.api_url)
    return start_command(server.home, address.hostname or "127.0.0.1", address.port or 4200)


# ---------------------------------------------------------------- deploy


def cmd_deploy(args: argparse.Namespace) -> int:
    """``kehoach deploy PLAN``: create or update the plan's deployments and schedules."""
    from engine.store.db import migrate
    from workflows.register import WORK_POOL, deploy_all, deploy_plan

    url = _database(args)
    migrate(url)
    server = _prefect(settings().home)
    plan = getattr(args, "plan", None)
    results = deploy_all(url) if plan in (None, "all") else [deploy_plan(plan, database_url=url)]
    for result in results:
        version = f"v{result.version}" if result.version else "retired"
        _out(f"{result.plan_id} ({version}):")
        for name, crons in result.applied:
            when = ", ".join(crons) if crons else "on demand"
            _out(f"  {name:<40} {when}  (Asia/Ho_Chi_Minh)")
        for name in result.deleted:
            _out(f"  {name:<40} removed")
        if result.note:
            _out(f"  {result.note}")
    _out("")
    _out(f"Prefect UI: {server.ui_url}/deployments")
    _out(
        f"Runs execute on a worker: PREFECT_API_URL={server.api_url} "
        f"prefect worker start --pool {WORK_POOL}"
    )
    return 0


# ---------------------------------------------------------------- simulate


def _print_where(server, result, mailbox: Path | None = None) -> None:  # type: ignore[no-untyped-def]
    _out("")
    _out("Xem kết quả / where to look:")
    _out(f"  Prefect UI (flow runs, tags plan:…, unit:…, cycle:…): {server.ui_url}/runs")
    _out(f"  Artifacts (status-<plan>-<cycle>, report-<plan>-<cycle>): {server.ui_url}/artifacts")
    _out(f"  Events (kehoach.submission.received, …): {server.ui_url}/events")
    if mailbox is not None:
        count = len(list(mailbox.glob("*.eml"))) if mailbox.exists() else 0
        _out(f"  Mailbox: {mailbox.resolve()} ({count} .eml)")
    for path in result.reports:
        _out(f"  Report: {Path(path).resolve()}")
    for plan_id in result.plans:
        _out(
            f"  Status: kehoach status {plan_id} --cycle {result.start.year}"
            f" --at {result.until.isoformat()}"
        )


def cmd_simulate(args: argparse.Namespace) -> int:
    """``kehoach simulate PLAN --from DATE --until DATE [--responses FILE]``."""
    from engine.store.db import migrate
    from workflows.responses import ResponsesError
    from workflows.simulate import simulate

    url = _database(args)
    migrate(url)
    start: dt.date = args.start
    until: dt.date = args.until
    if until < start:
        raise KehoachError(f"--until {until} is before --from {start}; swap them")
    server = _prefect(settings().home)
    _out(f"Prefect: {server.ui_url}   kehoach store: {url}")
    dispatch = not getattr(args, "no_email", False)
    mailbox = None
    if dispatch and not _smtp_reachable():
        conf = settings()
        if conf.smtp_host in ("127.0.0.1", "localhost", "::1"):
            mailbox = _start_mailbox(conf.home / "mailbox")
        else:
            _out(
                f"SMTP {conf.smtp_host}:{conf.smtp_port} does not answer: emails are queued, "
                "not sent (send them later with `kehoach dispatch`)"
            )
            dispatch = False
    try:
        result = simulate(
            args.plan,
            start,
            until,
            getattr(args, "responses", None),
            database_url=url,
            include_parents=not getattr(args, "no_parents", False),
            dispatch=dispatch,
            out=_out,
        )
    except ResponsesError as exc:
        raise KehoachError(str(exc)) from None
    finally:
        if mailbox is not None:
            mailbox.stop()
    for line in result.summary_lines():
        _out(line)
    _print_where(server, result, settings().home / "mailbox" if mailbox else None)
    _out(f"  Prefect server keeps running; stop it: {_stop_hint(server)}")
    restart = _restart_hint(server)
    if restart:
        _out(f"  start it again later (same runs, same UI): {restart}")
    return 0


# ---------------------------------------------------------------- demo


def _archive_previous(home: Path, url: str) -> Path | None:
    """Move a previous demo's store, mailbox and reports aside (nothing is deleted)."""
    from sqlalchemy import select

    from engine.store.db import connect, migrate, session_scope
    from engine.store.models import PlanInstance

    db_file = home / "kehoach.sqlite"
    if not db_file.exists():
        return None
    migrate(url)
    with session_scope(url) as session:
        used = session.scalar(select(PlanInstance.id).limit(1)) is not None
    if not used:
        return None
    connect(url).dispose()
    target = home / "archive" / dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    target.mkdir(parents=True, exist_ok=True)
    for name in (
        "kehoach.sqlite",
        "kehoach.sqlite-wal",
        "kehoach.sqlite-shm",
        "mailbox",
        "reports",
        "files",
    ):
        source = home / name
        if source.exists():
            shutil.move(str(source), str(target / name))
    connect.cache_clear()
    return target


def _smtp_reachable() -> bool:
    import socket

    conf = settings()
    try:
        with socket.create_connection((conf.smtp_host, conf.smtp_port), timeout=2):
            return True
    except OSError:
        return False


def _start_mailbox(directory: Path):  # type: ignore[no-untyped-def]
    """The local mailbox (SMTP → .eml files), and point the dispatcher at it."""
    mailbox = _mailbox(directory)
    os.environ.update(
        KEHOACH_SMTP_HOST=mailbox.host,
        KEHOACH_SMTP_PORT=str(mailbox.port),
        KEHOACH_SMTP_SECURITY="none",
    )
    settings.cache_clear()
    _out(f"  mailbox (SMTP {mailbox.host}:{mailbox.port}) → {directory.resolve()}")
    return mailbox


def _mailbox(directory: Path):  # type: ignore[no-untyped-def]
    from notifications.mailbox import start_mailbox_server
    from workflows.server import free_port

    for port in (8025, free_port()):
        try:
            return start_mailbox_server(directory, "127.0.0.1", port)
        except (OSError, RuntimeError):
            continue
    raise KehoachError("cannot start the local mailbox (SMTP) server on 127.0.0.1")


def cmd_demo(args: argparse.Namespace) -> int:
    """``kehoach demo``: the seed plan and its province over a simulated year, no manual step."""
    from engine.loader import load
    from engine.repository import store_catalog
    from engine.store.db import migrate, session_scope
    from workflows.register import deploy_plan
    from workflows.simulate import simulate

    year = int(getattr(args, "year", None) or DEMO_YEAR)
    conf = settings()
    home = conf.home
    home.mkdir(parents=True, exist_ok=True)
    own_store = not (getattr(args, "database_url", None) or conf.database_url)
    url = _database(args)
    _out(f"kehoach demo: {SEED_PLAN} và kế hoạch cấp tỉnh, năm {year} (đồng hồ ảo)")

    # (a) Prefect on SQLite
    server = _prefect(home, getattr(args, "prefect_port", None))
    started = "started" if server.started_here else "reused"
    _out(f"  Prefect server ({started}): {server.ui_url}")
    # (b) the store
    if own_store:
        moved = _archive_previous(home, url)
        if moved is not None:
            _out(f"  previous demo moved to {moved}")
    migrate(url)
    _out(f"  kehoach store: {url}")
    # (c) the mailbox
    mailbox_dir = home / "mailbox"
    mailbox = _start_mailbox(mailbox_dir)
    try:
        # (d) definitions
        files = sorted(DEFINITIONS.glob("*.yaml"))
        catalog = load(files)
        with session_scope(url) as session:
            stored = store_catalog(session, catalog)
        _out(f"  loaded {len(stored)} definitions from {DEFINITIONS}")
        for plan_id in sorted(catalog.plans):
            deploy_plan(plan_id, database_url=url, paused=True)
        _out("  deployments registered, schedules paused (this year runs on a virtual clock)")
        _out("")
        # (e) the simulated year
        result = simulate(
            SEED_PLAN,
            dt.date(year, 1, 1),
            dt.date(year, 12, 31),
            DEMO_RESPONSES,
            database_url=url,
            out=_out,
        )
    finally:
        mailbox.stop()
    # (f) where to look
    _out("")
    for line in result.summary_lines():
        _out(line)
    _print_where(server, result, mailbox_dir)
    _out(f"  Prefect server keeps running; stop it: {_stop_hint(server)}")
    restart = _restart_hint(server)
    if restart:
        _out(f"  start it again later (same runs, same UI): {restart}")
    return 0


# ---------------------------------------------------------------- review


def cmd_review(args: argparse.Namespace) -> int:
    """``kehoach review SUBMISSION accept|return [--reason TEXT] [--by NAME]``."""
    from engine.clock import clock_from_env
    from engine.lifecycle import review
    from engine.store.db import migrate, session_scope
    from workflows.dispatch import send_due_now

    url = _database(args)
    migrate(url)
    now = clock_from_env().now()
    with session_scope(url) as session:
        submission = review(
            session,
            int(args.submission),
            decision=args.decision,
            reason=getattr(args, "reason", None),
            by=getattr(args, "by", None) or "operator",
            now=now,
        )
        state, version = submission.review_state, submission.version
    _out(f"submission {args.submission} (v{version}): {state}")
    try:
        stats = send_due_now(url, now)
        _out(f"emails: {stats.get('sent', 0)} sent")
    except Exception as exc:  # the email is queued; `kehoach dispatch` sends it later
        _out(f"emails queued, not sent now ({exc}); run `kehoach dispatch`")
    return 0
