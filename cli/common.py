"""What every command shares: exit codes, output, the database URL."""

from __future__ import annotations

import sys
from typing import Any

# 1, a user error, is KehoachError.exit_code; cli.main documents every code.
EXIT_OK, EXIT_USAGE, EXIT_INVALID, EXIT_NOT_FOUND, EXIT_INTERNAL = 0, 2, 3, 4, 70


def out(text: str = "") -> None:
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def err(text: str) -> None:
    sys.stderr.write(text + "\n")


def database_url(args: Any) -> str:
    """``--database-url`` when given, else the configured store (``KEHOACH_DATABASE_URL``
    or ``<KEHOACH_HOME>/kehoach.sqlite``)."""
    given = getattr(args, "database_url", None)
    if given:
        return str(given)
    from engine.config import settings

    return settings().database
