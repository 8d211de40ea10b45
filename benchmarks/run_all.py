"""``make bench``: every benchmark, on SQLite and PostgreSQL, into BENCHMARKS.md.

    .venv/bin/python benchmarks/run_all.py [--only intake,sweep] [--out BENCHMARKS.md]

Each case is one of the bench_*.py scripts, run as a process of its own: each prints
its figures beside the reference it measures in the same run (the code before, from a
git worktree of an older commit; a bare aiosmtplib loop; plain python-docx; one
deployment run per unit) and the ratio. This runner records, per case: the command,
the load average before and after (the machine is shared: a figure without its load
says little), the wall time, the peak RSS of the case's processes (``wait4``), its exit
code (0: its targets met) and its output as printed. The head of the file names the
machine, the commit and the time. Nothing here judges a figure; the scripts do.

With ``--only`` the cases not run keep their section of the existing file (each says
its own time, commit and load), and so does the hand-kept summary between
``<!-- summary -->`` and ``<!-- /summary -->``: one row per case of issue 14 with its
figure, its ratio, the load and the command, updated by whoever reruns a case.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HERE = Path(__file__).resolve().parent


@dataclass(frozen=True)
class Case:
    name: str
    what: str
    args: tuple[str, ...]


CASES = (
    Case("validate", "kehoach validate on the seed plan, whole process", ("bench_validate.py",)),
    Case("import", "kehoach import of the seed text, whole process", ("bench_import.py",)),
    Case(
        "memory",
        "activation of 350, 3,500 and 35,000 units in the engine: time per unit, peak RSS",
        ("bench_memory.py", "--units", "350,3500,35000", "--database", "sqlite,postgres"),
    ),
    Case(
        "activation",
        "activation of 3,500 units through the activate flow, against one run per unit",
        ("bench_activation.py",),
    ),
    Case(
        "sweep",
        "daily sweep over 10,000, 100,000 and 300,000 open obligations, quiet day and Monday",
        ("bench_sweep.py", "--open", "10000,100000,300000", "--database", "sqlite,postgres"),
    ),
    Case(
        "intake",
        "intake of 350 and 3,500 answers in the flow's batches",
        ("bench_intake.py", "--answers", "350,3500", "--database", "sqlite,postgres"),
    ),
    Case(
        "dispatch",
        "dispatch of 3,500 emails against a bare aiosmtplib loop",
        ("bench_dispatch.py", "--database", "sqlite,postgres"),
    ),
    Case(
        "consolidation",
        "consolidation of 350 and 3,500 reports with the document: time, CPU, RSS and Python peak beside main before streaming, and plain python-docx",
        ("bench_consolidation.py", "--database", "sqlite,postgres"),
    ),
    Case(
        "portal",
        "portal GET/POST p50/p99 at 100 requests/s, PostgreSQL, 2 workers",
        ("bench_portal.py", "--phases", "get,post", "--database", "postgres", "--workers", "2"),
    ),
)


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def machine() -> str:
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
        memory = next(
            int(line.split()[1]) // 1024
            for line in Path("/proc/meminfo").read_text().splitlines()
            if line.startswith("MemTotal")
        )
    except (OSError, StopIteration, ValueError):
        memory = 0
    return (
        f"{platform.system()} {platform.release()}, {os.cpu_count()} cores ({model or '?'}), "
        f"{memory:,} MiB memory, Python {platform.python_version()}"
    )


def commit() -> str:
    done = subprocess.run(
        ["git", "-C", str(ROOT), "log", "-1", "--format=%h %s"],
        capture_output=True,
        text=True,
        check=False,
    )
    return done.stdout.strip() or "?"


def run(case: Case, timeout: float) -> dict:
    """The case in a process of its own; its output, time, peak RSS and load."""
    command = [sys.executable, str(HERE / case.args[0]), *case.args[1:]]
    before, started = load(), time.perf_counter()
    log = Path(os.environ.get("TMPDIR", "/tmp")) / f"kehoach-bench-{case.name}-{os.getpid()}.log"
    with open(log, "wb") as out:
        process = subprocess.Popen(command, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        status, usage = 0, None
        while True:
            pid, status, usage = os.wait4(process.pid, os.WNOHANG)
            if pid:
                break
            if time.monotonic() > deadline:
                process.kill()
                _pid, status, usage = os.wait4(process.pid, 0)
                break
            time.sleep(0.5)
    text = log.read_text(encoding="utf-8", errors="replace")
    log.unlink(missing_ok=True)
    return {
        "command": " ".join([".venv/bin/python", f"benchmarks/{case.args[0]}", *case.args[1:]]),
        "load_before": before,
        "load_after": load(),
        "wall": time.perf_counter() - started,
        # wait4's figure: the largest of the process and the children it waited for
        "peak_mb": usage.ru_maxrss / 1024 if usage else 0.0,
        "exit": os.waitstatus_to_exitcode(status),
        "output": text.strip(),
    }


def section(case: Case, result: dict, started: dt.datetime) -> str:
    verdict = {0: "finished", 1: "a target it checks was missed"}.get(result["exit"], "stopped")
    return "\n".join(
        [
            f"## {case.name}: {case.what}",
            "",
            f"- run {started:%Y-%m-%d %H:%M} UTC, commit {commit().split()[0]}",
            f"- command: `{result['command']}`",
            f"- load average before / after: {result['load_before']} / {result['load_after']}",
            f"- wall {result['wall']:.0f} s, peak RSS of its processes "
            f"{result['peak_mb']:.0f} MB, exit {result['exit']} ({verdict})",
            "",
            "```",
            result["output"][-12000:],
            "```",
            "",
        ]
    )


SUMMARY = ("<!-- summary -->", "<!-- /summary -->")


def kept(path: Path) -> tuple[str, dict[str, str]]:
    """The summary and the section of each case in an existing BENCHMARKS.md."""
    if not path.is_file():
        return "", {}
    text = path.read_text(encoding="utf-8")
    summary = ""
    if SUMMARY[0] in text and SUMMARY[1] in text:
        start, end = text.index(SUMMARY[0]), text.index(SUMMARY[1]) + len(SUMMARY[1])
        summary, text = text[start:end], text[:start] + text[end:]
    sections = {}
    for part in text.split("\n## ")[1:]:
        name = part.split(":", 1)[0].strip()
        sections[name] = "## " + part.rstrip() + "\n"
    return summary, sections


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", help="comma list of case names (default: all)")
    parser.add_argument("--out", default=str(ROOT / "BENCHMARKS.md"))
    parser.add_argument("--timeout", type=float, default=3600, help="seconds per case")
    args = parser.parse_args()
    wanted = set(args.only.split(",")) if args.only else {c.name for c in CASES}
    unknown = wanted - {c.name for c in CASES}
    if unknown:
        parser.error(f"unknown case(s) {', '.join(sorted(unknown))}")
    started = dt.datetime.now(dt.UTC)
    summary, before = kept(Path(args.out))
    parts = [
        "# Benchmarks",
        "",
        f"Written by `make bench` (`benchmarks/run_all.py`) on {started:%Y-%m-%d %H:%M} UTC, "
        f"commit {commit()}.",
        f"Machine: {machine()}. The machine is shared: each case gives the load average "
        "before and after it, and compares with its reference inside the same run.",
        "",
    ]
    if summary:
        parts += [summary, ""]
    failed = 0
    done: dict[str, str] = {}

    def write() -> None:  # kept as it goes
        sections = [done.get(c.name) or before.get(c.name) for c in CASES]
        text = "\n".join(parts + [s for s in sections if s])
        Path(args.out).write_text(text, encoding="utf-8")

    for case in (c for c in CASES if c.name in wanted):
        print(f"== {case.name} (load {load()})", flush=True)
        result = run(case, args.timeout)
        failed += result["exit"] != 0
        print(
            f"   {result['wall']:.0f} s, exit {result['exit']}, peak {result['peak_mb']:.0f} MB",
            flush=True,
        )
        done[case.name] = section(case, result, started)
        write()
    print(f"wrote {args.out}")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
