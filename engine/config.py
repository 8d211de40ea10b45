"""Configuration from environment variables, with an optional TOML file.

Precedence: environment variable (``KEHOACH_<NAME>``) > file named by ``KEHOACH_CONFIG``
(or ``kehoach.toml`` in the working directory) > the defaults below.  Every setting is
documented in README.md; nothing secret has a default that would work in production.

:class:`Settings` is a pydantic-settings model: ``Settings(...)`` holds exactly what it
is given (tests build them so), :func:`load_settings` reads the environment and the
file.  A value that does not fit its setting (a word where a number goes, a mode
misspelt) is a :class:`ConfigError` naming the variable or the file's key and what to
write (exit 2), never a traceback.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import tomllib
from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal, get_args, get_origin

from pydantic import Field, ValidationError, field_validator
from pydantic.fields import FieldInfo
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from engine.config_given import ENV_PREFIX, FIRST_DEADLINE_WARN_DAYS, config_file
from engine.errors import KehoachError

TIMEZONE = "Asia/Ho_Chi_Minh"


_ANY_TIME = ("", "any")
_HOURS = re.compile(r"^\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*$")


def parse_hours(text: str) -> tuple[dt.time, dt.time] | None:
    """``"07:00-18:00"`` -> (07:00, 18:00); ``"any"`` or empty -> None (no window).

    ValueError with what to write when the text is neither."""
    if text.strip().lower() in _ANY_TIME:
        return None
    match = _HOURS.match(text)
    if not match:
        raise ValueError(f"{text!r} is not HH:MM-HH:MM (e.g. 07:00-18:00) or 'any'")
    h1, m1, h2, m2 = (int(g) for g in match.groups())
    if h1 > 23 or h2 > 24 or m1 > 59 or m2 > 59 or (h2 == 24 and m2):
        raise ValueError(f"{text!r}: hours are 00-23 (24:00 for midnight), minutes 00-59")
    opens = dt.time(h1, m1)
    closes = dt.time.max if h2 == 24 else dt.time(h2, m2)
    if closes <= opens:
        raise ValueError(f"{text!r}: the window must close after it opens, on the same day")
    return opens, closes


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, frozen=True, extra="forbid", coerce_numbers_to_str=True
    )

    home: Path = Path("var")
    database_url: str = ""
    # SMTP
    smtp_host: str = "127.0.0.1"
    smtp_port: int = 8025
    smtp_security: Literal["none", "starttls", "tls"] = "none"
    smtp_username: str = ""
    smtp_password: str = Field(default="", repr=False)
    smtp_timeout: float = 30.0
    smtp_ca_file: str = ""
    smtp_connections: int = 4
    smtp_rate_per_second: float = 0.0  # 0 = unlimited
    smtp_give_up_hours: float = 48.0
    # A message being sent whose dispatcher died is sent again after this (a live
    # dispatcher renews it every third of it).
    dispatch_lease_seconds: float = 60.0
    mail_from: str = "kehoach@kehoach.example"
    mail_from_name: str = "Hệ thống kehoach"
    # Mail that may wait goes out in these hours of working days (Asia/Ho_Chi_Minh);
    # "any" sends at every hour (engine/outbox/timing.py).
    mail_hours: str = "07:00-18:00"
    admin_email: str = "admin@kehoach.example"
    # portal
    portal_base_url: str = "http://127.0.0.1:8700"
    portal_secret: str = Field(default="", repr=False)
    portal_old_secrets: str = Field(
        default="", repr=False
    )  # comma-separated, accepted during a grace period
    portal_old_secrets_until: str = ""  # YYYY-MM-DD: the grace period's last day (empty: none)
    # KEHOACH_DEMO=1: without a portal secret, links are signed with the public demo key
    # (kehoach demo / simulate set it for themselves); off, nothing signs without a secret.
    demo: bool = False
    portal_max_upload_mb: float = 20.0
    operator_user: str = "operator"
    operator_password: str = Field(default="", repr=False)
    intake_batch_seconds: float = 10.0  # portal -> intake flow: at most one hand-over this often
    # request threads of one portal process (database work, pages): more only wait on the
    # interpreter lock and the audit chain's head (measured: portal.server)
    portal_threads: int = Field(default=8, ge=1, le=256)
    # the loader warns when a plan's first deadline is this close to its effective date
    first_deadline_warn_days: int = FIRST_DEADLINE_WARN_DAYS
    # Prefect: the API deploy, simulate, demo and the portal's hand-off use, and only it
    # (see prefect_api below); empty: PREFECT_API_URL, else a local server (demo, dev).
    prefect_api_url: str = ""
    # where the audit chain's heads are copied (engine.audit_anchor); empty: in home
    audit_anchor: str = ""
    extra: dict[str, str] = Field(default_factory=dict)  # from the file only

    @field_validator("smtp_security", mode="before")
    @classmethod
    def _any_case(cls, value: object) -> object:
        return value.strip().lower() if isinstance(value, str) else value

    @field_validator("mail_hours")
    @classmethod
    def _hours(cls, value: str) -> str:
        parse_hours(value)
        return value

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
        del env_settings, dotenv_settings, file_secret_settings  # replaced by load_settings
        return (init_settings,)

    @property
    def database(self) -> str:
        return self.database_url or f"sqlite:///{(self.home / 'kehoach.sqlite').resolve()}"

    @property
    def files_dir(self) -> Path:
        return self.home / "files"

    @property
    def reports_dir(self) -> Path:
        return self.home / "reports"

    @property
    def mailbox_dir(self) -> Path:
        return self.home / "mailbox"


class ConfigError(KehoachError, ValueError):
    """A setting that cannot be used; the message names it and says what to write."""

    exit_code = 2


class EnvironmentSource(PydanticBaseSettingsSource):
    """``KEHOACH_<NAME>`` variables of one mapping: the process environment, or the one
    a caller passes (tests)."""

    def __init__(self, settings_cls: type[BaseSettings], environ: Mapping[str, str]) -> None:
        super().__init__(settings_cls)
        self.environ = environ

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        key = variable(field_name)
        return self.environ.get(key), key, False

    def __call__(self) -> dict[str, Any]:
        values = {}
        for name, info in self.settings_cls.model_fields.items():
            if name == "extra":  # a table, written in the file
                continue
            value, _key, _complex = self.get_field_value(info, name)
            if value is not None:
                values[name] = value
        return values


def variable(name: str) -> str:
    """The environment variable of a setting: ``smtp_port`` -> ``KEHOACH_SMTP_PORT``."""
    return f"{ENV_PREFIX}{name.upper()}"


def _file_values(path: str) -> dict[str, Any]:
    if not path:
        return {}
    if not Path(path).is_file():
        raise ConfigError(f"{path}: no such configuration file; check KEHOACH_CONFIG")
    try:
        values = TomlConfigSettingsSource(Settings, toml_file=Path(path))()
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML ({exc})") from None
    unknown = sorted(set(values) - set(Settings.model_fields))
    if unknown:
        raise ConfigError(f"{path}: unknown setting(s) {', '.join(unknown)}")
    return values


def _what_to_write(name: str) -> tuple[str, str]:
    """(what a setting's value must be, what to write instead of a bad one)."""
    info = Settings.model_fields[name]
    kind, default = info.annotation, info.default
    if kind is int or kind is float:
        what = "a whole number" if kind is int else "a number"
        return what, f"{what} such as {default!r}"
    if get_origin(kind) is Literal:
        what = f"one of {', '.join(map(str, get_args(kind)))}"
        return what, f"one of those (default {default!r})"
    if kind is bool:
        return "true or false", f"true or false (default {str(default).lower()})"
    return f"usable as {name}", f"a value such as {default!r}"


def _bounds(name: str) -> tuple[Any, Any] | None:
    """(lowest, highest) a bounded setting accepts, from its field (None: unbounded)."""
    low = high = None
    for rule in Settings.model_fields[name].metadata:
        low = getattr(rule, "ge", low)
        high = getattr(rule, "le", high)
    return (low, high) if low is not None and high is not None else None


def _named(
    exc: ValidationError, values: Mapping[str, Any], origin: Mapping[str, str]
) -> ConfigError:
    """The first bad value, named where it was written, with what to write."""
    error = exc.errors()[0]
    name = str(error["loc"][0])
    what, write = _what_to_write(name)
    bounds = _bounds(name)
    if error["type"] in ("greater_than_equal", "less_than_equal") and bounds:
        return ConfigError(
            f"{origin[name]}={values[name]!r} is out of range; write {what} from {bounds[0]} "
            f"to {bounds[1]}, or leave it out for the default {Settings.model_fields[name].default!r}"
        )
    return ConfigError(
        f"{origin[name]}={values[name]!r} is not {what}; write {write}, "
        "or leave it out for that default"
    )


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """The settings from ``environ`` (default: the process environment) and the file."""
    env = os.environ if environ is None else environ
    path = config_file(env)
    from_file = _file_values(path)
    from_env = EnvironmentSource(Settings, env)()
    origin = {name: f"{path}: {name}" for name in from_file}
    origin.update({name: variable(name) for name in from_env})
    values = {**from_file, **from_env}
    try:
        return Settings(**values)
    except ValidationError as exc:
        raise _named(exc, values, origin) from None


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
