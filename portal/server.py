"""Serving the portal with uvicorn: ``kehoach portal`` and ``python -m portal``."""

from __future__ import annotations

import ipaddress
import logging
import os
import sys

from engine.config import Settings
from engine.config import settings as default_settings

LOOPBACK_NAMES = {"localhost", "localhost.localdomain", "ip6-localhost"}


class PortalConfigError(Exception):
    """A setting that makes serving unsafe; the message says what to set."""


def is_loopback(host: str) -> bool:
    host = host.strip().strip("[]")
    if host.lower() in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_can_serve(host: str, conf: Settings) -> None:
    """Refuse a non-loopback address without a configured signing secret."""
    if not is_loopback(host) and not conf.portal_secret:
        raise PortalConfigError(
            f"refusing to serve on {host}: KEHOACH_PORTAL_SECRET is not set, so links would be "
            "signed with the public development key. Set it to a long random value, e.g. "
            "KEHOACH_PORTAL_SECRET=$(python -c 'import secrets; print(secrets.token_urlsafe(48))'), "
            "or serve on 127.0.0.1 behind a reverse proxy."
        )


def run(
    host: str = "127.0.0.1",
    port: int = 8700,
    settings: Settings | None = None,
    db_url: str | None = None,
) -> None:
    """Migrate the database if needed and serve until interrupted."""
    import uvicorn

    from engine.store.db import migrate
    from portal.app import create_app

    conf = settings or default_settings()
    check_can_serve(host, conf)
    url = db_url or conf.database
    migrate(url)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    app = create_app(conf, url)
    if not conf.operator_password:
        logging.getLogger("kehoach.portal").warning(
            "operator page disabled: set KEHOACH_OPERATOR_PASSWORD to enable it"
        )
    sys.stderr.write(f"kehoach portal: http://{host}:{port}/ (links: {conf.portal_base_url})\n")
    uvicorn.run(
        app,
        host=host,
        port=port,
        proxy_headers=True,
        forwarded_allow_ips=os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1"),
        access_log=False,  # portal.hardening.AccessLog logs without the tokens
        server_header=False,
        log_level="info",
    )
