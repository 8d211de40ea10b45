"""Benchmark: activating a plan for 3,500 units, against one deployment run per unit.

    .venv/bin/python benchmarks/bench_activation.py [--units 3500] [--sample 20]

1. Starts its own Prefect server (SQLite, temporary PREFECT_HOME, free port).
2. Writes a synthetic registry — 34 provinces and their communes, 3,500 units — and a
   plan assigning a yearly report to all of them; stores both in a new SQLite store.
3. Runs the real ``activate`` flow once, in this process: one transaction writes the
   3,500 obligations and their assignment emails, then the fan-out is recorded as
   named task runs (per parent body above 400 units).  Prints its wall time, this
   process's peak RSS and the Prefect server's peak RSS (sampled).
4. Times the naive pattern on a sample: one deployment run per unit, executed by
   ``flow.serve(limit=8)`` in its own process (each run is a subprocess), doing the
   same per-unit work (upsert the unit's obligation, queue its email) in another
   store.  The runner polls every second (the default is 10 s), in the naive
   pattern's favour.  Prints the per-unit times and their ratio.

Targets (issue 3): 3,500 units in under 15 s including Prefect bookkeeping, at least
50× faster per unit than the naive pattern, under 500 MB.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import os
import resource
import secrets
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
# Assignment emails carry signed links, and links are signed only with a secret (engine.links
# fails closed): a throw-away one for this run, as the other benchmarks do.
os.environ.setdefault("KEHOACH_PORTAL_SECRET", secrets.token_urlsafe(48))

import yaml  # noqa: E402
from prefect import flow  # noqa: E402

PLAN = "bao-cao-nam-toan-quoc"


# ---------------------------------------------------------------- synthetic definitions
# 34 provinces and their communes (3,500 units), names made up ("Tỉnh 01", "Xã 01-103"),
# shaped like the 2025 reform (DOMAIN.md): no district level.

PROVINCES = 34
TOTAL_UNITS = 3500


def registry(provinces: int = PROVINCES, total: int = TOTAL_UNITS) -> dict:
    communes = total - provinces
    units: list[dict] = [
        {
            "id": "bo-noi-vu",
            "name": "Bộ Nội vụ (mẫu)",
            "kind": "ministry",
            "level": "central",
            "emails": ["vanthu@bonoivu.example"],
            "sample": True,
        }
    ]
    for p in range(1, provinces + 1):
        pid = f"ubnd-tinh-{p:02d}"
        units.append(
            {
                "id": pid,
                "name": f"Ủy ban nhân dân Tỉnh {p:02d}",
                "kind": "people-committee",
                "level": "province",
                "emails": [f"vanthu@tinh{p:02d}.example"],
                "sample": True,
            }
        )
        share = communes // provinces + (1 if p <= communes % provinces else 0)
        for c in range(1, share + 1):
            units.append(
                {
                    "id": f"ubnd-xa-{p:02d}-{c:03d}",
                    "name": f"Ủy ban nhân dân Xã {p:02d}-{c:03d}",
                    "kind": "commune-committee",
                    "level": "commune",
                    "parent": pid,
                    "emails": [f"xa{c:03d}@tinh{p:02d}.example"],
                    "sample": True,
                }
            )
    return {
        "kind": "registry",
        "id": "ca-nuoc-tong-hop",
        "name": "Đăng ký đơn vị tổng hợp: 34 tỉnh và các xã (dữ liệu mẫu)",
        "units": units,
        "groups": [
            {"id": "cac-tinh", "name": "UBND các tỉnh", "kinds": ["people-committee"]},
            {"id": "cac-xa", "name": "UBND các xã, phường", "kinds": ["commune-committee"]},
        ],
    }


def plan() -> dict:
    return {
        "kind": "plan",
        "id": "bao-cao-nam-toan-quoc",
        "registry": "ca-nuoc-tong-hop",
        "as_of": "2026-01-02",
        "start_year": 2026,
        "document": {
            "type": "KH",
            "number": None,
            "issuer": "Bộ Nội vụ (mẫu)",
            "issuer_unit": "bo-noi-vu",
            "summary": "Kế hoạch mẫu: báo cáo năm của mọi tỉnh và xã (đo hiệu năng kích hoạt)",
            "signer": {"name": "Người ký mẫu", "title": "BỘ TRƯỞNG"},
        },
        "assignments": [
            {
                "id": "cac-tinh",
                "section": "II.1",
                "heading": "UBND các tỉnh",
                "to": {"group": "cac-tinh"},
                "tasks": [{"id": "bao-cao-tinh", "text": "Báo cáo kết quả hằng năm."}],
            },
            {
                "id": "cac-xa",
                "section": "II.2",
                "heading": "UBND các xã, phường",
                "to": {"group": "cac-xa"},
                "tasks": [{"id": "bao-cao-xa", "text": "Báo cáo kết quả hằng năm."}],
            },
        ],
        "deliverables": [
            {
                "id": "bao-cao-nam",
                "kind": "report",
                "title": "Báo cáo năm",
                "routing": {"to": "bo-noi-vu"},
                "frequency": "yearly",
                "deadline": {
                    "rule": "yearly",
                    "day": 15,
                    "month": 11,
                    "policy": "next_working_day",
                },
                "template": "bao-cao-nam",
            }
        ],
        "report_templates": [
            {
                "id": "bao-cao-nam",
                "title": "Báo cáo năm",
                "fields": [
                    {
                        "id": "so-hoat-dong",
                        "label": "Số hoạt động",
                        "type": "integer",
                        "min": 0,
                        "aggregate": "sum",
                    },
                    {"id": "danh-gia", "label": "Đánh giá", "type": "text"},
                ],
            }
        ],
    }


def write_definitions(folder: Path) -> list[Path]:
    """Write the registry and the plan as YAML; return their paths."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = [folder / "registry_ca_nuoc.yaml", folder / "plan_bao_cao_nam.yaml"]
    for path, data in zip(paths, (registry(), plan()), strict=True):
        path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return paths


