"""Portal latency under a steady open-loop load on loopback.

    .venv/bin/python benchmarks/bench_portal.py [--rate 100] [--seconds 20] [--units 200]

The portal (uvicorn, SQLite in WAL mode) runs in its own process on 127.0.0.1; this
process drives it with a raw-socket HTTP/1.1 client on keep-alive connections, every
request's bytes built before its phase (benchmarks/http_load.py: the generator shares
the cores it measures, so it must be cheap; its CPU per request is printed), 32 or more
connections opened before the load and spread evenly over the workers (a keep-alive
connection stays with the worker that accepted it). Open loop: request
i is *scheduled* at t0 + i/rate whatever earlier answers did, and its latency is
measured from that scheduled moment, so a slow server cannot hide its queueing
(no coordinated omission). Two phases, one after the other:

- GET  /o/{token}: the obligation page with its form (round robin over the units);
- POST /o/{token}/submit: a report without file (CSRF cookie + field as a browser
  sends them), answered by a 303 to the receipt; each stored answer is then handed
  to intake off the request (portal.handoff: at once when idle, else batched every
  KEHOACH_INTAKE_BATCH_SECONDS).

Where intake runs (``--intake``):
- ``prefect`` (the production set-up): a real ``prefect server start`` on a free port
  (temporary home, SQLite), the plan deployed (``workflows.register.deploy_plan``); the
  portal creates intake flow runs through the API. With ``--worker`` a process worker
  (``prefect worker start --pool kehoach``) also runs them on this machine, and the
  time until every answer is taken in is printed.
- ``inline``: Prefect unreachable, the portal's fallback: intake in the portal process.
- ``none``: nothing is handed over (a lower bound for the request itself).

``--database postgres`` runs on a throw-away database of the machine's PostgreSQL
(``KEHOACH_BENCH_POSTGRES_ADMIN_URL``, default postgres@127.0.0.1:5432, trust auth),
the set-up for several portal workers (``--workers 2``); the default is a SQLite file.

Data: a synthetic registry of ``--units`` communes, each owing the yearly report of a
plan shaped like tests/data/portal/plan.yaml, activated for 2027; the clock is fixed
at 1/9/2027 09:00 (KEHOACH_NOW) so every POST is on time and versions accumulate.
The per-obligation and per-address rate limits are raised for the run (one client address
sends everything); they still run, so their cost is measured.

Targets: p99 < 50 ms for GET, < 200 ms for POST. ``--strict`` exits 1 when missed.
Also printed: the server's CPU time per request (all its processes), which bounds the
rate one core can serve whatever else runs on the machine.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SECRET = "bench-portal-secret-0c1f7a-5d2e9b40c7a1"
NOW = "2027-09-01T09:00:00+07:00"
TARGETS_MS = {"GET": 50.0, "POST": 200.0}


# ---------------------------------------------------------------- data


def write_definitions(folder: Path, units: int) -> list[Path]:
    plan_text = (ROOT / "tests" / "data" / "portal" / "plan.yaml").read_text(encoding="utf-8")
    plan_text = plan_text.replace("registry: portal-test", "registry: bench-portal")
    lines = [
        "kind: registry",
        "id: bench-portal",
        "name: Đơn vị đo tải cổng tiếp nhận",
        "units:",
        "  - {id: ubnd-huyen, name: Ủy ban nhân dân huyện Hạ Lang, kind: people-committee,"
        " level: district, emails: [vanthu@bench.example]}",
        "  - {id: ca-huyen, name: Công an huyện Hạ Lang, kind: police, level: district,"
        " parent: ubnd-huyen, emails: [cah@bench.example]}",
    ]
    for i in range(units):
        lines.append(
            f"  - {{id: xa-{i:04d}, name: Ủy ban nhân dân xã Số {i}, kind: commune-committee,"
            f" level: commune, parent: ubnd-huyen, emails: [xa{i:04d}@bench.example]}}"
        )
    lines += [
        "groups:",
        "  - {id: ubnd-cac-xa, name: 'UBND các xã, thị trấn', parents: [ubnd-huyen],"
        " kinds: [commune-committee]}",
    ]
    registry = folder / "registry.yaml"
    registry.write_text("\n".join(lines) + "\n", encoding="utf-8")
    plan = folder / "plan.yaml"
    plan.write_text(plan_text, encoding="utf-8")
    return [registry, plan]


def prepare(home: Path, db_url: str, units: int) -> list[str]:
    """Load and activate; return one link token per report obligation."""
    import datetime as dt

    from sqlalchemy import select

    from engine.config import load_settings, settings
    from engine.lifecycle import activate
    from engine.links import make_token
    from engine.loader import load
    from engine.repository import store_catalog
    from engine.store.db import migrate, session_scope
    from engine.store.models import Obligation

    conf = load_settings({"KEHOACH_PORTAL_SECRET": SECRET, "KEHOACH_HOME": str(home)})
    # the activation mails links signed with the settings of the environment
    os.environ["KEHOACH_PORTAL_SECRET"] = SECRET
    settings.cache_clear()
    migrate(db_url)
    catalog = load(write_definitions(home, units))
    now = dt.datetime.fromisoformat(NOW)
    with session_scope(db_url) as session:
        store_catalog(session, catalog)
        activate(session, "portal-pccc", now=now - dt.timedelta(days=12), years=[2027])
    with session_scope(db_url) as session:
        rows = session.scalars(
            select(Obligation).where(Obligation.deliverable_id == "bao-cao-nam")
        ).all()
        return [make_token(o.id, o.unit_id, o.cycle.key, o.token_version, conf) for o in rows]


# ---------------------------------------------------------------- the server process


def bench_app():  # type: ignore[no-untyped-def]
    """The portal of one server process (a uvicorn factory: settings from the environment)."""
    import logging

    from engine.config import settings
    from portal.app import create_app
    from portal.ratelimit import PortalLimits, Rate

    logging.getLogger("kehoach.portal").setLevel(logging.WARNING)
    lots = Rate(10_000.0, 10_000.0)
    limits = PortalLimits(per_address=lots, link_read=lots, link_write=lots, address_write=lots)
    db_url = os.environ["KEHOACH_DATABASE_URL"]
    mode = os.environ["BENCH_INTAKE"]
    if mode == "inline":
        return create_app(settings(), db_url, limits=limits, intake_flow=False, own_process=True)
    if mode == "prefect":  # what `kehoach portal` does: hand over to the intake flow
        return create_app(settings(), db_url, limits=limits, own_process=True)
    return create_app(settings(), db_url, limits=limits, handoff=lambda _id: None, own_process=True)


def serve(port: int, workers: int) -> None:
    """The way ``kehoach portal`` serves (portal.server), with the bench's app factory."""
    import uvicorn

    from portal.server import serve_workers

    options = dict(host="127.0.0.1", port=port, log_level="warning", access_log=False)
    if workers == 1:
        uvicorn.run("bench_portal:bench_app", factory=True, **options)  # type: ignore[arg-type]
    else:
        serve_workers("bench_portal:bench_app", workers, **options)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(
    port: int, db_url: str, home: Path, intake: str, workers: int = 1, api_url: str | None = None
) -> subprocess.Popen:
    env = {
        **os.environ,
        "KEHOACH_HOME": str(home),
        "KEHOACH_DATABASE_URL": db_url,
        "KEHOACH_PORTAL_SECRET": SECRET,
        "KEHOACH_PORTAL_BASE_URL": f"http://127.0.0.1:{port}",
        "KEHOACH_NOW": NOW,
        "BENCH_INTAKE": intake,
        "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "benchmarks")]),
    }
    env.pop("KEHOACH_CONFIG", None)
    env.pop("PREFECT_API_URL", None)
    if api_url:
        env["PREFECT_API_URL"] = api_url
    cmd = [sys.executable, __file__, "--serve", "--port", str(port), "--workers", str(workers)]
    proc = subprocess.Popen(cmd, env=env, cwd=str(home))
    import urllib.request

    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"the portal exited with code {proc.returncode}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1):
                return proc
        except OSError:
            time.sleep(0.1)
    proc.terminate()
    raise SystemExit("the portal did not answer /healthz within 30 s")


