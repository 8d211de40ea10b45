"""Serving the portal with uvicorn: ``kehoach portal`` and ``python -m cli.portal``."""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import os
import socket
import sys
from typing import Any

from engine.config import Settings
from engine.config import settings as default_settings

LOOPBACK_NAMES = {"localhost", "localhost.localdomain", "ip6-localhost"}


class PortalConfigError(Exception):
    """A setting that makes serving unsafe, or one written wrong (``malformed``: the
    command exits 2, like any malformed setting); the message says what to set."""

    def __init__(self, message: str, *, malformed: bool = False) -> None:
        super().__init__(message)
        self.malformed = malformed


def is_loopback(host: str) -> bool:
    host = host.strip().strip("[]")
    if host.lower() in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_can_serve(host: str, conf: Settings) -> None:
    """Refuse settings that would sign links unsafely or fail on every request: no
    secret outside demo mode, a secret shorter than 32 bytes (both malformed: exit 2),
    the public demo key on a non-loopback address."""
    from engine.links import MAKE_SECRET, old_secrets_end, signing_secrets

    try:
        signing_secrets(conf)
        old_secrets_end(conf)
    except ValueError as exc:  # engine.config.ConfigError is one too
        raise PortalConfigError(str(exc), malformed=True) from None
    if not is_loopback(host) and not conf.portal_secret:
        raise PortalConfigError(
            f"Không phục vụ trên {host}: chưa đặt KEHOACH_PORTAL_SECRET, đường dẫn sẽ được ký "
            "bằng khóa chạy thử công khai. Đặt một khóa ngẫu nhiên dài, ví dụ "
            f"{MAKE_SECRET}, hoặc phục vụ trên 127.0.0.1 (chạy thử trên máy này)."
        )


def workers_from_env() -> int:
    """``KEHOACH_PORTAL_WORKERS`` (default 1): uvicorn worker processes."""
    raw = os.environ.get("KEHOACH_PORTAL_WORKERS", "1").strip() or "1"
    try:
        workers = int(raw)
    except ValueError:
        raise PortalConfigError(
            f"KEHOACH_PORTAL_WORKERS={raw!r} không phải số nguyên; ghi số tiến trình phục vụ "
            "từ 1 đến 64 (ví dụ 2), hoặc bỏ đi để dùng mặc định 1",
            malformed=True,
        ) from None
    if not 1 <= workers <= 64:
        raise PortalConfigError(
            f"KEHOACH_PORTAL_WORKERS={raw!r} nằm ngoài khoảng cho phép; ghi số nguyên từ 1 "
            "đến 64, hoặc bỏ đi để dùng mặc định 1",
            malformed=True,
        )
    return workers


def app_from_env():
    """The app of one worker process (uvicorn factory): settings from the environment."""
    from portal.app import create_app

    _logging()
    url = os.environ.get("KEHOACH_DATABASE_URL") or None
    return create_app(default_settings(), url, own_process=True)


def _logging() -> None:
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )


def run(
    host: str = "127.0.0.1",
    port: int = 8700,
    settings: Settings | None = None,
    db_url: str | None = None,
    workers: int | None = None,
) -> None:
    """Migrate the database if needed and serve until interrupted.

    With several workers (``KEHOACH_PORTAL_WORKERS``), each process has its own rate
    limit buckets: the limits apply per process.
    """
    import uvicorn

    from engine.links import announce
    from engine.store.db import migrate
    from portal.app import create_app

    conf = settings or default_settings()
    check_can_serve(host, conf)
    announce(conf, write=lambda warning: sys.stderr.write(f"kehoach portal: {warning}\n"))
    workers = workers or workers_from_env()
    url = db_url or conf.database
    migrate(url)
    _logging()
    if not conf.operator_password:
        logging.getLogger("kehoach.portal").warning(
            "operator page disabled: set KEHOACH_OPERATOR_PASSWORD to enable it"
        )
    sys.stderr.write(
        f"kehoach portal: http://{host}:{port}/ (links: {conf.portal_base_url}; "
        f"{workers} worker{'s' if workers > 1 else ''})\n"
    )
    options = dict(
        host=host,
        port=port,
        proxy_headers=True,
        forwarded_allow_ips=os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1"),
        access_log=False,  # portal.hardening.AccessLog logs without the tokens
        server_header=False,
        log_level="info",
    )
    if workers == 1:
        # options holds uvicorn keywords of several types; mypy sees one union value type
        uvicorn.run(create_app(conf, url, own_process=True), **options)  # type: ignore[arg-type]
        return
    # Worker processes build their own app from the environment.
    os.environ["KEHOACH_DATABASE_URL"] = url
    serve_workers("portal.server:app_from_env", workers, **options)


def serve_workers(app: str, workers: int, **options: object) -> None:
    """uvicorn's multi-process mode, with Nagle's algorithm off on every connection.

    uvicorn 0.54 binds the shared listening socket with ``proto`` 0, accepted sockets
    inherit it, and asyncio then skips TCP_NODELAY: every keep-alive response waited for
    the client's delayed ACK, +40 ms per request (Kludex/uvicorn#3149; measured here:
    0.7 ms with one worker, 44 ms with two). The socket is re-wrapped as IPPROTO_TCP,
    which changes nothing where the installed uvicorn already binds it so (0.55 here).
    """
    from uvicorn import Config
    from uvicorn.supervisors import Multiprocess

    # options: uvicorn keywords of several types (one union value type for mypy)
    config = Config(app, factory=True, workers=workers, **options)  # type: ignore[arg-type]
    with contextlib.suppress(KeyboardInterrupt):
        Multiprocess(config, sockets=[listening_socket(config)]).run()


def listening_socket(config: Any) -> socket.socket:
    """``config.bind_socket()``, re-wrapped as IPPROTO_TCP when it is a TCP socket, so the
    connections it accepts get TCP_NODELAY from asyncio."""
    bound = config.bind_socket()
    if bound.family not in (socket.AF_INET, socket.AF_INET6):
        return bound  # a Unix socket: nothing to do
    sock = socket.socket(bound.family, bound.type, socket.IPPROTO_TCP, fileno=bound.detach())
    sock.set_inheritable(True)
    return sock
