"""Signed links bound to one obligation (unit, deliverable, cycle).

The token carries the obligation id, unit id, cycle key and the obligation's
token_version (bumping it revokes every link issued before).  It is signed with
``KEHOACH_PORTAL_SECRET``; secrets listed in ``KEHOACH_PORTAL_OLD_SECRETS`` still
verify, so a key can be rotated without breaking links already mailed.

Secrets fail closed: without ``KEHOACH_PORTAL_SECRET`` nothing is signed or verified
(:class:`~engine.config.ConfigError`, exit 2) unless demo mode is on
(``KEHOACH_DEMO=1``: the public :data:`DEMO_SECRET`, with a warning once per
process); every key, retired ones included, has at least :data:`MIN_SECRET_BYTES`
bytes. A link is accepted in exactly the spelling it was issued with.
"""

from __future__ import annotations

import datetime as dt
import hmac
import logging
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from zoneinfo import ZoneInfo

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

from engine.config import TIMEZONE, ConfigError, Settings, settings

log = logging.getLogger("kehoach.links")

SALT = "kehoach.obligation-link.v1"
# A supporting unit's link to a tracked task (portal.support): signed apart, so it can
# never open the lead's page or answer the task, and the lead's link never opens it.
SUPPORT_SALT = "kehoach.support-link.v1"
MIN_SECRET_BYTES = 32
# Public (it is in the source): signs links only in demo mode (KEHOACH_DEMO=1).
DEMO_SECRET = "kehoach-local-development-secret"
MAKE_SECRET = (
    "KEHOACH_PORTAL_SECRET=$(python3 -c 'import secrets; print(secrets.token_urlsafe(48))')"
)
NO_SECRET = (
    "Chưa đặt KEHOACH_PORTAL_SECRET: không có khóa để ký và kiểm tra đường dẫn gửi các đơn "
    f"vị. Đặt một khóa ngẫu nhiên dài ít nhất {MIN_SECRET_BYTES} byte, ví dụ {MAKE_SECRET}. "
    "Chỉ để chạy thử trên máy này (dữ liệu không thật): KEHOACH_DEMO=1."
)
DEMO_WARNING = (
    "CẢNH BÁO: chế độ chạy thử (KEHOACH_DEMO=1) không có KEHOACH_PORTAL_SECRET; đường dẫn "
    "được ký bằng khóa chạy thử công khai trong mã nguồn, nên ai cũng có thể làm giả đường "
    "dẫn và gửi báo cáo thay đơn vị. Không dùng cho dữ liệu thật."
)


