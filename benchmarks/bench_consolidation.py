"""Benchmark: consolidating 350 and 3,500 reports with the document, against plain python-docx.

    .venv/bin/python benchmarks/bench_consolidation.py [--sizes 350,3500] [--before COMMIT]
        [--database sqlite,postgres]

For each size, in one run:
1. Writes a synthetic registry (communes under provinces) and a plan whose yearly report
   has a sum, a ratio of two sums, a choice and a free-text answer; stores and activates
   it in a new SQLite store (or a throw-away PostgreSQL database with ``--database
   postgres``), then writes every commune's report as taken in (this set-up is not what
   is measured).
2. Times ``consolidate`` (aggregates, coverage, the .docx with its phụ lục of one row per
   unit, the markdown twin, the stored file), and within it ``render_docx``.
3. Times the reference: plain python-docx building the same phụ lục table of figures
   (``add_table``, ``add_row``, ``cell.text``), and this project's builder
   (engine.docx_build.table: one styled row deep-copied per unit) on the same rows.

4. Measures memory: the RSS peak the timed consolidation added (``VmHWM`` started anew
   just before it, C allocations included), and, in a second consolidation of a fresh
   copy of the store, the peak of Python allocations while ``consolidate`` runs
   (``tracemalloc``), per unit, so that the growth from the smaller size to the larger
   one shows; the two give the same figures or the run stops. On PostgreSQL the RSS is
   this process's, not the server's.
   Each size runs in a process of its own, with this tree's engine and with the engine
   of ``--before`` (default: main before the reports were streamed; a git worktree,
   benchmarks/reference.py), for the figures before.

Target (issue 14): consolidation of 3,500 with its document < 3 s; memory bounded.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import secrets
import sqlite3
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable, Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))
import reference  # noqa: E402

reference.use_tree(sys.argv)  # before any kehoach import: --tree DIR is the code before
# Links are signed with a key of this run's own (the engine refuses to sign without one).
os.environ.setdefault("KEHOACH_PORTAL_SECRET", secrets.token_urlsafe(48))

from sqlalchemy import select  # noqa: E402

from engine.calendar import TZ  # noqa: E402
from engine.config import Settings  # noqa: E402
from engine.store import session_scope  # noqa: E402
from engine.store.models import Cycle, Obligation, PlanInstance  # noqa: E402
from tests.lifecycle_factory import store_files, synthetic_files  # noqa: E402

PLAN = "quy-mo-3500"
TEMPLATE = """report_templates:
  - id: mau
    title: Mẫu báo cáo
    fields:
      - {id: so-vu, label: "Số vụ cháy, nổ", type: integer, unit: vụ, aggregate: sum}
      - {id: tong, label: Tổng số cán bộ, type: integer, unit: người, aggregate: sum}
      - {id: da-hoc, label: Số cán bộ được học tập, type: integer, unit: người, aggregate: sum}
      - {id: ty-le, label: Tỷ lệ được học tập, type: percent, ratio_of: [da-hoc, tong]}
      - {id: hoat-dong, label: Tổ chức Tháng an toàn PCCC, type: choice,
         choices: [Đã tổ chức, Chưa tổ chức], aggregate: count}
      - {id: danh-gia, label: Đánh giá chung, type: text}