# ---------------------------------------------------------------- PostgreSQL


@contextlib.contextmanager
def postgres_database():  # type: ignore[no-untyped-def]
    """A new database on the machine's PostgreSQL, dropped afterwards; yields its URL."""
    import uuid

    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url
    from sqlalchemy.pool import NullPool

    admin_url = os.environ.get(
        "KEHOACH_BENCH_POSTGRES_ADMIN_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
    )
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT", poolclass=NullPool)
    name = f"kehoach_bench_{uuid.uuid4().hex[:10]}"
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:
        raise SystemExit(f"PostgreSQL unreachable at {admin_url}: {exc}") from None
    try:
        yield make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


# ---------------------------------------------------------------- Prefect


def start_prefect(home: Path, db_url: str):  # type: ignore[no-untyped-def]
    """A fresh Prefect server (its own home, free port) with the bench plan deployed."""
    from workflows.register import deploy_plan
    from workflows.server import ensure_server, use_api

    server = ensure_server(home / "prefect", port=None, ui=False, reuse_env=False)
    with use_api(server.api_url):
        deploy_plan("portal-pccc", database_url=db_url, with_dispatch=False)
    return server, server.api_url


def start_worker(home: Path, db_url: str, api_url: str) -> subprocess.Popen:
    """``prefect worker start --pool kehoach``: runs the intake flow runs as they come."""
    env = {
        **os.environ,
        "PREFECT_API_URL": api_url,
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "KEHOACH_HOME": str(home),
        "KEHOACH_DATABASE_URL": db_url,
        "KEHOACH_NOW": NOW,
        "PYTHONPATH": str(ROOT),
    }
    log = open(home / "worker.log", "ab")  # noqa: SIM115 (kept open for the child)
    return subprocess.Popen(
        [sys.executable, "-m", "prefect", "worker", "start", "--pool", "kehoach"],
        env=env,
        cwd=str(ROOT),
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def stop_group(proc: subprocess.Popen) -> None:
    import signal

    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=20)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)


