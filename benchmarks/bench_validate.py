"""Time `kehoach validate` on the seed plan as a whole process (target: under 0.5 s).

    .venv/bin/python benchmarks/bench_validate.py [--runs 15]

Prints the median and best wall time of the whole command (interpreter start,
imports, YAML parsing, schema and domain checks), next to a bare `python -c pass`,
and the ratio to the 0.5 s target.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).parents[1]
TARGET_SECONDS = 0.5


def _time(command: list[str], runs: int) -> list[float]:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
        times.append(time.perf_counter() - start)
        if result.returncode != 0:
            raise SystemExit(f"{' '.join(command)} failed:\n{result.stderr}")
    return times


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    kehoach = str(Path(sys.executable).parent / "kehoach")
    files = [
        "plan_definitions/ha_lang_pccc_2022.yaml",
        "plan_definitions/cao_bang_2720_kh_ubnd.yaml",
        "plan_definitions/registry_cao_bang.yaml",
        "plan_definitions/calendar_vn.yaml",
    ]
    _time([kehoach, "validate", *files], 2)  # warm the OS file cache
    validate = _time([kehoach, "validate", *files], args.runs)
    bare = _time([sys.executable, "-c", "pass"], args.runs)
    median = statistics.median(validate)
    print(f"kehoach validate (seed plan + parent + registry + calendar), {args.runs} runs")
    print(f"  median {median * 1000:7.1f} ms   best {min(validate) * 1000:7.1f} ms")
    print(f"  python -c pass: median {statistics.median(bare) * 1000:7.1f} ms")
    print(
        f"  target {TARGET_SECONDS * 1000:.0f} ms: median is {median / TARGET_SECONDS:.2f}× the target"
    )


if __name__ == "__main__":
    main()
