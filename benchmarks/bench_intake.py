"""Benchmark: intake of 350 and 3,500 submissions in batches, against the code before
issue 14, on SQLite and PostgreSQL.

    .venv/bin/python benchmarks/bench_intake.py [--answers 350,3500] [--database sqlite,postgres]
        [--repeat 1]

One plan (benchmarks/scale_world.py) of ``answers`` communes, activated with the real
``activate``; every commune's report is recorded (``record_submission``, not timed: that
is the portal's part). Then everything is taken in as the intake flow's batch task does
(``engine.batches.in_chunks``: 20 answers a transaction; on SQLite a pause as long as the
chunk took, at most 0.2 s, to leave the lock to the portal): "after" with this tree's
``engine.lifecycle.intake_many``, "before" with the ``intake`` of commit
``reference.BEFORE`` one answer at a time (a count of the cycle's open duties per
answer, each receipt queued on its own), from a git worktree of it
(benchmarks/reference.py). Each in a process of its own on a fresh copy of the store;
the two alternate.

Prints the wall time with the pauses, the time inside the transactions (without them),
per answer, and the ratio of the per-answer cost at the largest size to the smallest
(target: 3,500 in < 10 s, per answer within 1.3× of 350's).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import importlib
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

ANSWERED = world.QUIET  # every answer comes in on time
PLAN = world.plan_ids(1)[0]


def record_all(url: str) -> list[int]:
    """One report per commune, recorded as the portal does; returns the submission ids."""
    from sqlalchemy import select

    from engine.calendar import start_of_day
    from engine.lifecycle import record_submission
    from engine.store.db import session_scope
    from engine.store.models import Obligation

    moment = start_of_day(ANSWERED) + dt.timedelta(hours=9)
    with session_scope(url) as session:
        ids = list(
            session.scalars(
                select(Obligation.id).where(Obligation.kind == "report").order_by(Obligation.id)
            )
        )
    out = []
    for start in range(0, len(ids), 500):
        with session_scope(url) as session:
            for oid in ids[start : start + 500]:
                out.append(record_submission(session, oid, values={"so-vu": "3"}, now=moment).id)
    return out


def take_in_all(url: str, ids: list[int]) -> tuple[float, float, float, int]:
    """The flow's batch intake with whichever ``engine`` this process imported; (wall s
    with the pauses, s inside transactions, CPU s of this process inside them, receipts)."""
    from sqlalchemy import func, select

    from engine.batches import in_chunks
    from engine.calendar import start_of_day

    module = importlib.import_module("engine.lifecycle.intake")
    from engine.store.db import session_scope
    from engine.store.models import OutboxMessage

    many = getattr(module, "intake_many", None)  # the code before took one at a time

    moment = start_of_day(ANSWERED) + dt.timedelta(hours=10)
    inside = cpu = 0.0

    def take(chunk: list[int]) -> list[object]:
        nonlocal inside, cpu
        began, began_cpu = time.perf_counter(), time.process_time()
        with session_scope(url) as session:
            if many is None:
                done = [module.intake(session, sid, now=moment) for sid in chunk]
            else:
                done = list(many(session, chunk, now=moment))
        inside += time.perf_counter() - began
        cpu += time.process_time() - began_cpu
        return done

    started = time.perf_counter()
    taken, failed = in_chunks(ids, take, sqlite=url.startswith("sqlite"))
    wall = time.perf_counter() - started
    if failed or len(taken) != len(ids):
        raise RuntimeError(f"intake failed: {list(failed.items())[:3]}")
    with session_scope(url) as session:
        receipts = session.scalar(select(func.count()).where(OutboxMessage.kind == "receipt"))
    return wall, inside, cpu, int(receipts or 0)


def in_process(
    url: str, ids: list[int], tree: Path | None, work: Path
) -> tuple[float, float, float, int]:
    """:func:`take_in_all` in a new process, on this tree or on ``tree``."""
    listing = work / f"ids-{len(ids)}.json"
    listing.write_text(json.dumps(ids), encoding="utf-8")
    cmd = [sys.executable, __file__, "--child", url, "--ids", str(listing)]
    cmd += ["--tree", str(tree)] if tree else []
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"intake process failed:\n{done.stderr[-3000:]}")
    wall, inside, cpu, receipts = json.loads(done.stdout.strip().splitlines()[-1])
    return wall, inside, cpu, int(receipts)


def measure(db: str, work: Path, answers: int, repeat: int, before: Path) -> dict:
    stores = world.Stores(db, work)
    stores.create_template()
    try:
        files = world.write_world(work / f"definitions-{answers}", 1, answers, 0)
        world.build_store(stores.template, files, 1)
        ids = record_all(stores.template)
        runs: dict[str, list[tuple[float, float, float]]] = {"after": [], "before": []}
        for r in range(repeat):
            for which in ("after", "before") if r % 2 == 0 else ("before", "after"):
                url = stores.copy()
                tree = before if which == "before" else None
                wall, inside, cpu, receipts = in_process(url, ids, tree, work)
                if receipts != answers:
                    raise RuntimeError(f"{which}: {receipts} receipts for {answers} answers")
                runs[which].append((wall, inside, cpu))
                stores.drop(url)
    finally:
        stores.close()
    return {
        "runs": runs,
        "after": statistics.median(r[1] for r in runs["after"]),
        "before": statistics.median(r[1] for r in runs["before"]),
        "after_wall": statistics.median(r[0] for r in runs["after"]),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--answers", default="350,3500")
    parser.add_argument("--database", default="sqlite,postgres")
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--ids", help=argparse.SUPPRESS)
    parser.add_argument("--tree", help=argparse.SUPPRESS)
    parser.add_argument(
        "--before", default=reference.BEFORE, help="the commit to compare with (default: 96b0708)"
    )
    args = parser.parse_args()
    if args.child:
        ids = json.loads(Path(args.ids).read_text(encoding="utf-8"))
        print(json.dumps(take_in_all(args.child, ids)))
        return 0
    with contextlib.ExitStack() as stack:
        return _compare(args, stack)


def _compare(args: argparse.Namespace, stack: contextlib.ExitStack) -> int:
    sizes = sorted(int(s) for s in args.answers.split(","))
    work = Path(tempfile.mkdtemp(prefix="kehoach-bench-intake-"))
    print(f"load average before: {world.load_average()}")
    failures = []
    before = stack.enter_context(reference.worktree(args.before))
    for db in args.database.split(","):
        if db == "postgres" and (why := world.postgres_reachable()):
            print(f"postgres: skipped, unreachable ({why})")
            continue
        per_answer = {}
        for answers in sizes:
            m = measure(db, work, answers, args.repeat, before)
            per_answer[answers] = {k: m[k] / answers for k in ("after", "before")}

            def fmt(runs: list[tuple[float, float, float]], n: int = answers) -> str:
                return ", ".join(
                    f"{w:.2f} s wall, {i:.2f} s in transactions ({i / n * 1000:.2f} ms, "
                    f"CPU {c / n * 1000:.2f} ms each)"
                    for w, i, c in runs
                )

            print(
                f"{db:8} {answers:>5,} answers  after {fmt(m['runs']['after'])}"
                f"  |  before {fmt(m['runs']['before'])}"
                f"  |  before/after {m['before'] / m['after']:.1f}×",
                flush=True,
            )
            if answers >= 3500 and m["after_wall"] >= 10:
                failures.append(f"{db} {answers}: {m['after_wall']:.1f} s")
        small, large = sizes[0], sizes[-1]
        if large > small:
            for which in ("after", "before"):
                growth = per_answer[large][which] / per_answer[small][which]
                print(f"{db:8} {which:6} per answer, {large:,} / {small:,}: {growth:.2f}×")
                if which == "after" and growth > 1.3:
                    failures.append(f"{db} per-answer growth {growth:.2f}×")
    shutil.rmtree(work, ignore_errors=True)
    print(f"load average after: {world.load_average()}")
    print(
        "targets (3,500 < 10 s with the pauses; per answer ≤ 1.3× of 350's): "
        + ("met" if not failures else "NOT met: " + "; ".join(failures))
    )
    return 0 if not failures else 1


if __name__ == "__main__":
    raise SystemExit(main())