def intake_report(db_url: str, api_url: str | None, worker: bool, wait: float = 180.0) -> str:
    """How the answers were handed over; with a worker, how long until all were taken in."""
    from sqlalchemy import func, select

    from engine.store.db import session_scope
    from engine.store.models import Submission

    def pending() -> tuple[int, int]:
        with session_scope(db_url) as session:
            total = session.scalar(
                select(func.count()).select_from(Submission).where(Submission.source == "portal")
            )
            left = session.scalar(
                select(func.count())
                .select_from(Submission)
                .where(Submission.source == "portal", Submission.intake_done.is_(False))
            )
            return int(total or 0), int(left or 0)

    started = time.monotonic()
    total, left = pending()
    runs = ""
    if api_url:
        from workflows.server import use_api

        def handed() -> list[int]:
            with use_api(api_url):
                from prefect.client.orchestration import get_client
                from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterName

                with get_client(sync_client=True) as client:
                    found = client.read_flow_runs(
                        flow_run_filter=FlowRunFilter(name=FlowRunFilterName(like_="nộp")),
                        limit=200,
                    )
            return [len(r.parameters.get("submission_ids") or [1]) for r in found]

        # The last answers wait out the hand-over interval (10 s) in each portal process.
        sizes = handed()
        while sum(sizes) < total and time.monotonic() - started < 30:
            time.sleep(1.0)
            sizes = handed()
        runs = (
            f"; {len(sizes)} intake flow runs created for {sum(sizes)} answers "
            f"{time.monotonic() - started:.0f} s after the load "
            f"(largest {sorted(sizes, reverse=True)[:4]})"
        )
        total, left = pending()
    if worker:
        while left and time.monotonic() - started < wait:
            time.sleep(1.0)
            total, left = pending()
        return (
            f"intake: {total - left}/{total} answers taken in by the worker "
            f"{time.monotonic() - started:.0f} s after the load ended{runs}"
        )
    return f"intake: {total - left}/{total} answers taken in by the end of the phase{runs}"


# ---------------------------------------------------------------- load