NOW = "2026-01-05T08:00:00+07:00"


# ---------------------------------------------------------------- the naive pattern


@flow(name="naive-unit-activation", persist_result=False)
def naive_unit_activation(plan_id: str, unit_id: str, now: str, database_url: str) -> int:
    """What one unit's activation does, in a deployment run of its own."""
    from sqlalchemy import select

    from engine.calendar import WorkCalendar, cycle_from_key, deadline
    from engine.outbox import enqueue_for_obligation
    from engine.repository import current_plan
    from engine.store.db import session_scope
    from engine.store.models import Cycle, Obligation, PlanInstance
    from workflows.common import resolve_now

    moment = resolve_now(now)
    with session_scope(database_url) as session:
        plan = current_plan(session, plan_id)
        deliverable = plan.deliverables[0]
        instance = session.scalar(select(PlanInstance).where(PlanInstance.plan_id == plan_id))
        cycle = session.scalar(select(Cycle).where(Cycle.instance_id == instance.id))
        found = session.scalar(
            select(Obligation).where(
                Obligation.cycle_id == cycle.id,
                Obligation.unit_id == unit_id,
                Obligation.deliverable_id == deliverable.id,
            )
        )
        if found is None:
            due = deadline(
                deliverable.deadline,
                cycle_from_key(cycle.key),
                instance.activated_on,
                WorkCalendar(),
            )
            found = Obligation(
                cycle_id=cycle.id,
                unit_id=unit_id,
                deliverable_id=deliverable.id,
                kind="report",
                assignment_ids=[],
                to_unit_id=deliverable.routing.to,
                via_unit_id=None,
                nominal_date=due.nominal,
                due_date=due.due,
                due_reason=due.reason,
                status="pending",
                overdue=False,
                token_version=1,
                created_at=moment,
                updated_at=moment,
            )
            session.add(found)
            session.flush()
        enqueue_for_obligation(session, found, "assignment", now=moment)
        return found.id


def serve_naive() -> None:
    naive_unit_activation.serve(name="naive", limit=8)


# ---------------------------------------------------------------- helpers


class PeakRss:
    """Sample a process tree's resident memory in a thread; keep the peak (bytes)."""

    def __init__(self, pid: int) -> None:
        import psutil

        self.process = psutil.Process(pid)
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _sample(self) -> int:
        import psutil

        total = 0
        for proc in [self.process, *self.process.children(recursive=True)]:
            with contextlib.suppress(psutil.Error):
                total += proc.memory_info().rss
        return total

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self._sample())
            time.sleep(0.05)

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def new_store(folder: Path, files: list[Path]) -> str:
    from engine.loader import load
    from engine.repository import store_catalog
    from engine.store.db import migrate, session_scope

    url = f"sqlite:///{folder / 'kehoach.sqlite'}"
    migrate(url)
    with session_scope(url) as session:
        store_catalog(session, load(files))
    return url


def mb(value: float) -> str:
    return f"{value / 2**20:.0f} MB"


