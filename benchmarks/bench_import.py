"""Time `kehoach import` of the seed text as a whole process (target: under 1 s).

    .venv/bin/python benchmarks/bench_import.py [--runs 9]

Prints the median and best wall time and the CPU time of the whole command
(interpreter start, imports, reading the registry and the change sets beside it, the
draft written with ``-o``), next to a bare `python -c pass`, with the load average and
the ratio to the 1 s target (process_timing). CPU time is printed too: on a shared
machine the wall clock also measures the other processes.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import process_timing  # noqa: E402

TARGET_SECONDS = 1.0
SEED = process_timing.ROOT / "plan_definitions" / "sources" / "000_c128544cc2c3a018.txt"
REGISTRY = process_timing.ROOT / "plan_definitions" / "registry_cao_bang.yaml"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=9)
    parser.add_argument(
        "--no-bytecode-cache",
        action="store_true",
        help="compile every module from source in each run (PYTHONDONTWRITEBYTECODE=1)",
    )
    args = parser.parse_args()
    bytecode = not args.no_bytecode_cache
    with tempfile.TemporaryDirectory() as tmp:
        command = [
            process_timing.kehoach(),
            *("import", str(SEED), "--registry", str(REGISTRY), "-o", f"{tmp}/d.yaml"),
        ]
        measured = process_timing.time_command(command, args.runs, bytecode=bytecode)
    process_timing.report("kehoach import (seed text, registry, -o)", measured, TARGET_SECONDS)


if __name__ == "__main__":
    main()