class LinkError(Exception):
    """A link that cannot be honoured; ``reason`` is 'forged', 'expired' or 'malformed'."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class LinkClaims:
    obligation_id: int
    unit_id: str
    cycle_key: str
    token_version: int


def _too_short(name: str, secret: str) -> str | None:
    size = len(secret.encode("utf-8"))
    if size >= MIN_SECRET_BYTES:
        return None
    return (
        f"{name} chỉ dài {size} byte; khóa ký đường dẫn cần ít nhất {MIN_SECRET_BYTES} byte "
        f"ngẫu nhiên. Tạo khóa mới: {MAKE_SECRET}"
    )


def signing_secrets(conf: Settings) -> list[str]:
    """The current key first, then the retired ones still listed.

    Raises :class:`~engine.config.ConfigError` (exit 2) when there is no secret and demo
    mode is off, or when any of them is shorter than :data:`MIN_SECRET_BYTES`.
    """
    return list(_checked_secrets(conf.portal_secret, conf.portal_old_secrets, conf.demo))


@lru_cache(maxsize=8)
def _checked_secrets(current: str, old: str, demo: bool) -> tuple[str, ...]:
    if not current:
        if not demo:
            raise ConfigError(NO_SECRET)
        current = DEMO_SECRET
    else:
        problem = _too_short("KEHOACH_PORTAL_SECRET", current)
        if problem:
            raise ConfigError(problem)
    retired = [k.strip() for k in old.split(",") if k.strip()]
    for number, key in enumerate(retired, start=1):
        problem = _too_short(f"KEHOACH_PORTAL_OLD_SECRETS (khóa cũ thứ {number})", key)
        if problem:
            raise ConfigError(
                f"{problem}. Khóa cũ ngắn không còn được chấp nhận: bỏ nó khỏi danh sách "
                "(đường dẫn ký bằng nó sẽ không mở được nữa)."
            )
    return (current, *retired)


def demo_warning(conf: Settings) -> str | None:
    """The warning to show when links are signed with the public demo key, else None."""
    if conf.portal_secret or not conf.demo:
        return None
    warning = DEMO_WARNING
    if conf.portal_base_url.strip().lower().startswith("https://"):
        warning += (
            f" Địa chỉ cổng {conf.portal_base_url} dùng https như một máy chủ thật: "
            "nếu đây là hệ thống thật, hãy đặt KEHOACH_PORTAL_SECRET và bỏ KEHOACH_DEMO."
        )
    return warning


_announced = False


def announce(conf: Settings, write: Callable[[str], object] | None = None) -> None:
    """Check the secrets (ConfigError when unusable) and show the demo warning, once per
    process: through ``write`` (a command's stderr), else the log."""
    global _announced
    signing_secrets(conf)
    warning = demo_warning(conf)
    if warning is None or _announced:
        return
    _announced = True
    if write is not None:
        write(warning)
    else:
        log.warning("%s", warning)


def signing_secret(conf: Settings) -> str:
    """The key new links are signed with (the portal derives its CSRF key from it too)."""
    announce(conf)
    return signing_secrets(conf)[0]


@lru_cache(maxsize=8)
def _serializers_for(keys: tuple[str, ...], salt: str) -> tuple[URLSafeTimedSerializer, ...]:
    return tuple(URLSafeTimedSerializer(key, salt=salt) for key in keys)


def _serializers(conf: Settings, salt: str = SALT) -> tuple[URLSafeTimedSerializer, ...]:
    """The current key first, then the retired ones still listed."""
    announce(conf)
    return _serializers_for(tuple(signing_secrets(conf)), salt)


def _canonical(serializer: URLSafeTimedSerializer, token: str) -> bool:
    """Whether ``token`` is spelled exactly as this key signs it.

    itsdangerous decodes the signature leniently (padding, characters outside the
    alphabet and the unused low bits of its last character are ignored), so one link
    had many spellings, each with a rate limit of its own. Only the one it was issued
    with is accepted.
    """
    value, _, signature = token.rpartition(".")
    expected = serializer.make_signer(serializer.salt).get_signature(value)
    return hmac.compare_digest(expected, signature.encode("utf-8", "replace"))


def old_secrets_end(conf: Settings) -> dt.datetime | None:
    """The last moment retired keys are honoured, or None (no end configured)."""
    raw = conf.portal_old_secrets_until.strip()
    if not raw:
        return None
    try:
        day = dt.date.fromisoformat(raw)
    except ValueError:
        raise ValueError(
            f"KEHOACH_PORTAL_OLD_SECRETS_UNTIL={raw!r} is not a date; write YYYY-MM-DD"
        ) from None
    return dt.datetime.combine(day, dt.time.max, tzinfo=ZoneInfo(TIMEZONE))


def make_token(
    obligation_id: int,
    unit_id: str,
    cycle_key: str,
    token_version: int = 1,
    conf: Settings | None = None,
    salt: str = SALT,
) -> str:
    """``salt``: :data:`SALT` for the obligation's own link, :data:`SUPPORT_SALT` for a
    supporting unit's link to the task (``unit_id`` is then the supporting unit)."""
    conf = conf or settings()
    payload = {"o": obligation_id, "u": unit_id, "c": cycle_key, "v": token_version}
    return _serializers(conf, salt)[0].dumps(payload)


def read_token(
    token: str,
    max_age_seconds: int | None = None,
    conf: Settings | None = None,
    *,
    retired_ok: bool = False,
    now: dt.datetime | None = None,
    salt: str = SALT,
) -> LinkClaims:
    """Verify with the current key, then with each retired key; raise LinkError otherwise.

    A retired key past ``KEHOACH_PORTAL_OLD_SECRETS_UNTIL`` (at ``now``, default the real
    time: key rotation is an operational matter) makes the link "expired";
    ``retired_ok=True`` still returns its claims (to send a fresh link).
    """
    conf = conf or settings()
    end = old_secrets_end(conf)
    retired_over = end is not None and (now or dt.datetime.now(dt.UTC)) > end
    expired = False
    for index, serializer in enumerate(_serializers(conf, salt)):
        try:
            data = serializer.loads(token, max_age=max_age_seconds)
        except SignatureExpired:
            expired = expired or _canonical(serializer, token)
            continue
        except BadSignature:
            continue
        if not _canonical(serializer, token):
            raise LinkError("malformed")
        if index > 0 and retired_over and not retired_ok:
            raise LinkError("expired")
        try:
            return LinkClaims(int(data["o"]), str(data["u"]), str(data["c"]), int(data["v"]))
        except (KeyError, TypeError, ValueError):
            raise LinkError("malformed") from None
    raise LinkError("expired" if expired else "forged")


def obligation_link(obligation, conf: Settings | None = None) -> str:
    """The portal URL a unit opens to answer ``obligation`` (an engine.store.models.Obligation)."""
    conf = conf or settings()
    token = make_token(
        obligation.id, obligation.unit_id, obligation.cycle.key, obligation.token_version, conf
    )
    return f"{conf.portal_base_url.rstrip('/')}/o/{token}"


def support_link(obligation, unit_id: str, conf: Settings | None = None) -> str:
    """The portal URL supporting unit ``unit_id`` opens to contribute to the tracked task
    of ``obligation`` (the lead's): its own, signed apart (:data:`SUPPORT_SALT`)."""
    conf = conf or settings()
    token = make_token(
        obligation.id,
        unit_id,
        obligation.cycle.key,
        obligation.token_version,
        conf,
        salt=SUPPORT_SALT,
    )
    return f"{conf.portal_base_url.rstrip('/')}/p/{token}"
