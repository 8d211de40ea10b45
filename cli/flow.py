"""``python -m cli.flow FLOW [--param NAME=VALUE ...]``: run one flow in this process
(for operators, and for tests that need a flow in a process of its own)."""

from cli.prefect import flow_main

if __name__ == "__main__":
    raise SystemExit(flow_main())
