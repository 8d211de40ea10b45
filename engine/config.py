"""Configuration from environment variables, with an optional TOML file.

Precedence: environment variable > file named by ``KEHOACH_CONFIG`` (or ``kehoach.toml``
in the working directory) > the defaults below.  Every setting is documented in
README.md; nothing secret has a default that would work in production.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field, fields
from functools import lru_cache
from pathlib import Path

from engine.errors import KehoachError

TIMEZONE = "Asia/Ho_Chi_Minh"


@dataclass(frozen=True)
class Settings:
    home: Path = Path("var")
    database_url: str = ""
    # SMTP
    smtp_host: str = "127.0.0.1"
    smtp_port: int = 8025
    smtp_security: str = "none"  # none | starttls | tls
    smtp_username: str = ""
    smtp_password: str = ""
    smtp_timeout: float = 30.0
    smtp_ca_file: str = ""
    smtp_connections: int = 4
    smtp_rate_per_second: float = 0.0  # 0 = unlimited
    smtp_give_up_hours: float = 48.0
    mail_from: str = "kehoach@kehoach.example"
    mail_from_name: str = "Hệ thống kehoach"
    admin_email: str = "admin@kehoach.example"
    # portal
    portal_base_url: str = "http://127.0.0.1:8700"
    portal_secret: str = ""
    portal_old_secrets: str = ""  # comma-separated, accepted during a grace period
    portal_old_secrets_until: str = ""  # YYYY-MM-DD: the grace period's last day (empty: none)
    portal_max_upload_mb: float = 20.0
    operator_user: str = "operator"
    operator_password: str = ""
    intake_batch_seconds: float = 10.0  # portal -> intake flow: at most one hand-over this often
    extra: dict[str, str] = field(default_factory=dict)

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


def _coerce(kind: object, raw: object) -> object:
    kind_name = kind if isinstance(kind, str) else getattr(kind, "__name__", str(kind))
    if kind_name == "int":
        return int(str(raw))
    if kind_name == "float":
        return float(str(raw))
    if kind_name == "Path":
        return Path(str(raw))
    return str(raw)


def load_settings(environ: dict[str, str] | None = None) -> Settings:
    env = os.environ if environ is None else environ
    values: dict[str, object] = {}
    config_path = env.get("KEHOACH_CONFIG") or (
        "kehoach.toml" if Path("kehoach.toml").exists() else ""
    )
    if config_path:
        with open(config_path, "rb") as fh:
            values.update(tomllib.load(fh))
    source = {name: f"{config_path}: {name}" for name in values}
    for f in fields(Settings):
        if f.name == "extra":
            continue
        key = f"KEHOACH_{f.name.upper()}"
        if key in env:
            values[f.name] = env[key]
            source[f.name] = key
    known = {f.name: f for f in fields(Settings)}
    unknown = sorted(set(values) - set(known))
    if unknown:
        raise ConfigError(f"{config_path}: unknown setting(s) {', '.join(unknown)}")
    typed = {}
    for name, raw in values.items():
        try:
            typed[name] = _coerce(known[name].type, raw)
        except ValueError:
            kind = known[name].type
            kind = kind if isinstance(kind, str) else getattr(kind, "__name__", str(kind))
            what = "a whole number" if kind == "int" else "a number"
            raise ConfigError(
                f"{source[name]}={raw!r} is not {what}; write {what} such as "
                f"{getattr(Settings, name)!r}, or leave it out for that default"
            ) from None
    return Settings(**typed)  # type: ignore[arg-type]


@lru_cache(maxsize=1)
def settings() -> Settings:
    return load_settings()
