"""Benchmark: memory and time of activating 3,500 and 35,000 units, each in a process of
its own, on SQLite and PostgreSQL.

    .venv/bin/python benchmarks/bench_memory.py [--units 3500,35000] [--database sqlite,postgres]

For each size a store is built (benchmarks/scale_world.py: one plan assigning every
commune a yearly report and the ministry its consolidation, the registry and the plan
stored, nothing activated), then a new process activates the plan with the real
``engine.lifecycle.activate`` in one transaction, assignment emails included, and
reports:

- its peak RSS (``resource.getrusage(RUSAGE_SELF).ru_maxrss``) and its RSS before
  activation (imports done, nothing read);
- the peak of Python allocations during activation (``tracemalloc``, in a second run on
  a fresh copy of the store, since tracing slows the run);
- the wall time of the activation, per unit.

Targets (issue 14): 35,000 units < 1.5× the per-unit time of 3,500, peak < 500 MB, peak
memory independent of the number of units beyond a fixed buffer (the registry itself,
read into memory, grows with it: the figures say how much per unit).
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import scale_world as world  # noqa: E402

PLAN = world.plan_ids(1)[0]


def rss_mb() -> float:
    """This process's peak RSS so far, MB: ``VmHWM`` of /proc/self/status, which starts
    anew at exec (``ru_maxrss`` keeps the parent's peak from before the exec on Linux:
    the 35,000-unit parent's 575 MB showed as the child's)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child(url: str, trace: bool) -> dict:
    """Activate in this (new) process; what it cost."""
    import tracemalloc

    from engine.lifecycle import activate
    from engine.store.db import connect, session_scope

    connect(url)
    before = rss_mb()
    if trace:
        tracemalloc.start()
    started = time.perf_counter()
    with session_scope(url) as session:
        result = activate(session, PLAN, now=world.ACTIVATED, years=[2026])
    wall = time.perf_counter() - started
    traced = tracemalloc.get_traced_memory()[1] / 2**20 if trace else None
    return {
        "created": result.created,
        "queued": result.queued,
        "wall": wall,
        "rss_before": before,
        "rss_peak": rss_mb(),
        "traced_peak": traced,
    }


def run_child(url: str, trace: bool) -> dict:
    cmd = [sys.executable, __file__, "--child", url] + (["--trace"] if trace else [])
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"activation process failed:\n{done.stderr[-3000:]}")
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def measure(db: str, work: Path, units: int, trace: bool = True) -> dict:
    """Build the store (not timed), then activate it twice on fresh copies."""
    from engine.loader import load
    from engine.repository import store_catalog
    from engine.store.db import migrate, session_scope

    stores = world.Stores(db, work)
    stores.create_template()
    try:
        files = world.write_world(work / f"definitions-{units}", 1, units, 0)
        migrate(stores.template)
        with session_scope(stores.template) as session:
            store_catalog(session, load(files))
        out = {}
        for traced in (False, True) if trace else (False,):
            url = stores.copy()
            out["traced" if traced else "plain"] = run_child(url, traced)
            stores.drop(url)
    finally:
        stores.close()
    plain = out["plain"]
    return {**plain, "traced_peak": out.get("traced", plain)["traced_peak"], "units": units + 1}


def report(db: str, m: dict) -> str:
    n = m["units"]
    return (
        f"{db:8} {n:>6,} units  activation {m['wall']:.2f} s ({m['wall'] / n * 1000:.3f} ms a "
        f"unit, {m['created']:,} obligations, {m['queued']:,} emails)  |  RSS before "
        f"{m['rss_before']:.0f} MB, peak {m['rss_peak']:.0f} MB "
        f"(+{m['rss_peak'] - m['rss_before']:.0f})"
        + (
            f"  |  Python allocations' peak during activation {m['traced_peak']:.0f} MB "
            f"({m['traced_peak'] * 1024 / n:.1f} KB a unit)"
            if m["traced_peak"] is not None
            else ""
        )
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--units", default="3500,35000")
    parser.add_argument("--database", default="sqlite,postgres")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--trace", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--json", help="also write the figures to this file")
    parser.add_argument("--no-trace", action="store_true", help="skip the tracemalloc run")
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.trace)))
        return 0
    sizes = sorted(int(s) - 1 for s in args.units.split(","))  # the ministry is a unit too
    work = Path(tempfile.mkdtemp(prefix="kehoach-bench-memory-"))
    print(f"load average before: {world.load_average()}")
    failures, figures = [], []
    for db in args.database.split(","):
        if db == "postgres" and (why := world.postgres_reachable()):
            print(f"postgres: skipped, unreachable ({why})")
            continue
        found = {}
        for units in sizes:
            m = measure(db, work, units, trace=not args.no_trace)
            found[units] = m
            figures.append({"database": db, **m, "load": world.load_average()})
            print(report(db, m), flush=True)
            if m["rss_peak"] >= 500:
                failures.append(f"{db} {m['units']:,}: peak {m['rss_peak']:.0f} MB")
        small, large = found[sizes[0]], found[sizes[-1]]
        if large is not small:
            per = (large["wall"] / large["units"]) / (small["wall"] / small["units"])
            grew = large["rss_peak"] - small["rss_peak"]
            extra = large["units"] - small["units"]
            print(
                f"{db:8} per unit, {large['units']:,} / {small['units']:,}: {per:.2f}×  |  "
                f"peak RSS grew {grew:.0f} MB for {extra:,} more units "
                f"({grew * 1024 / extra:.1f} KB a unit)"
            )
            # The target compares the largest size with the one below it (35,000 with
            # 3,500), not with the smallest.
            below = found[sizes[-2]]
            per_below = (large["wall"] / large["units"]) / (below["wall"] / below["units"])
            print(f"{db:8} per unit, {large['units']:,} / {below['units']:,}: {per_below:.2f}×")
            if per_below >= 1.5:
                failures.append(f"{db} per-unit time {per_below:.2f}× of {below['units']:,}'s")
    shutil.rmtree(work, ignore_errors=True)
    print(f"load average after: {world.load_average()}")
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=1), encoding="utf-8")
    print(
        "targets (35,000 < 1.5× per unit of 3,500; peak < 500 MB): "
        + ("met" if not failures else "NOT met: " + "; ".join(failures))
    )
    return 0 if not failures else 1


if __name__ == "__main__":
    raise SystemExit(main())