"""


def _definitions(folder: Path, units: int) -> list[Path]:
    provinces = 34 if units >= 3400 else 10
    paths = synthetic_files(folder, provinces=provinces, communes=round(units / provinces))
    plan = paths[1]
    text = plan.read_text(encoding="utf-8")
    plan.write_text(text[: text.index("report_templates:")] + TEMPLATE, encoding="utf-8")
    return paths


def _answered(url: str, now: dt.datetime) -> int:
    """Every commune's report recorded and taken in as the portal and the intake flow do
    (``record_submission``, ``intake_many``: each version with its audit row, so that the
    consolidation's audit check counts them); how many. Not timed."""
    from engine.lifecycle import record_submission
    from engine.lifecycle.intake import intake_many

    with session_scope(url) as session:
        ids = list(
            session.scalars(
                select(Obligation.id)
                .join(Cycle, Obligation.cycle_id == Cycle.id)
                .join(PlanInstance, Cycle.instance_id == PlanInstance.id)
                .where(
                    PlanInstance.plan_id == PLAN,
                    Cycle.key == "2027",
                    Obligation.deliverable_id == "bao-cao",
                )
                .order_by(Obligation.id)
            )
        )
    for start in range(0, len(ids), 500):
        with session_scope(url) as session:
            recorded = [
                record_submission(
                    session,
                    oid,
                    values={
                        "so-vu": str(i % 4),
                        "tong": str(20 + i % 7),
                        "da-hoc": str(18 + i % 3),
                        "hoat-dong": "Chưa tổ chức" if i % 9 == 0 else "Đã tổ chức",
                        "danh-gia": f"Đã quán triệt kế hoạch, tuyên truyền tại {i % 12 + 1} thôn.",
                    },
                    now=now,
                ).id
                for i, oid in enumerate(ids[start : start + 500], start)
            ]
            intake_many(session, recorded, now=now)
    return len(ids)


def _reference(rows: list[list[str]], header: list[str]) -> tuple[float, float]:
    """(plain python-docx, engine.docx_build) seconds for the same table."""
    from docx import Document

    from engine import docx_build as xb

    started = time.perf_counter()
    document = Document()
    table = document.add_table(rows=1, cols=len(header))
    for cell, title in zip(table.rows[0].cells, header, strict=True):
        cell.text = title
    for row in rows:
        for cell, value in zip(table.add_row().cells, row, strict=True):
            cell.text = value
    plain = time.perf_counter() - started
    started = time.perf_counter()
    document = Document()
    xb.set_defaults(document)
    xb.append(document, xb.table([1.0, 5.0] + [2.0] * (len(header) - 2), header, rows))
    ours = time.perf_counter() - started
    return plain, ours


@contextlib.contextmanager
def _store(database: str, home: Path) -> Iterator[tuple[str, Callable[[], str]]]:
    """(a new store's URL, a function that copies that store as it is and returns the
    copy's URL): a SQLite file in ``home``, or a throw-away PostgreSQL database."""
    if database == "sqlite":

        def sqlite_copy() -> str:
            # a copy with what the WAL holds (a file copy of the database alone misses it)
            with (
                contextlib.closing(sqlite3.connect(home / "kehoach.sqlite")) as source,
                contextlib.closing(sqlite3.connect(home / "traced.sqlite")) as copy,
            ):
                source.backup(copy)
            return f"sqlite:///{home / 'traced.sqlite'}"

        yield f"sqlite:///{home / 'kehoach.sqlite'}", sqlite_copy
        return
    from bench_portal import postgres_database
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url
    from sqlalchemy.pool import NullPool

    from engine.store import connect

    with postgres_database() as url:
        name = make_url(url).database
        admin = create_engine(
            make_url(url).set(database="postgres"), isolation_level="AUTOCOMMIT", poolclass=NullPool
        )

        def postgres_copy() -> str:
            connect(url).dispose()  # a template database may have no open connection
            with admin.connect() as conn:
                conn.execute(text(f'CREATE DATABASE "{name}_traced" TEMPLATE "{name}"'))
            return make_url(url).set(database=f"{name}_traced").render_as_string(False)

        try:
            yield url, postgres_copy
        finally:
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}_traced" WITH (FORCE)'))
            admin.dispose()


