"""CSRF protection: a per-browser nonce cookie and a per-form token.

The nonce is a random value in a ``SameSite=Strict``, ``HttpOnly`` cookie. Each form
rendered carries ``<form id>.<HMAC(key, link token | nonce | form id)>``, the form id
random per rendering. A cross-site page can neither read the nonce nor make the
browser send the cookie, so it cannot forge the field; a form token for one link is
worthless for another; and the form id names one rendering of the form, which the
answer's idempotency key is made from (:mod:`portal.idempotency`).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

COOKIE = "kh_nonce"
FIELD = "csrf"
MAX_LENGTH = 100


def derive_key(secret: str) -> bytes:
    """A key for CSRF tokens, separate from the link-signing key derived from the same secret."""
    return hashlib.sha256(b"kehoach.portal.csrf\x00" + secret.encode("utf-8")).digest()


def new_nonce() -> str:
    return secrets.token_urlsafe(24)


def _mac(key: bytes, link_token: str, nonce: str, form_id: str) -> str:
    message = f"{link_token}|{nonce}|{form_id}".encode("utf-8", "replace")
    mac = hmac.new(key, message, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac).decode("ascii").rstrip("=")


def form_token(key: bytes, link_token: str, nonce: str, form_id: str | None = None) -> str:
    """The field of one rendering of a form (a new form id unless ``form_id`` is given)."""
    form_id = form_id or secrets.token_urlsafe(12)
    return f"{form_id}.{_mac(key, link_token, nonce, form_id)}"


def form_id(given: str) -> str:
    """The form id of a field that :func:`valid` accepted."""
    return given.partition(".")[0]


def valid(key: bytes, link_token: str, nonce: str | None, given: str | None) -> bool:
    if not nonce or not given or len(nonce) > MAX_LENGTH or len(given) > MAX_LENGTH:
        return False
    form, dot, mac = given.partition(".")
    if not dot or not form:
        return False
    expected = _mac(key, link_token, nonce, form).encode("ascii")
    return hmac.compare_digest(expected, mac.encode("utf-8", "replace"))
