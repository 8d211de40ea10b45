"""Benchmark: the daily sweep over 10,000 and 100,000 open obligations, against the code
before issue 14, on SQLite and PostgreSQL.

    .venv/bin/python benchmarks/bench_sweep.py [--open 10000,100000] [--database sqlite,postgres]
        [--repeat 1] [--cases quiet,monday]

The store (benchmarks/scale_world.py): plans of 2,019 communes and one consolidation duty
(2,020 open obligations a plan: 5 plans ≈ 10,000, 50 plans ≈ 101,000), activated with the
real ``activate``. Two days:

- quiet: a Tuesday with nothing due anywhere;
- monday: two plans' 7-day reminders fall due (4,038 reminders) and every plan's
  consolidation duty gets its weekly digest (one per plan, 2,019 rows each).

Each measurement sweeps every plan, one transaction per plan as the sweep flow does,
on a fresh copy of the store, in a process of its own that first parses the plans (as
a running worker has). "before" is the same in a process whose ``engine`` is commit
``reference.BEFORE``'s, from a git worktree of it (benchmarks/reference.py), on another
fresh copy; the two alternate, and what they wrote (outbox rows by kind and key, audit
rows by action, overdue marks) is compared. Prints the wall time and this process's CPU time of each,
the ratio, and whether the targets hold (< 2 s quiet, < 10 s monday, at 100,000).
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import reference  # noqa: E402

reference.use_tree(sys.argv)  # before any kehoach import: --tree DIR is the code before
import scale_world as world  # noqa: E402

PER_PLAN = 2020  # 2,019 communes + the consolidation duty
TARGETS = {"quiet": 2.0, "monday": 10.0}  # seconds at 100,000 open (issue 14)


def sweep_all(url: str, plans: list[str], day) -> tuple[float, float, dict]:  # type: ignore[no-untyped-def]
    """Sweep every plan on ``day`` with whichever ``engine`` this process imported, one
    transaction each; (wall s, CPU s, counts)."""
    from engine.lifecycle import sweep
    from engine.store.db import session_scope

    counts = {"reminders": 0, "digests": 0, "overdue": 0, "open": 0}
    cpu, started = time.process_time(), time.perf_counter()
    for plan_id in plans:
        with session_scope(url) as session:
            result = sweep(session, plan_id, today=day)
        counts["reminders"] += len(result.reminders)
        counts["digests"] += len(result.digests)
        counts["overdue"] += len(result.overdue)
        counts["open"] += result.open_obligations
    wall, cpu = time.perf_counter() - started, time.process_time() - cpu
    return wall, cpu, counts


def in_process(url: str, plans: list[str], case: str, tree: Path | None) -> tuple:
    """Parse the plans, sweep them, fingerprint the writes: in a new process, on this
    tree or on ``tree``; (wall s, CPU s, counts, fingerprint)."""
    cmd = [sys.executable, __file__, "--child", url, "--plans", ",".join(plans)]
    cmd += ["--cases", case] + (["--tree", str(tree)] if tree else [])
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"sweep process failed:\n{done.stderr[-3000:]}")
    return tuple(json.loads(done.stdout.strip().splitlines()[-1]))


def child(url: str, plans: list[str], case: str) -> list:
    warm(url, plans)
    wall, cpu, counts = sweep_all(url, plans, world.QUIET if case == "quiet" else world.MONDAY)
    return [wall, cpu, counts, written(url)]


def written(url: str) -> str:
    """A fingerprint of what the sweep wrote: outbox keys and contexts, audit, overdue."""
    from sqlalchemy import func, select

    from engine.store.db import session_scope
    from engine.store.models import AuditEvent, Obligation, OutboxMessage

    digest = hashlib.sha256()
    with session_scope(url) as session:
        for key, kind, to, context in session.execute(
            select(
                OutboxMessage.idempotency_key,
                OutboxMessage.kind,
                OutboxMessage.to_addrs,
                OutboxMessage.context,
            )
            .where(OutboxMessage.kind != "assignment")
            .order_by(OutboxMessage.idempotency_key)
        ):
            # The link's token carries the time it was signed: left out.
            facts = sorted((k, v) for k, v in context.items() if k != "link")
            digest.update(repr((key, kind, to, facts)).encode())
        for action, count in session.execute(
            select(AuditEvent.action, func.count()).group_by(AuditEvent.action)
        ):
            digest.update(f"{action}={count}".encode())
        overdue = session.scalar(select(func.count()).where(Obligation.overdue.is_(True)))
        digest.update(f"overdue={overdue}".encode())
    return digest.hexdigest()[:12]


def warm(url: str, plans: list[str]) -> None:
    """Parse every plan and the registry once (the process caches them), as a running
    worker has: neither implementation pays it in its first measurement."""
    from sqlalchemy import select

    from engine.context import plan_context
    from engine.store.db import session_scope
    from engine.store.models import PlanVersion

    with session_scope(url) as session:
        for plan_id in plans:
            version = session.scalar(select(PlanVersion).where(PlanVersion.plan_id == plan_id))
            plan_context(session, version).view.unit("bo")


def measure(
    stores: world.Stores,
    plans: list[str],
    case: str,
    repeat: int,
    after_only: bool,
    before: Path | None,
) -> dict:
    runs: dict[str, list[tuple[float, float]]] = {"after": [], "before": []}
    prints: dict[str, set[str]] = {"after": set(), "before": set()}
    counts: dict[str, dict] = {}
    for r in range(repeat):
        order = ("after", "before") if r % 2 == 0 else ("before", "after")
        for which in order:
            if after_only and which == "before":
                continue
            url = stores.copy()
            tree = before if which == "before" else None
            wall, cpu, counts[which], fingerprint = in_process(url, plans, case, tree)
            prints[which].add(fingerprint)
            stores.drop(url)
            runs[which].append((wall, cpu))
    after = statistics.median(w for w, _ in runs["after"])
    before = statistics.median(w for w, _ in runs["before"]) if runs["before"] else float("nan")
    counts.setdefault("before", counts["after"])
    if after_only:
        prints["before"] = prints["after"]
    return {
        "runs": runs,
        "after": after,
        "before": before,
        "counts": counts,
        "same": prints["after"] == prints["before"] and len(prints["after"]) == 1,
    }


def report(db: str, size: int, case: str, m: dict) -> str:
    c = m["counts"]["after"]

    def fmt(runs: list[tuple[float, float]]) -> str:
        return ", ".join(f"{w:.2f} s ({cpu:.2f} CPU)" for w, cpu in runs)

    return (
        f"{db:8} {size:>7,} open  {case:6}  after {fmt(m['runs']['after'])}"
        f"  |  before {fmt(m['runs']['before'])}"
        f"  |  before/after {m['before'] / m['after']:.1f}×"
        f"  |  {c['reminders']} reminders, {c['digests']} digests, {c['open']} open counted"
        f"  |  same writes: {'yes' if m['same'] else 'NO'}"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--open", default="10000,100000", help="open obligations, comma list")
    parser.add_argument("--database", default="sqlite,postgres")
    parser.add_argument("--cases", default="quiet,monday")
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--units", type=int, default=PER_PLAN - 1)
    parser.add_argument("--soon", type=int, default=2, help="plans with Monday reminders")
    parser.add_argument(
        "--after-only", action="store_true", help="skip the reference (quick checks)"
    )
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--plans", help=argparse.SUPPRESS)
    parser.add_argument("--tree", help=argparse.SUPPRESS)
    parser.add_argument(
        "--before", default=reference.BEFORE, help="the commit to compare with (default: 96b0708)"
    )
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.plans.split(","), args.cases)))
        return 0
    with contextlib.ExitStack() as stack:
        before = None if args.after_only else stack.enter_context(reference.worktree(args.before))
        return _compare(args, before)


def _compare(args: argparse.Namespace, before: Path | None) -> int:
    sizes = sorted(int(s) for s in args.open.split(","))
    plan_counts = [max(args.soon, round(s / (args.units + 1))) for s in sizes]
    work = Path(tempfile.mkdtemp(prefix="kehoach-bench-sweep-"))
    files = world.write_world(work / "definitions", max(plan_counts), args.units, args.soon)
    print(f"load average before: {world.load_average()}")
    failures = []
    for db in args.database.split(","):
        if db == "postgres" and (why := world.postgres_reachable()):
            print(f"postgres: skipped, unreachable ({why})")
            continue
        stores = world.Stores(db, work)
        stores.create_template()
        built = 0
        try:
            for size, plans in zip(sizes, plan_counts, strict=True):
                ids = world.plan_ids(plans)
                seconds = _extend(stores.template, files, built, plans)
                built = plans
                print(f"{db}: {plans} plans activated ({seconds:.0f} s)", flush=True)
                for case in args.cases.split(","):
                    m = measure(stores, ids, case, args.repeat, args.after_only, before)
                    print(report(db, plans * (args.units + 1), case, m), flush=True)
                    if not m["same"]:
                        failures.append(f"{db} {size} {case}: writes differ")
                    if size >= 100_000 and m["after"] >= TARGETS[case]:
                        failures.append(f"{db} {size} {case}: {m['after']:.2f} s")
        finally:
            stores.close()
    shutil.rmtree(work, ignore_errors=True)
    print(f"load average after: {world.load_average()}")
    print(
        "targets (100,000 open: quiet < 2 s, monday < 10 s; same writes): "
        + ("met" if not failures else "NOT met: " + "; ".join(failures))
    )
    return 0 if not failures else 1


def _extend(url: str, files: list[Path], built: int, plans: int) -> float:
    """Activate plans ``built + 1 … plans`` in the template (the first call stores all)."""
    from engine.lifecycle import activate
    from engine.store.db import session_scope

    if built == 0:
        return world.build_store(url, files, plans)
    started = time.perf_counter()
    for plan_id in world.plan_ids(plans)[built:]:
        with session_scope(url) as session:
            activate(session, plan_id, now=world.ACTIVATED, years=[2026])
    return time.perf_counter() - started


if __name__ == "__main__":
    raise SystemExit(main())
