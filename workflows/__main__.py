"""Run one flow in this process: ``python -m workflows FLOW [--param NAME=VALUE ...]``.

For operators and for tests that need a flow in a process of its own (the durability
test kills one with SIGKILL).  FLOW is activate, sweep, consolidate, intake, review or
dispatch; values are JSON when they parse as JSON (``--param years=[2023]``), else text.
"""

from __future__ import annotations

import argparse
import json
import sys


def main(argv: list[str] | None = None) -> int:
    from workflows.register import _flow_object

    parser = argparse.ArgumentParser(prog="python -m workflows")
    parser.add_argument(
        "flow", choices=["activate", "sweep", "consolidate", "intake", "review", "dispatch"]
    )
    parser.add_argument("--param", action="append", default=[], metavar="NAME=VALUE")
    args = parser.parse_args(argv)
    params = {}
    for item in args.param:
        name, _, raw = item.partition("=")
        try:
            params[name] = json.loads(raw)
        except json.JSONDecodeError:
            params[name] = raw
    result = _flow_object(args.flow)(**params)
    json.dump(result, sys.stdout, ensure_ascii=False, default=str)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
