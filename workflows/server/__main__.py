"""``python -m workflows.server``: the command line is :func:`cli.prefect.server_main`."""

from cli.prefect import server_main

if __name__ == "__main__":
    raise SystemExit(server_main())