def cpu_seconds(pid: int) -> float:
    """User + system CPU of the server process and its children (uvicorn workers)."""
    import psutil

    root = psutil.Process(pid)
    total = 0.0
    for proc in [root, *root.children(recursive=True)]:
        try:
            times = proc.cpu_times()
        except psutil.NoSuchProcess:
            continue
        total += times.user + times.system
    return total


async def drive(
    port: int,
    tokens: list[str],
    rate: float,
    seconds: float,
    server_pid: int,
    phases: tuple[str, ...] = ("GET", "POST"),
    workers: int = 1,
) -> dict[str, dict]:
    """Both phases with the raw-socket client (benchmarks/http_load.py): every request's
    bytes are built before its phase, so the client spends its CPU sending and reading."""
    from http_load import (
        Pool,
        balance,
        connections_per_worker,
        get_bytes,
        open_loop,
        percentile,
        post_form_bytes,
    )

    host = f"127.0.0.1:{port}"
    pool = Pool("127.0.0.1", port, size=64)
    await pool.open(32)  # 32 connections before the load, as many on each worker
    try:
        await balance(pool, server_pid, port, workers)
        # warm-up (not measured): the browser's nonce cookie, then one GET per link for
        # its CSRF field, as a browser that opened the link sends them, spread over the
        # connections (so every worker has rendered the page once)
        first = await pool.request(get_bytes(host, f"/o/{tokens[0]}"))
        found = re.search(r"kh_nonce=([^;\s]+)", first.headers.get("set-cookie", ""))
        assert first.status == 200 and found, f"no nonce cookie ({first.status})"
        cookie = f"kh_nonce={found.group(1)}"
        pages = await asyncio.gather(
            *(pool.request(get_bytes(host, f"/o/{token}", cookie)) for token in tokens)
        )
        csrf: dict[str, str] = {}
        for token, page in zip(tokens, pages, strict=True):
            field = re.search(rb'name="csrf" value="([^"]+)"', page.body)
            assert page.status == 200 and field, f"no CSRF field ({page.status})"
            csrf[token] = field.group(1).decode()
        await balance(pool, server_pid, port, workers)  # the warm-up may have opened more

        def get(i: int) -> bytes:
            return get_bytes(host, f"/o/{tokens[i % len(tokens)]}", cookie)

        def post(i: int) -> bytes:
            token = tokens[i % len(tokens)]
            data = {
                "csrf": csrf[token],
                "f-so-vu-chay": str(i % 7),
                "f-ty-le-tap-huan": "97,5",
                "f-dan-phong": "Đã rà soát",
                "f-ngay-ra-soat": "2027-08-30",
                "f-ket-qua": f"Lần đo {i}: tuyên truyền tại các thôn, kiện toàn đội dân phòng.",
            }
            return post_form_bytes(host, f"/o/{token}/submit", data, cookie)

        results = {}
        total = int(rate * seconds)
        for name, build, ok in (("GET", get, {200}), ("POST", post, {303})):
            if name not in phases:
                continue
            requests = [build(i) for i in range(total)]
            spread = connections_per_worker(server_pid, port)
            cpu_before = cpu_seconds(server_pid)
            run = await open_loop(pool, requests, rate)
            await asyncio.sleep(1.0)  # background intake of the last answers
            cpu = cpu_seconds(server_pid) - cpu_before
            n = max(1, len(run.latencies))
            results[name] = {
                "cpu_ms": cpu / n * 1000,
                "client_cpu_ms": run.client_cpu / n * 1000,
                "lag_p99": percentile(run.lags, 99),
                "n": len(run.latencies),
                "rate": len(run.latencies) / run.elapsed,
                "p50": percentile(run.latencies, 50),
                "p99": percentile(run.latencies, 99),
                "max": max(run.latencies),
                "statuses": run.statuses,
                "errors": sum(c for s, c in run.statuses.items() if s not in ok),
                "connections": spread,
            }
        return results
    finally:
        pool.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rate", type=float, default=100.0, help="requests per second")
    parser.add_argument("--seconds", type=float, default=20.0, help="length of each phase")
    parser.add_argument("--units", type=int, default=40, help="communes (links) in the data")
    parser.add_argument(
        "--intake",
        choices=["prefect", "inline", "none"],
        default="prefect",
        help="prefect: intake flow runs on a real Prefect server (default); inline: the "
        "portal's fallback when Prefect is down; none: nothing handed over",
    )
    parser.add_argument(
        "--worker",
        action="store_true",
        help="with --intake prefect: also run a process worker that executes the intake runs",
    )
    parser.add_argument(
        "--phases", default="get,post", help="comma-separated: get, post (default both)"
    )
    parser.add_argument("--workers", type=int, default=1, help="uvicorn worker processes")
    parser.add_argument(
        "--database",
        choices=["sqlite", "postgres"],
        default="sqlite",
        help="a SQLite file (default) or a throw-away PostgreSQL database",
    )
    parser.add_argument("--strict", action="store_true", help="exit 1 when a target is missed")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve:
        serve(args.port, args.workers)
        return 0
    if not 0 < args.rate <= 1000 or not 0 < args.seconds <= 300:
        parser.error("keep --rate within (0, 1000] and --seconds within (0, 300]")

    load_before = os.getloadavg()[0]
    with (
        contextlib.ExitStack() as stack,
        tempfile.TemporaryDirectory(prefix="kehoach-bench-portal-") as tmp,
    ):
        home = Path(tmp)
        db_url = (
            f"sqlite:///{home / 'kehoach.sqlite'}"
            if args.database == "sqlite"
            else stack.enter_context(postgres_database())
        )
        started = time.perf_counter()
        tokens = prepare(home, db_url, args.units)
        print(
            f"data: {len(tokens)} report links, prepared in {time.perf_counter() - started:.1f} s"
        )
        prefect = worker = None
        api_url = None
        intake_note = ""
        if args.intake == "prefect":
            prefect, api_url = start_prefect(home, db_url)
            if args.worker:
                worker = start_worker(home, db_url, api_url)
        port = free_port()
        server = start_server(port, db_url, home, args.intake, args.workers, api_url)
        try:
            results = asyncio.run(
                drive(
                    port,
                    tokens,
                    args.rate,
                    args.seconds,
                    server.pid,
                    tuple(p.strip().upper() for p in args.phases.split(",") if p.strip()),
                    args.workers,
                )
            )
            if args.intake != "none" and "POST" in results:
                intake_note = intake_report(db_url, api_url, worker is not None)
        finally:
            server.terminate()
            try:
                server.wait(timeout=20)
            except subprocess.TimeoutExpired:
                server.kill()
            if worker is not None:
                stop_group(worker)
            if prefect is not None:
                from workflows.server import stop_server

                stop_server(home / "prefect")

    print(
        f"open loop, {args.rate:g} req/s for {args.seconds:g} s per phase; uvicorn "
        f"({args.workers} worker{'s' if args.workers > 1 else ''}) + {'PostgreSQL' if args.database == 'postgres' else 'SQLite'} on loopback; "
        f"intake {args.intake}{' + worker' if args.worker else ''}; {os.cpu_count()} CPUs, "
        f"load average before {load_before:.1f}"
    )
    if intake_note:
        print(intake_note)
    missed = False
    for name, result in results.items():
        target = TARGETS_MS[name]
        verdict = "ok" if result["p99"] < target and not result["errors"] else "MISSED"
        missed |= verdict != "ok"
        label = (
            "GET  /o/{token} (form page)" if name == "GET" else "POST /o/{token}/submit (no file)"
        )
        print(
            f"{label:34} n={result['n']:5d} at {result['rate']:6.1f}/s  "
            f"p50 {result['p50']:6.1f} ms  p99 {result['p99']:6.1f} ms  max {result['max']:6.1f} ms"
            f"  target p99 < {target:g} ms: {verdict}  statuses {result['statuses']}"
        )
        print(
            f"{'':34} server CPU {result['cpu_ms']:.1f} ms per request "
            f"(one core serves at most ~{1000 / max(result['cpu_ms'], 0.01):.0f}/s); "
            f"client CPU {result['client_cpu_ms']:.2f} ms, client start lag p99 "
            f"{result['lag_p99']:.1f} ms; connections per worker {result['connections']}"
        )
    return 1 if (missed and args.strict) else 0


if __name__ == "__main__":
    sys.exit(main())
