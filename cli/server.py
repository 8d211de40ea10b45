"""``python -m cli.server start|stop|status [HOME] [--port N]``: the local Prefect server."""

from cli.prefect import server_main

if __name__ == "__main__":
    raise SystemExit(server_main())
