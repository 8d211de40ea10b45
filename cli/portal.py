"""``kehoach portal [--host H] [--port P]`` and ``python -m cli.portal``: serve the units'
portal."""

from __future__ import annotations

import argparse
import os
import sys

from cli.common import database_url


def cmd_portal(args: argparse.Namespace) -> int:
    """0 after a clean stop; 1 when the settings make serving unsafe on that address, 2 when
    a setting is missing or written wrong (the message says which and what to write)."""
    from engine.config import ConfigError, settings
    from portal.server import PortalConfigError, run

    try:
        run(
            getattr(args, "host", None) or "127.0.0.1",
            int(getattr(args, "port", None) or 8700),
            settings(),
            database_url(args),
        )
    except PortalConfigError as exc:
        sys.stderr.write(f"kehoach portal: {exc}\n")
        return 2 if exc.malformed else 1
    except ConfigError as exc:  # read with the settings: no secret, a short one, a bad value
        sys.stderr.write(f"kehoach portal: {exc}\n")
        if exc.detail and os.environ.get("KEHOACH_DEBUG"):  # English, for the developer
            sys.stderr.write(f"kehoach portal: debug: {exc.detail}\n")
        return exc.exit_code
    except KeyboardInterrupt:
        pass
    return 0


def portal_main(argv: list[str] | None = None) -> int:
    """``python -m cli.portal [--host H] [--port P] [--database-url URL]``."""
    parser = argparse.ArgumentParser(
        prog="python -m cli.portal", description="serve the units' portal"
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8700)
    parser.add_argument("--database-url", help="SQLAlchemy URL (default: the configured store)")
    return cmd_portal(parser.parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(portal_main())
