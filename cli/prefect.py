"""``kehoach deploy``, ``simulate`` and ``demo``; ``python -m cli.flow`` (one flow in
this process) and ``python -m cli.server`` (the local Prefect server).

Commands needing Prefect use exactly the configured API (``KEHOACH_PREFECT_API_URL``,
else ``PREFECT_API_URL``) and stop with a message when it does not answer; with none
configured they start (or reuse) the local server of ``<home>/prefect`` on SQLite
(port 4200, or a free one), which keeps running afterwards so its UI stays useful.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import sys
from pathlib import Path

from cli.common import database_url, out
from engine.config import Settings, settings
from engine.errors import KehoachError

DEFINITIONS = Path(__file__).resolve().parents[1] / "plan_definitions"
SEED_PLAN = "ha-lang-pccc-2022"
DEMO_YEAR = 2023
DEMO_RESPONSES = DEFINITIONS / "simulations" / "ha_lang_2023_responses.yaml"


# A dead port is refused at once; this bounds a server that accepts and hangs (a busy
# 2-core machine took over 2 s for a new server's first authenticated request).
CHECK_SECONDS = 5.0


class PrefectUnavailable(KehoachError):
    """The configured Prefect API does not answer or refuses kehoach (exit 1)."""


def _prefect(home: Path, port: int | None = None):
    """The Prefect API this command must use, checked, and this process pointed at it.

    Exactly the configured one (``KEHOACH_PREFECT_API_URL``, else ``PREFECT_API_URL``);
    when it does not answer (health check, 5 s at most) or refuses our credentials, nothing is
    done. Only when none is configured: the local server of ``<home>/prefect`` (started
    if needed; the demo's and a developer's set-up). Prefect's own fallback, a throw-away
    server inside this process, is switched off.
    """
    from engine.config import prefect_api
    from workflows.server import DEFAULT_PORT, LocalPrefect, api_problem, ensure_server

    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ["PREFECT_SERVER_EPHEMERAL_ENABLED"] = "false"
    configured = prefect_api()
    if configured is not None:
        api_url, origin = configured
        problem = api_problem(api_url, timeout=CHECK_SECONDS)
        if problem is not None:
            raise PrefectUnavailable(
                f"Prefect API đã cấu hình ({origin}={api_url}) không dùng được: {problem}. "
                f"Không làm gì cả (kehoach không chuyển sang máy chủ Prefect nào khác): "
                f"khởi động máy chủ đó, hoặc sửa {origin}."
            )
        server = LocalPrefect(api_url, None, None, None, started_here=False)
    else:
        try:
            server = ensure_server(home / "prefect", port=port or DEFAULT_PORT)
        except RuntimeError as exc:
            raise KehoachError(f"không khởi động được máy chủ Prefect cục bộ: {exc}") from None
        if (note := server.moved_note()) is not None:
            print(note, file=sys.stderr)
    os.environ["PREFECT_API_URL"] = server.api_url
    if "prefect" in sys.modules:  # imported already: its settings were read at import
        import prefect.settings

        prefect.settings.temporary_settings(
            updates={prefect.settings.PREFECT_API_URL: server.api_url}
        ).__enter__()
    return server


def _stop_hint(server) -> str:
    if server.home is not None and (server.home / "server.pid").exists():
        return f"{sys.executable} -m cli.server stop {server.home}"
    return "(this server was already running; stop it where it was started)"


def _restart_hint(server) -> str:
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

    server = _prefect(settings().home)  # before anything: refuse a dead or foreign API
    url = database_url(args)
    migrate(url)
    plan = getattr(args, "plan", None)
    results = deploy_all(url) if plan in (None, "all") else [deploy_plan(plan, database_url=url)]
    from cli.registry import foresee_stored
    from engine.calendar import today
    from engine.ended import refuse_if_held

    year = today().year
    held = foresee_stored(url, [r.plan_id for r in results if r.version], [year, year + 1])
    for result in results:
        version = f"v{result.version}" if result.version else "retired"
        out(f"{result.plan_id} ({version}):")
        for name, crons in result.applied:
            when = ", ".join(crons) if crons else "khi được gọi"
            out(f"  {name:<40} {when}  (Asia/Ho_Chi_Minh)")
        for name in result.deleted:
            out(f"  {name:<40} đã gỡ")
        if result.note:
            out(f"  {result.note}")
    out("")
    out(f"Prefect UI: {server.operator_url}/deployments")
    out(
        f"Runs execute on a worker: PREFECT_API_URL={server.api_url} "
        f"prefect worker start --pool {WORK_POOL}"
    )
    refuse_if_held(held, "triển khai")
    return 0


# ---------------------------------------------------------------- simulate


def _print_where(server, result, mailbox: Path | None = None) -> None:
    from urllib.parse import quote

    from workflows.artifacts import summary_key
    from workflows.events import events_url

    ui = server.operator_url
    out("")
    out("Xem kết quả:")
    out(f"  Prefect, các lượt chạy (lọc theo thẻ plan:…, unit:…, cycle:…): {ui}/runs")
    out(f"  Bảng trạng thái, tóm tắt, báo cáo (status-…, summary-…, report-…): {ui}/artifacts")
    out(f"  Các lượt nộp trễ hạn: {ui}/runs?state={quote('Trễ hạn')}")
    year = str(result.start.year)
    for plan_id in result.plans:
        out(f"  Ai trễ, ai chưa gửi ({plan_id}): {ui}/artifacts/key/{summary_key(plan_id, year)}")
        # kehoach.nộp.trễ-hạn, kehoach.bản-nộp.đã-nhận, … of the plan's cycle only
        out(f"  Sự kiện kỳ {year} ({plan_id}): {events_url(ui, plan_id, year)}")
    if mailbox is not None:
        count = len(list(mailbox.glob("*.eml"))) if mailbox.exists() else 0
        out(f"  Hộp thư: {mailbox.resolve()} ({count} tệp .eml)")
    for path in result.reports:
        out(f"  Báo cáo: {Path(path).resolve()}")
    for plan_id in result.plans:
        out(
            f"  Bảng trạng thái (dòng lệnh): kehoach status {plan_id} --cycle {result.start.year}"
            f" --at {result.until.isoformat()}"
        )


def cmd_simulate(args: argparse.Namespace) -> int:
    """``kehoach simulate PLAN --from DATE --until DATE [--responses FILE]``."""
    from cli.running import enter_demo_mode
    from engine.store.db import migrate

    enter_demo_mode()
    from workflows.responses import ResponsesError
    from workflows.simulate import simulate

    start: dt.date = args.start
    until: dt.date = args.until
    if until < start:
        raise KehoachError(f"--until {until} trước --from {start}: hãy đổi chỗ hai ngày cho nhau")
    server = _prefect(settings().home)
    url = database_url(args)
    migrate(url)
    out(f"Prefect: {server.operator_url}   cơ sở dữ liệu kehoach: {url}")
    dispatch = not getattr(args, "no_email", False)
    mailbox = None
    conf = settings()
    local = conf.smtp_host in ("127.0.0.1", "localhost", "::1")
    # Only the default (this machine, port not set) may turn out to be someone else's.
    configured = "smtp_port" in conf.model_fields_set or not local
    if dispatch and not _smtp_to_use(conf, configured):
        if local:
            mailbox = _start_mailbox(conf.home / "mailbox", conf.smtp_port)
        else:
            out(
                f"Máy chủ thư SMTP {conf.smtp_host}:{conf.smtp_port} không trả lời: thư được "
                "xếp hàng, chưa gửi (gửi sau bằng lệnh `kehoach dispatch`)"
            )
            dispatch = False
    from cli.registry import foresee_stored
    from engine.ended import refuse_if_held
    from engine.store.db import session_scope
    from workflows.common import plan_ids_with_parents

    with session_scope(url) as session:
        chain = plan_ids_with_parents(session, args.plan)
        if getattr(args, "no_parents", False) or not chain:
            chain = [args.plan]
    held = foresee_stored(url, chain, list(range(start.year, until.year + 1)), quiet=True)
    try:
        result = simulate(
            args.plan,
            start,
            until,
            getattr(args, "responses", None),
            database_url=url,
            include_parents=not getattr(args, "no_parents", False),
            dispatch=dispatch,
            out=out,
        )
    except ResponsesError as exc:
        raise KehoachError(str(exc)) from None
    finally:
        if mailbox is not None:
            mailbox.stop()
    for line in result.summary_lines():
        out(line)
    _print_where(server, result, settings().home / "mailbox" if mailbox else None)
    out(f"  Máy chủ Prefect vẫn chạy; dừng bằng: {_stop_hint(server)}")
    restart = _restart_hint(server)
    if restart:
        out(f"  chạy lại sau (giữ các lượt chạy và giao diện): {restart}")
    refuse_if_held(held, f"mô phỏng {args.plan}")
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
        "audit-anchors.jsonl",  # the heads of the chain archived with it
    ):
        source = home / name
        if source.exists():
            shutil.move(str(source), str(target / name))
    connect.cache_clear()
    return target


def _smtp_to_use(conf: Settings, configured: bool) -> bool:
    """Whether the simulation mails the SMTP server of ``conf`` as it is: it answers, and
    it is the one the user ``configured`` (KEHOACH_SMTP_HOST/_PORT, the file) or a kehoach
    mailbox. A program that merely listens on the default port gets no unit's mail: the
    caller starts the mailbox instead (on a free port, said once)."""
    import socket

    from notifications.mailbox import is_mailbox

    try:
        with socket.create_connection((conf.smtp_host, conf.smtp_port), timeout=2):
            pass
    except OSError:
        return False
    return configured or is_mailbox(conf.smtp_host, conf.smtp_port)


def _start_mailbox(directory: Path, port: int | None = None):
    """The local mailbox (SMTP → .eml files) on ``port`` (default: the mailbox's 8025)
    or, when another program holds it, on a free port, said once; the dispatcher (this
    process's settings and the environment flow runs inherit) is pointed at the port
    actually used."""
    from notifications.mailbox import DEFAULT_PORT
    from workflows.server import port_moved_note

    asked = DEFAULT_PORT if port is None else port
    mailbox = _mailbox(directory, asked)
    os.environ.update(
        KEHOACH_SMTP_HOST=mailbox.host,
        KEHOACH_SMTP_PORT=str(mailbox.port),
        KEHOACH_SMTP_SECURITY="none",
    )
    settings.cache_clear()
    if mailbox.port != asked:
        out(
            "  "
            + port_moved_note(
                asked,
                f"hộp thư cục bộ đã chạy ở {mailbox.host}:{mailbox.port}",
                "thư của các đơn vị gửi tới cổng này, không tới chương trình kia",
            )
        )
    out(f"  hộp thư (SMTP {mailbox.host}:{mailbox.port}) → {directory.resolve()}")
    return mailbox


def _mailbox(directory: Path, port: int):
    """The mailbox on ``port`` when it is free, else on a free one (also when another
    program takes the port between the check and the start)."""
    from notifications.mailbox import start_mailbox_server
    from workflows.server import choose_port, free_port

    host = "127.0.0.1"
    first, _taken = choose_port(host, port)
    for candidate in (first, free_port(host)):
        try:
            return start_mailbox_server(directory, host, candidate)
        except (OSError, RuntimeError):
            continue
    raise KehoachError(
        "không khởi động được hộp thư cục bộ (SMTP) trên 127.0.0.1; kiểm tra cổng đang dùng"
    )


def cmd_demo(args: argparse.Namespace) -> int:
    """``kehoach demo``: the seed plan and its province over a simulated year, no manual step."""
    from cli.running import enter_demo_mode
    from engine.loader import load
    from engine.repository import store_catalog
    from engine.store.db import migrate, session_scope
    from workflows.register import deploy_plan
    from workflows.simulate import simulate

    enter_demo_mode()
    year = int(getattr(args, "year", None) or DEMO_YEAR)
    conf = settings()
    home = conf.home
    home.mkdir(parents=True, exist_ok=True)
    own_store = not (getattr(args, "database_url", None) or conf.database_url)
    url = database_url(args)
    out(f"kehoach demo: {SEED_PLAN} và kế hoạch cấp tỉnh, năm {year} (đồng hồ ảo)")

    # (a) Prefect on SQLite
    server = _prefect(home, getattr(args, "prefect_port", None))
    started = "vừa khởi động" if server.started_here else "dùng lại"
    out(f"  Prefect server ({started}): {server.operator_url}")
    # (b) the store
    if own_store:
        moved = _archive_previous(home, url)
        if moved is not None:
            out(f"  bản demo trước đã chuyển sang {moved}")
    migrate(url)
    out(f"  cơ sở dữ liệu kehoach: {url}")
    # (c) the mailbox
    mailbox_dir = home / "mailbox"
    mailbox = _start_mailbox(mailbox_dir)
    try:
        # (d) definitions
        files = sorted(DEFINITIONS.glob("*.yaml"))
        catalog = load(files)
        with session_scope(url) as session:
            stored = store_catalog(session, catalog)
        out(f"  đã nạp {len(stored)} định nghĩa từ {DEFINITIONS}")
        for plan_id in sorted(catalog.plans):
            deploy_plan(plan_id, database_url=url, paused=True)
        out("  đã đăng ký deployment, lịch chạy tạm dừng (năm này chạy theo đồng hồ ảo)")
        out("")
        # (e) the simulated year
        result = simulate(
            SEED_PLAN,
            dt.date(year, 1, 1),
            dt.date(year, 12, 31),
            DEMO_RESPONSES,
            database_url=url,
            out=out,
        )
    finally:
        mailbox.stop()
    # (f) where to look
    out("")
    for line in result.summary_lines():
        out(line)
    _print_where(server, result, mailbox_dir)
    out(f"  Máy chủ Prefect vẫn chạy; dừng bằng: {_stop_hint(server)}")
    restart = _restart_hint(server)
    if restart:
        out(f"  chạy lại sau (giữ các lượt chạy và giao diện): {restart}")
    return 0


# ---------------------------------------------------------------- python -m cli.flow


def flow_main(argv: list[str] | None = None) -> int:
    """``python -m cli.flow FLOW [--param NAME=VALUE ...]``: run one flow in this process.

    For operators and for tests that need a flow in a process of its own (the durability
    test kills one with SIGKILL).  FLOW is activate, sweep, consolidate, intake, review or
    dispatch; values are JSON when they parse as JSON (``--param years=[2023]``), else text.
    """
    from workflows.register import _flow_object

    parser = argparse.ArgumentParser(prog="python -m cli.flow")
    parser.add_argument(
        "flow",
        choices=[
            "activate",
            "sweep",
            "consolidate",
            "intake",
            "review",
            "approve-report",
            "dispatch",
        ],
    )
    parser.add_argument("--param", action="append", default=[], metavar="NAME=VALUE")
    args = parser.parse_args(argv)
    params = {}
    for item in args.param:
        name, _, raw = item.partition("=")
        try:
            params[name] = json.loads(raw)
        except json.JSONDecodeError:
            params[name] = raw
    result = _flow_object(args.flow)(**params)
    json.dump(result, sys.stdout, ensure_ascii=False, default=str)
    sys.stdout.write("\n")
    return 0


# ---------------------------------------------------------------- python -m cli.server


def server_main(argv: list[str] | None = None) -> int:
    """``python -m cli.server start|stop|status [HOME] [--port N]``."""
    from workflows.server import DEFAULT_HOST, DEFAULT_PORT, ensure_server, healthy, stop_server

    parser = argparse.ArgumentParser(prog="python -m cli.server")
    parser.add_argument("action", choices=["start", "stop", "status"])
    parser.add_argument("home", nargs="?", default="var/prefect", help="PREFECT_HOME")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT)
    args = parser.parse_args(argv)
    home = Path(args.home)
    if args.action == "stop":
        if stop_server(home):
            print(f"prefect server ({home}) stopped")
            return 0
        print(f"no prefect server started from {home} (no {home / 'server.pid'})")
        return 1
    if args.action == "status":
        api = f"http://{DEFAULT_HOST}:{args.port}/api"
        print(f"{api}: {'healthy' if healthy(api) else 'not answering'}")
        return 0 if healthy(api) else 1
    server = ensure_server(home, port=args.port, reuse_env=False)
    if (note := server.moved_note()) is not None:
        print(note, file=sys.stderr)
    print(f"prefect server at {server.ui_url} (PREFECT_HOME={home.resolve()})")
    return 0