def run(units: int, database: str) -> dict[str, float]:
    import importlib

    from engine.consolidation import consolidate

    # The package re-exports the function under the submodule's name.
    consolidate_module = importlib.import_module("engine.consolidation.consolidate")
    from engine.lifecycle import activate

    with (
        tempfile.TemporaryDirectory(prefix="bench-consolidation-") as tmp,
        _store(database, Path(tmp)) as (url, copy_store),
    ):
        home = Path(tmp)
        store_files(url, *_definitions(home / "defs", units))
        with session_scope(url) as session:
            activate(session, PLAN, now=dt.datetime(2027, 1, 4, 9, tzinfo=TZ), years=[2027])
        count = _answered(url, dt.datetime(2027, 9, 1, 9, tzinfo=TZ))
        traced_url = copy_store()
        timings: dict[str, float] = {}
        render = consolidate_module.render_docx

        def timed_render(doc, path):  # type: ignore[no-untyped-def]
            # the peak so far, then the peak render_docx adds on its own
            timings["rss_peak_before_render"] = _status_mb("VmHWM")
            rss_render = _reset_peak_rss()
            started = time.perf_counter()
            try:
                return render(doc, path)
            finally:
                timings["render_docx"] = time.perf_counter() - started
                timings["rss_render_mb"] = _status_mb("VmHWM") - rss_render
                timings["figure_rows"] = len(doc.appendices[0].rows)
                timings["_header"] = doc.appendices[0].header  # type: ignore[assignment]
                timings["_rows"] = doc.appendices[0].rows  # type: ignore[assignment]

        def once(url: str, folder: Path):  # type: ignore[no-untyped-def]
            with session_scope(url) as session:
                return consolidate(
                    session,
                    PLAN,
                    "2027",
                    "tong-hop",
                    now=dt.datetime(2027, 9, 27, 9, tzinfo=TZ),
                    settings=Settings(
                        home=folder, portal_secret=os.environ["KEHOACH_PORTAL_SECRET"]
                    ),
                )

        consolidate_module.render_docx = timed_render
        rss_before = _reset_peak_rss()
        try:
            started, cpu = time.perf_counter(), time.process_time()
            result = once(url, home)
            timings["consolidate"] = time.perf_counter() - started
            timings["consolidate_cpu"] = time.process_time() - cpu
        finally:
            consolidate_module.render_docx = render
        timings["rss_grew_mb"] = (
            max(timings.pop("rss_peak_before_render"), _status_mb("VmHWM")) - rss_before
        )
        if result.warnings:  # every report must count: a figure over fewer says nothing
            raise SystemExit(f"{len(result.warnings)} reports left out: {result.warnings[0]}")
        size = Path(result.document_path).stat().st_size
        figures = json.dumps(result.report.aggregates, sort_keys=True, ensure_ascii=False)
        # the same consolidation again on the copy, its Python allocations traced
        tracemalloc.start()
        tracemalloc.reset_peak()
        base = tracemalloc.get_traced_memory()[0]
        traced = once(traced_url, home / "traced")
        peak = (tracemalloc.get_traced_memory()[1] - base) / 2**20
        tracemalloc.stop()
        if json.dumps(traced.report.aggregates, sort_keys=True, ensure_ascii=False) != figures:
            raise SystemExit(
                f"the traced consolidation gave other figures: {figures[:300]} / {json.dumps(traced.report.aggregates, sort_keys=True, ensure_ascii=False)[:300]}"
            )
        plain, ours = _reference(timings.pop("_rows"), timings.pop("_header"))  # type: ignore[arg-type]
        timings.update(
            reports=count, plain=plain, ours=ours, docx_kib=size / 1024, traced_peak_mb=peak
        )
        return timings