# ---------------------------------------------------------------- main


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--units", type=int, default=TOTAL_UNITS)
    parser.add_argument("--sample", type=int, default=20, help="units for the naive pattern")
    parser.add_argument("--keep", action="store_true", help="keep the work folder")
    parser.add_argument("--serve-naive", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_naive:
        serve_naive()
        return 0

    from workflows.server import ensure_server, use_api

    work = Path(tempfile.mkdtemp(prefix="kehoach-bench-"))
    os.environ["KEHOACH_HOME"] = str(work / "home")
    print(f"work folder: {work}")
    server = ensure_server(work / "prefect", port=None, ui=False, reuse_env=False)
    os.environ["PREFECT_API_URL"] = server.api_url
    print(f"prefect server {server.api_url} up in {server.startup_seconds:.1f} s")
    try:
        with use_api(server.api_url):  # prefect was imported already: settings too
            return run(args, work, server)
    finally:
        server.stop()
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


def run(args: argparse.Namespace, work: Path, server) -> int:  # type: ignore[no-untyped-def]
    from sqlalchemy import func, select

    from engine.store.db import session_scope
    from engine.store.models import Obligation, OutboxMessage

    units_registry = registry(total=args.units)
    files = write_definitions(work / "definitions")
    if args.units != TOTAL_UNITS:
        files[0].write_text(yaml.safe_dump(units_registry, allow_unicode=True, sort_keys=False))
    units = [u["id"] for u in units_registry["units"] if u["id"] != "bo-noi-vu"]
    (work / "store").mkdir()
    url = new_store(work / "store", files)

    # ------------------------------------------------ the activate flow
    from workflows.activate import activate_flow

    with PeakRss(server.pid) as server_rss:
        started = time.perf_counter()
        result = activate_flow(PLAN, now=NOW, years=[2026], database_url=url, dispatch=False)
        activation = time.perf_counter() - started
    own_peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    with session_scope(url) as session:
        obligations = session.scalar(select(func.count(Obligation.id)))
        emails = session.scalar(select(func.count(OutboxMessage.id)))
    print()
    print(
        f"activate flow, {len(units)} units: {activation:.2f} s wall "
        f"({activation / len(units) * 1000:.2f} ms per unit), "
        f"{obligations} obligations, {emails} assignment emails queued, "
        f"{result['fanout_task_runs']} fan-out task runs"
    )
    print(f"  peak RSS: this process {mb(own_peak)}, Prefect server {mb(server_rss.peak)}")

    # ------------------------------------------------ the naive pattern
    from prefect.client.orchestration import get_client
    from prefect.deployments import run_deployment

    from engine.lifecycle import activate

    (work / "naive").mkdir()
    naive_url = new_store(work / "naive", files)
    # Instance and cycle exist already (as after a cycle start); each run adds one unit.
    with session_scope(naive_url) as session:
        activate(session, PLAN, now=dt.datetime.fromisoformat(NOW), years=[2026])
        session.execute(OutboxMessage.__table__.delete())
        session.execute(Obligation.__table__.delete())
    env = dict(os.environ, PREFECT_RUNNER_POLL_FREQUENCY="1")
    runner = subprocess.Popen(
        [sys.executable, str(Path(__file__).resolve()), "--serve-naive"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 60
        with get_client(sync_client=True) as client:
            while True:
                try:
                    client.read_deployment_by_name("naive-unit-activation/naive")
                    break
                except Exception:
                    if time.monotonic() > deadline or runner.poll() is not None:
                        raise RuntimeError("the naive runner did not start") from None
                    time.sleep(0.5)
        time.sleep(2)  # let the runner poll once before the clock starts
        sample = units[: args.sample]
        with PeakRss(runner.pid) as runner_rss:
            started = time.perf_counter()
            runs = [
                run_deployment(
                    "naive-unit-activation/naive",
                    parameters={
                        "plan_id": PLAN,
                        "unit_id": unit,
                        "now": NOW,
                        "database_url": naive_url,
                    },
                    timeout=0,
                ).id
                for unit in sample
            ]
            with get_client(sync_client=True) as client:
                while True:
                    states = [client.read_flow_run(r).state for r in runs]
                    if all(s.is_final() for s in states):
                        break
                    if time.perf_counter() - started > 600:
                        raise RuntimeError("naive runs did not finish in 10 minutes")
                    time.sleep(0.2)
            naive = time.perf_counter() - started
        failed = [s for s in states if not s.is_completed()]
    finally:
        os.killpg(os.getpgid(runner.pid), 15)
        runner.wait(timeout=30)
    with session_scope(naive_url) as session:
        naive_rows = session.scalar(select(func.count(Obligation.id)))
    per_unit_naive = naive / len(sample)
    per_unit_flow = activation / len(units)
    print()
    print(
        f"naive pattern, {len(sample)} deployment runs (serve, limit 8): {naive:.2f} s wall, "
        f"{per_unit_naive:.3f} s per unit, {naive_rows} obligations written"
        + (f", {len(failed)} runs FAILED" if failed else "")
    )
    print(f"  peak RSS of the runner and its flow-run processes: {mb(runner_rss.peak)}")
    print(f"  naive for {len(units)} units would take ~{per_unit_naive * len(units) / 60:.0f} min")
    print()
    ratio = per_unit_naive / per_unit_flow
    print(f"ratio per unit: {ratio:.0f}× faster  (target ≥ 50×)")
    ok = activation < 15 and ratio >= 50 and own_peak < 500 * 2**20 and not failed
    print(
        f"targets: 3,500 units < 15 s: {'yes' if activation < 15 else 'NO'}; "
        f"≥ 50×: {'yes' if ratio >= 50 else 'NO'}; "
        f"< 500 MB: {'yes' if own_peak < 500 * 2**20 else 'NO'}"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
