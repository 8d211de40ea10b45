"""Whether any setting is given, without importing engine.config (pydantic-settings).

Importing engine.config imports pydantic-settings and its sources (asyncio among
them), which `kehoach validate` needs for one setting only. With no configuration file
and no ``KEHOACH_`` variable every setting has its default, so the checks
(engine.checks) take that default without it; otherwise they read the settings as
every command does (a malformed setting is the same ConfigError).
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
