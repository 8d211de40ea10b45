"""Whether any setting is given, without importing engine.config (pydantic-settings).

Importing engine.config imports pydantic-settings and its sources (asyncio among
them), which `kehoach validate` does not need: with no configuration file and no
``KEHOACH_`` variable every setting has its default, so the checks (engine.checks_time)
take that default; otherwise they validate what is given with
engine.settings_fields, the declarations engine.config's Settings is built on (a
malformed setting is the same ConfigError as in every command).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

ENV_PREFIX = "KEHOACH_"
# the loader warns when a plan's first deadline is this close to its effective date
FIRST_DEADLINE_WARN_DAYS = 7


def config_file(environ: Mapping[str, str]) -> str:
    """The configuration file: ``KEHOACH_CONFIG``, else ``kehoach.toml`` in the working
    folder when there is one; empty when neither."""
    return environ.get("KEHOACH_CONFIG") or (
        "kehoach.toml" if Path("kehoach.toml").exists() else ""
    )


def nothing_given(environ: Mapping[str, str]) -> bool:
    """No configuration file and no ``KEHOACH_`` variable: every setting is its default."""
    return not config_file(environ) and not any(name.startswith(ENV_PREFIX) for name in environ)
