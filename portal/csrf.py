"""CSRF protection: a per-browser nonce cookie and a per-link form token.

The nonce is a random value in a ``SameSite=Strict``, ``HttpOnly`` cookie. Each
form carries ``HMAC(key, link token | nonce)``. A cross-site page can neither read
the nonce nor make the browser send the cookie, so it cannot forge the field; and
a form token for one link is worthless for another.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

COOKIE = "kh_nonce"
FIELD = "csrf"


def derive_key(secret: str) -> bytes:
    """A key for CSRF tokens, separate from the link-signing key derived from the same secret."""
    return hashlib.sha256(b"kehoach.portal.csrf\x00" + secret.encode("utf-8")).digest()


def new_nonce() -> str:
    return secrets.token_urlsafe(24)


def form_token(key: bytes, link_token: str, nonce: str) -> str:
    mac = hmac.new(key, f"{link_token}|{nonce}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac).decode("ascii").rstrip("=")


def valid(key: bytes, link_token: str, nonce: str | None, given: str | None) -> bool:
    if not nonce or not given or len(nonce) > 100 or len(given) > 100:
        return False
    return hmac.compare_digest(form_token(key, link_token, nonce), given)
