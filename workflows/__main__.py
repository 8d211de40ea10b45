"""``python -m workflows FLOW [--param NAME=VALUE ...]``: run one flow in this process
(the command line is :func:`cli.prefect.flow_main`)."""

from cli.prefect import flow_main

if __name__ == "__main__":
    raise SystemExit(flow_main())
