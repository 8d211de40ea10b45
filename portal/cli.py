"""``kehoach portal [--host H] [--port P]``: serve the units' portal."""

from __future__ import annotations

import argparse
import sys


def cmd_portal(args: argparse.Namespace) -> int:
    """0 after a clean stop; 1 when the settings make serving unsafe (message says why)."""
    from engine.config import settings
    from portal.server import PortalConfigError, run

    try:
        run(
            getattr(args, "host", None) or "127.0.0.1",
            int(getattr(args, "port", None) or 8700),
            settings(),
            getattr(args, "database_url", None),
        )
    except PortalConfigError as exc:
        sys.stderr.write(f"kehoach portal: {exc}\n")
        return 1
    except KeyboardInterrupt:
        pass
    return 0
