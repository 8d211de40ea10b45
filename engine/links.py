"""Signed links bound to one obligation (unit, deliverable, cycle).

The token carries the obligation id, unit id, cycle key and the obligation's
token_version (bumping it revokes every link issued before).  It is signed with
``KEHOACH_PORTAL_SECRET``; secrets listed in ``KEHOACH_PORTAL_OLD_SECRETS`` still
verify, so a key can be rotated without breaking links already mailed.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from functools import lru_cache
from zoneinfo import ZoneInfo

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

from engine.config import TIMEZONE, Settings, settings

SALT = "kehoach.obligation-link.v1"


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


def _secret(conf: Settings) -> str:
    if conf.portal_secret:
        return conf.portal_secret
    # Embedded default for the local demo only; the portal refuses to start on a
    # non-loopback address without a configured secret.
    return "kehoach-local-development-secret"


def _serializers(conf: Settings) -> list[URLSafeTimedSerializer]:
    """The current key first, then the retired ones still listed."""
    keys = [_secret(conf)] + [k.strip() for k in conf.portal_old_secrets.split(",") if k.strip()]
    return list(_built(tuple(keys)))


@lru_cache(maxsize=8)
def _built(keys: tuple[str, ...]) -> tuple[URLSafeTimedSerializer, ...]:
    """The serializers of one set of keys, built once (a sweep signs thousands of links)."""
    return tuple(URLSafeTimedSerializer(key, salt=SALT) for key in keys)


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
) -> str:
    conf = conf or settings()
    payload = {"o": obligation_id, "u": unit_id, "c": cycle_key, "v": token_version}
    return _serializers(conf)[0].dumps(payload)


def read_token(
    token: str,
    max_age_seconds: int | None = None,
    conf: Settings | None = None,
    *,
    retired_ok: bool = False,
    now: dt.datetime | None = None,
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
    for index, serializer in enumerate(_serializers(conf)):
        try:
            data = serializer.loads(token, max_age=max_age_seconds)
        except SignatureExpired:
            expired = True
            continue
        except BadSignature:
            continue
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
