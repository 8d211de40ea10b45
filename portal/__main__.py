"""``python -m portal [--host H] [--port P] [--database-url URL]``."""

from __future__ import annotations

import argparse
import sys

from portal.cli import cmd_portal


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m portal", description="serve the units' portal")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8700)
    parser.add_argument("--database-url", help="SQLAlchemy URL (default: the configured store)")
    return cmd_portal(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
