"""Configuration from environment variables, with an optional TOML file.

Precedence: environment variable (``KEHOACH_<NAME>``) > file named by ``KEHOACH_CONFIG``
(or ``kehoach.toml`` in the working directory) > the defaults.  Every setting is
declared once, in engine.settings_fields (read there too by `kehoach validate`, without
pydantic-settings), and documented in README.md; nothing secret has a default that would
work in production.

:class:`Settings` is a pydantic-settings model: ``Settings(...)`` holds exactly what it
is given (tests build them so), :func:`load_settings` reads the environment and the
file.  A value that does not fit its setting (a word where a number goes, a mode
misspelt) is a :class:`ConfigError` naming the variable or the file's key and what to
write, in Vietnamese (exit 2), never a traceback.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from functools import lru_cache

from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from engine.config_given import ENV_PREFIX
from engine.settings_fields import ConfigError, SettingsFields, parse_hours, read_given, variable

__all__ = ["TIMEZONE", "ConfigError", "Settings", "load_settings", "parse_hours", "variable"]

TIMEZONE = "Asia/Ho_Chi_Minh"


class Settings(BaseSettings, SettingsFields):
    """The settings (declared in engine.settings_fields.SettingsFields)."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Only what the caller passes: :func:`load_settings` chooses the sources."""
        del settings_cls, env_settings, dotenv_settings, file_secret_settings  # load_settings reads
        return (init_settings,)


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """The settings from ``environ`` (default: the process environment) and the file."""
    return read_given(os.environ if environ is None else environ, Settings)


@lru_cache(maxsize=1)
def settings() -> Settings:
    return load_settings()


def prefect_api(
    conf: Settings | None = None, environ: Mapping[str, str] | None = None
) -> tuple[str, str] | None:
    """(URL, the variable it came from) of the Prefect API kehoach must use, or None.

    ``KEHOACH_PREFECT_API_URL``, else ``PREFECT_API_URL``; nothing else (no Prefect
    profile, no ephemeral server, no "whatever answers on 127.0.0.1:4200"). A configured
    API that does not answer is an error for the caller to report, never a reason to
    use another one. In production set also, on the Prefect server,
    ``PREFECT_SERVER_API_AUTH_STRING='user:password'`` and
    ``PREFECT_SERVER_API_CSRF_PROTECTION_ENABLED=true``, and on every client (kehoach,
    the portal, workers) ``PREFECT_API_AUTH_STRING`` with the same value (README,
    "Prefect in production").
    """
    conf = conf or settings()
    own = conf.prefect_api_url.strip()
    if own:
        return own.rstrip("/"), variable("prefect_api_url")
    env = os.environ if environ is None else environ
    url = env.get("PREFECT_API_URL", "").strip()
    return (url.rstrip("/"), "PREFECT_API_URL") if url else None