def _status_mb(key: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{key}:"):
            return int(line.split()[1]) / 1024
    return 0.0


def _reset_peak_rss() -> float:
    """Start this process's peak RSS (``VmHWM``) anew from its current RSS (Linux:
    ``clear_refs`` 5) and return that RSS, MB: the peak read after a step, less this, is
    what the step added, C allocations (lxml's tree, SQLite's pages) included, which
    ``tracemalloc`` does not see."""
    Path("/proc/self/clear_refs").write_text("5", encoding="ascii")
    return _status_mb("VmRSS")


def in_process(units: int, tree: Path | None, database: str) -> dict[str, float]:
    """:func:`run` in a process of its own (on this tree, or on ``tree``'s engine)."""
    cmd = [sys.executable, __file__, "--child", str(units), "--database", database]
    cmd += ["--tree", str(tree)] if tree else []
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"consolidation process failed:\n{done.stderr[-3000:]}")
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="350,3500")
    parser.add_argument(
        "--before",
        default=reference.CONSOLIDATION_BEFORE,
        help="also run the engine of this commit, from a git worktree ('' for none)",
    )
    parser.add_argument("--database", default="sqlite", help="comma list: sqlite, postgres")
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--tree", help=argparse.SUPPRESS)
    args = parser.parse_args()
    databases = [d.strip() for d in args.database.split(",") if d.strip()]
    if not databases or set(databases) - {"sqlite", "postgres"}:
        parser.error("--database takes sqlite, postgres or both")
    if args.child:
        print(json.dumps(run(args.child, databases[0])))
        return 0
    with contextlib.ExitStack() as stack:
        trees: dict[str, Path | None] = {"after": None}
        if args.before:
            trees["before"] = stack.enter_context(reference.worktree(args.before))
        return _compare([int(s) for s in args.sizes.split(",")], trees, databases)


Found = dict[tuple[str, str], dict[int, dict[str, float]]]


def _compare(sizes: list[int], trees: dict[str, Path | None], databases: list[str]) -> int:
    print(f"load average before: {_load()}")
    print(
        "database | code | reports | consolidate wall (s) | CPU (s) | of it render_docx (s) "
        "| .docx KiB | phụ lục rows | RSS peak added by consolidate (MB) "
        "| Python peak during consolidate (MB) | KB a unit "
        "| same table: plain python-docx (s) | project builder (s) | plain / builder"
    )
    found: Found = {(db, which): {} for db in databases for which in trees}
    failures = []
    for database in databases:
        for units in sorted(sizes):
            for which, tree in trees.items():
                t = found[database, which][units] = in_process(units, tree, database)
                print(
                    f"{database} | {which} | {t['reports']:.0f} | {t['consolidate']:.2f} | "
                    f"{t['consolidate_cpu']:.2f} | {t['render_docx']:.2f} | "
                    f"{t['docx_kib']:.0f} | {t['figure_rows']:.0f} | {t['rss_grew_mb']:.1f} | "
                    f"{t['traced_peak_mb']:.1f} | "
                    f"{t['traced_peak_mb'] * 1024 / t['reports']:.1f} | {t['plain']:.2f} | "
                    f"{t['ours']:.3f} | {t['plain'] / t['ours']:.0f}×",
                    flush=True,
                )
                if which == "after" and t["reports"] >= 3500 and t["consolidate"] >= 3:
                    failures.append(
                        f"{database}, {t['reports']:.0f} reports: {t['consolidate']:.2f} s"
                    )
    _growth(found, sizes)
    print(f"load average after: {_load()}")
    print(
        "target (3,500 with the document < 3 s): "
        + ("met" if not failures else "NOT met: " + "; ".join(failures))
    )
    return 0 if not failures else 1


def _growth(found: Found, sizes: list[int]) -> None:
    small, large = min(sizes), max(sizes)
    if large <= small:
        return
    for (database, which), by_size in found.items():
        a, b = by_size[small], by_size[large]
        grew = b["traced_peak_mb"] - a["traced_peak_mb"]
        extra = b["reports"] - a["reports"]
        print(
            f"{database} {which}: Python peak {a['traced_peak_mb']:.1f} MB at "
            f"{a['reports']:.0f} → {b['traced_peak_mb']:.1f} MB at {b['reports']:.0f} "
            f"({b['traced_peak_mb'] / a['traced_peak_mb']:.2f}× for "
            f"{b['reports'] / a['reports']:.0f}× the reports; "
            f"{grew * 1024 / extra:.1f} KB a further report); RSS peak added "
            f"{a['rss_grew_mb']:.1f} → {b['rss_grew_mb']:.1f} MB, of it render_docx's "
            f"{a['rss_render_mb']:.1f} → {b['rss_render_mb']:.1f} MB"
        )


def _load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


if __name__ == "__main__":
    raise SystemExit(main())
