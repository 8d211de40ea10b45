"""ASGI middleware: security headers, request size limit, per-address rate limit.

Written as plain ASGI so it also covers requests that never reach a route (a body
that is too large is refused before any form parsing).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from portal.ratelimit import Limiter

log = logging.getLogger("kehoach.portal")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'"
)
SECURITY_HEADERS = [
    (b"content-security-policy", CSP.encode()),
    (b"x-content-type-options", b"nosniff"),
    # Links carry their token in the path: never leak it in a Referer header.
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"cross-origin-resource-policy", b"same-origin"),
    (b"permissions-policy", b"camera=(), microphone=(), geolocation=(), interest-cohort=()"),
]
_SECURITY_HEADER_NAMES = frozenset(name for name, _ in SECURITY_HEADERS)


async def send_html(send: Send, status: int, body: bytes, *extra: tuple[bytes, bytes]) -> None:
    """Answer from ASGI middleware with a whole HTML page (before the app runs)."""
    headers = [
        (b"content-type", b"text/html; charset=utf-8"),
        (b"content-length", str(len(body)).encode()),
        *extra,
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class SecurityHeaders:
    """Add the security headers to every response; ``no-store`` on everything but /static."""

    def __init__(self, app: ASGIApp, hsts: bool = False) -> None:
        self.app = app
        self.hsts = hsts

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        static = scope.get("path", "").startswith("/static/")

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [
                    (k, v)
                    for k, v in message.get("headers", [])
                    if (name := k.lower()) not in _SECURITY_HEADER_NAMES
                    and (static or name != b"cache-control")
                ]
                headers.extend(SECURITY_HEADERS)
                if not static:
                    headers.append((b"cache-control", b"no-store"))
                    headers.append((b"pragma", b"no-cache"))
                if self.hsts:
                    headers.append((b"strict-transport-security", b"max-age=31536000"))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)


class BodyTooLarge(Exception):
    pass


class BodyLimit:
    """Refuse bodies over ``max_bytes``: by Content-Length at once, else while streaming."""

    def __init__(
        self, app: ASGIApp, max_bytes: int, render: Callable[[Scope], tuple[int, bytes]]
    ) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.render = render  # scope -> (status, HTML page)

    async def _refuse(self, scope: Scope, send: Send) -> None:
        status, body = self.render(scope)
        await send_html(send, status, body, (b"connection", b"close"))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", []):
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = -1
                if declared < 0 or declared > self.max_bytes:
                    log.info(
                        "refused %s %s: body of %s bytes", scope["method"], _where(scope), value
                    )
                    await self._refuse(scope, send)
                    return
        received = 0
        started = False

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise BodyTooLarge
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except BodyTooLarge:
            log.info("refused %s %s: streamed body over the limit", scope["method"], _where(scope))
            if not started:
                await self._refuse(scope, send)


class CrashGuard:
    """Any unexpected error becomes the Vietnamese 500 page; the traceback goes to the log."""

    def __init__(self, app: ASGIApp, render: Callable[[Scope], tuple[int, bytes]]) -> None:
        self.app = app
        self.render = render

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except BodyTooLarge:
            raise
        except Exception:
            log.exception("unhandled error on %s %s", scope.get("method"), _where(scope))
            if started:
                raise
            status, body = self.render(scope)
            await send(
                {
                    "type": "http.response.start",
                    "status": status,
                    "headers": [
                        (b"content-type", b"text/html; charset=utf-8"),
                        (b"content-length", str(len(body)).encode()),
                    ],
                }
            )
            await send({"type": "http.response.body", "body": body})


class AddressLimit:
    """A token bucket per client address over every request (static files excepted)."""

    def __init__(
        self, app: ASGIApp, limiter: Limiter, render: Callable[[Scope], tuple[int, bytes]]
    ) -> None:
        self.app = app
        self.limiter = limiter
        self.render = render

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("path", "").startswith("/static/"):
            await self.app(scope, receive, send)
            return
        if not self.limiter.allow(client_address(scope)):
            status, body = self.render(scope)
            await send_html(send, status, body, (b"retry-after", b"30"))
            return
        await self.app(scope, receive, send)


class AccessLog:
    """One log line per request, with the link token cut short (uvicorn's own access
    log is off: it would write every token in full)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.log = logging.getLogger("kehoach.portal.access")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self.log.isEnabledFor(logging.INFO):
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 0

        async def tracking_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        finally:
            self.log.info(
                '%s "%s %s" %s %.1fms',
                client_address(scope),
                scope.get("method"),
                _where(scope),
                status,
                (time.perf_counter() - started) * 1000,
            )


def client_address(scope: Scope) -> str:
    """The peer address (uvicorn already applied X-Forwarded-For from trusted proxies)."""
    client = scope.get("client")
    return str(client[0]) if client else "unknown"


def _where(scope: Scope) -> str:
    path = str(scope.get("path", ""))
    if path.startswith("/o/"):  # never log a whole token
        token, _, rest = path[3:].partition("/")
        return f"/o/{token[:8]}…/{rest}" if rest else f"/o/{token[:8]}…"
    return path
