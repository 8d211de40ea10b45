"""Timing a command as a whole process, shared by the whole-process benchmarks
(bench_validate.py, bench_import.py): wall and CPU time (user + system of the child,
``getrusage(RUSAGE_CHILDREN)``) of each run, and of a bare `python -c pass` run after
each one, so that both are measured under the same load; their medians, the ratios of
the command to `python -c pass`, the load average before and after, and the ratio to a
target.

The commands run with Python's bytecode cache, as an installed kehoach has it (pip
compiles the modules at install): PYTHONDONTWRITEBYTECODE is dropped for them and the
cache goes to a temporary PYTHONPYCACHEPREFIX, filled by the untimed warm-up runs.
``bytecode=False`` (the scripts' ``--no-bytecode-cache``) times them compiling every
module from source, as a shell with PYTHONDONTWRITEBYTECODE=1 does.

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import process_timing
"""

from __future__ import annotations

import atexit
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
_CACHE = tempfile.mkdtemp(prefix="kehoach-bench-pyc-")
atexit.register(shutil.rmtree, _CACHE, True)


def environment(bytecode: bool = True) -> dict[str, str]:
    """The commands' environment: with a bytecode cache of their own, or none."""
    env = dict(os.environ)
    if bytecode:
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPYCACHEPREFIX"] = _CACHE
    else:
        env["PYTHONDONTWRITEBYTECODE"] = "1"
        env.pop("PYTHONPYCACHEPREFIX", None)
    return env


@dataclass(frozen=True)
class Runs:
    walls: list[float]
    cpus: list[float]  # user + system time of the process and its children
    bytecode: bool = True
    bare: Runs | None = None  # `python -c pass`, one run after each of the command's
    load_before: tuple[float, float, float] = (0.0, 0.0, 0.0)


def run_once(command: list[str], bytecode: bool = True) -> tuple[float, float]:
    """(wall, CPU) seconds of one run of ``command`` in the project's folder; a failing
    run stops the benchmark with its stderr."""
    env = environment(bytecode)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, env=env)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{result.stderr}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


BARE = [sys.executable, "-c", "pass"]


def time_command(command: list[str], runs: int, warm: int = 1, bytecode: bool = True) -> Runs:
    """``runs`` timed runs after ``warm`` untimed ones (the OS file cache, the bytecode),
    each followed by a timed `python -c pass` (the same interpreter and environment)."""
    for _ in range(warm):
        run_once(command, bytecode)
    load = os.getloadavg()
    timed, bare = [], []
    for _ in range(runs):
        timed.append(run_once(command, bytecode))
        bare.append(run_once(BARE, bytecode))
    reference = Runs([w for w, _ in bare], [c for _, c in bare], bytecode)
    return Runs([w for w, _ in timed], [c for _, c in timed], bytecode, reference, load)


def kehoach() -> str:
    """The `kehoach` script of the running interpreter's environment."""
    return str(Path(sys.executable).parent / "kehoach")


def _load(load: tuple[float, float, float]) -> str:
    return " ".join(f"{x:.2f}" for x in load)


def report(title: str, measured: Runs, target_seconds: float) -> None:
    """Print the medians, `python -c pass` of the same run and the ratios to it, the load
    average before and after, and the ratio to the target."""
    load = os.getloadavg()
    bare = measured.bare or time_command(BARE, len(measured.walls), warm=0)
    wall, cpu = statistics.median(measured.walls), statistics.median(measured.cpus)
    bare_wall, bare_cpu = statistics.median(bare.walls), statistics.median(bare.cpus)
    cache = "bytecode cached" if measured.bytecode else "no bytecode cache: every module compiled"
    print(f"{title}, {len(measured.walls)} runs ({cache})")
    print(f"  wall: median {wall * 1000:7.1f} ms   best {min(measured.walls) * 1000:7.1f} ms")
    print(
        f"  CPU (user+sys of the child): median {cpu * 1000:7.1f} ms   "
        f"best {min(measured.cpus) * 1000:7.1f} ms"
    )
    print(
        f"  python -c pass, after each run: wall median {bare_wall * 1000:7.1f} ms   "
        f"CPU median {bare_cpu * 1000:7.1f} ms"
    )
    print(f"  ratio to python -c pass: wall {wall / bare_wall:.1f}×   CPU {cpu / bare_cpu:.1f}×")
    print(f"  wall / CPU: {wall / cpu:.2f} (above 1: waiting for a core or the disk)")
    print(
        f"  load average (1, 5, 15 min): before {_load(measured.load_before)}   after {_load(load)}"
    )
    print(
        f"  target {target_seconds * 1000:.0f} ms: median wall is {wall / target_seconds:.2f}× "
        f"the target, median CPU {cpu / target_seconds:.2f}×"
    )
