"""The settings' declarations, and what is given for them, without pydantic-settings.

:class:`SettingsFields` declares every setting once: its type, default, bounds and
validators. engine.config's ``Settings`` is this model with pydantic-settings' base added,
and :func:`read_given` validates what is given (the ``KEHOACH_<NAME>`` variables and the
configuration file) with this model alone, for `kehoach validate`, whose start-up
pydantic-settings would cost a tenth of (engine.checks_time). Both read the values the
same way (:func:`given`) and refuse a bad one with the same :class:`ConfigError`
(:func:`refusal`), so a setting validate reads cannot mean another thing in another
command. The messages are Vietnamese; pydantic's English reason is kept in
``ConfigError.detail`` (printed with ``KEHOACH_DEBUG=1``).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal, TypeVar, get_args, get_origin

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from engine.config_given import ENV_PREFIX, FIRST_DEADLINE_WARN_DAYS, config_file
from engine.errors import KehoachError

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


class ConfigError(KehoachError, ValueError):
    """A setting that cannot be used; the message names it and says what to write."""

    exit_code = 2

    def __init__(self, message: str, detail: str = "") -> None:
        super().__init__(message)
        self.detail = detail  # English, for the developer (KEHOACH_DEBUG=1)


class SettingsFields(BaseModel):
    """Every setting (README.md, "Settings"); the configuration pydantic-settings'
    BaseSettings would give too, so this model and engine.config's accept the same."""

    model_config = ConfigDict(
        frozen=True,
        extra="forbid",
        coerce_numbers_to_str=True,
        validate_default=True,
        arbitrary_types_allowed=True,
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
    portal_threads: int = Field(default=4, ge=1, le=256)
    # the loader warns when a plan's first deadline is this close to its effective date
    first_deadline_warn_days: int = FIRST_DEADLINE_WARN_DAYS
    # Prefect: the API deploy, simulate, demo and the portal's hand-off use, and only it
    # (engine.config.prefect_api); empty: PREFECT_API_URL, else a local server (demo, dev).
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


FIELDS = SettingsFields.model_fields
Model = TypeVar("Model", bound=SettingsFields)


def variable(name: str) -> str:
    """The environment variable of a setting: ``smtp_port`` -> ``KEHOACH_SMTP_PORT``."""
    return f"{ENV_PREFIX}{name.upper()}"


def _toml_place(exc: Exception) -> str:
    found = re.search(r"at line (\d+), column (\d+)", str(exc))
    return f":{found.group(1)}:{found.group(2)}" if found else ""


def _file_values(path: str) -> dict[str, Any]:
    """The settings a configuration file writes; its keys in any case, as
    pydantic-settings reads them (the first spelling of a name wins)."""
    if not path:
        return {}
    if not Path(path).is_file():
        raise ConfigError(
            f"{path}: không có tệp cấu hình này; sửa đường dẫn trong KEHOACH_CONFIG, hoặc bỏ "
            "biến đó (khi đó đọc kehoach.toml trong thư mục đang chạy, nếu có)"
        )
    import tomllib  # only when there is a file

    try:
        with open(path, "rb") as file:
            data = tomllib.load(file)
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(
            f"{path}{_toml_place(exc)}: tệp cấu hình không phải TOML (UTF-8) hợp lệ; mỗi dòng "
            'một thiết lập, ví dụ smtp_host = "mail.example" hoặc smtp_port = 587',
            detail=f"{type(exc).__name__}: {exc}",
        ) from None
    values: dict[str, Any] = {}
    unknown = []
    for key, value in data.items():
        if key.lower() in FIELDS:
            values.setdefault(key.lower(), value)
        else:
            unknown.append(key)
    if unknown:
        import difflib  # only for a misspelt name

        unknown.sort()
        near = {k: difflib.get_close_matches(k.lower(), FIELDS, n=1) for k in unknown}
        hint = "; ".join(f"{k}: có phải {m[0]}?" for k, m in near.items() if m)
        raise ConfigError(
            f"{path}: không có thiết lập nào tên {', '.join(unknown)}"
            + (f" ({hint})" if hint else "")
            + "; các thiết lập và tên của chúng ở bảng thiết lập trong README.md"
        )
    return values


def given(environ: Mapping[str, str]) -> tuple[dict[str, Any], dict[str, str]]:
    """(the values given, where each was written): the file's, then the variables'
    over them. ``KEHOACH_`` variables that name no setting (KEHOACH_DEBUG, KEHOACH_NOW, …)
    are other modules' and are not read here."""
    path = config_file(environ)
    from_file = _file_values(path)
    from_env = {
        name: environ[variable(name)]
        for name in FIELDS
        if name != "extra" and variable(name) in environ  # extra: a table, in the file
    }
    origin = {name: f"{path}: {name}" for name in from_file}
    origin.update({name: variable(name) for name in from_env})
    return {**from_file, **from_env}, origin


def _what_to_write(name: str) -> tuple[str, str]:
    """(what a setting's value must be, what to write instead of a bad one)."""
    info = FIELDS[name]
    kind, default = info.annotation, info.default
    if kind is int or kind is float:
        what = "số nguyên" if kind is int else "số"
        return what, f"một {what} như {default!r}"
    if get_origin(kind) is Literal:
        what = f"một trong {', '.join(map(str, get_args(kind)))}"
        return what, f"một trong các giá trị đó (mặc định {default!r})"
    if kind is bool:
        return "true hoặc false", f"true hoặc false (mặc định {str(default).lower()})"
    if name == "mail_hours":
        return "giờ dạng HH:MM-HH:MM hoặc any", f"ví dụ {default!r} hoặc 'any'"
    return f"giá trị dùng được cho {name}", f"một giá trị như {default!r}"


def _bounds(name: str) -> tuple[Any, Any] | None:
    """(lowest, highest) a bounded setting accepts, from its field (None: unbounded)."""
    low = high = None
    for rule in FIELDS[name].metadata:
        low = getattr(rule, "ge", low)
        high = getattr(rule, "le", high)
    return (low, high) if low is not None and high is not None else None


def refusal(
    exc: ValidationError, values: Mapping[str, Any], origin: Mapping[str, str]
) -> ConfigError:
    """The first bad value, named where it was written, with what to write."""
    error = exc.errors()[0]
    name = str(error["loc"][0])
    what, write = _what_to_write(name)
    bounds = _bounds(name)
    detail = f"{origin[name]}: {error['msg']}"
    if error["type"] in ("greater_than_equal", "less_than_equal") and bounds:
        return ConfigError(
            f"{origin[name]}={values[name]!r} nằm ngoài khoảng cho phép; ghi {what} từ "
            f"{bounds[0]} đến {bounds[1]}, hoặc bỏ đi để dùng mặc định {FIELDS[name].default!r}",
            detail,
        )
    return ConfigError(
        f"{origin[name]}={values[name]!r} không phải {what}; ghi {write}, hoặc bỏ đi để "
        "dùng giá trị mặc định",
        detail,
    )


def read_given(environ: Mapping[str, str], model: type[Model]) -> Model:
    """``model`` (this one, or engine.config's Settings) of what ``environ`` and the
    file give; ConfigError (exit 2) for the first value that does not fit."""
    values, origin = given(environ)
    try:
        return model(**values)
    except ValidationError as exc:
        raise refusal(exc, values, origin) from None
