"""A local mailbox for the demo: an SMTP server that writes each message to a folder.

    python -m cli.mailbox --dir var/mailbox --port 8025

It greets with :data:`IDENT` ("220 127.0.0.1 kehoach-mailbox"), so :func:`is_mailbox`
tells it from another program listening on the same port.

Every accepted message is written, byte for byte as received, to
``<dir>/<YYYYmmdd-HHMMSS-ffffff>-<message-id slug>.eml``; any mail client opens
those files. From code, :func:`start_mailbox_server` returns a controller to stop.
"""

from __future__ import annotations

import datetime as dt
import email.parser
import email.policy
import itertools
import os
import re
import smtplib
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller

DEFAULT_PORT = 8025  # the port the demo's mailbox asks for first
IDENT = "kehoach-mailbox"
_SLUG = re.compile(r"[^A-Za-z0-9]+")
_counter = itertools.count()


def eml_name(raw: bytes, received: dt.datetime) -> str:
    """``20280801-080000-123456-<slug of Message-ID>.eml`` (sortable by arrival)."""
    headers = email.parser.BytesHeaderParser(policy=email.policy.compat32).parsebytes(raw)
    message_id = str(headers.get("Message-ID", "") or "")
    slug = _SLUG.sub("-", message_id).strip("-").lower()[:60] or "no-message-id"
    # The counter keeps two copies of one message (a resend) from overwriting each other.
    return f"{received:%Y%m%d-%H%M%S-%f}-{next(_counter):04d}-{slug}.eml"


class MailboxHandler:
    """aiosmtpd handler that stores every message as an .eml file."""

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.count = 0

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        raw = envelope.original_content or envelope.content
        if isinstance(raw, str):
            raw = raw.encode("utf-8", "surrogateescape")
        path = self.directory / eml_name(raw, dt.datetime.now().astimezone())
        # Write then rename: a reader watching the folder never sees half a file.
        tmp = path.with_suffix(".tmp")
        tmp.write_bytes(raw)
        os.replace(tmp, path)
        self.count += 1
        return "250 2.0.0 OK: stored in mailbox"


class MailboxServer:
    """A running mailbox: ``.host``, ``.port``, ``.directory``, ``.stop()``."""

    def __init__(self, directory: Path, host: str, port: int) -> None:
        self.directory = Path(directory)
        self.handler = MailboxHandler(self.directory)
        self._controller = Controller(
            self.handler,
            hostname=host,
            port=port,
            enable_SMTPUTF8=True,
            ready_timeout=10,
            ident=IDENT,
        )
        self.host = host
        self.port = port

    def start(self) -> MailboxServer:
        self._controller.start()
        return self

    def stop(self) -> None:
        self._controller.stop()

    @property
    def received(self) -> int:
        return self.handler.count


def start_mailbox_server(
    dir: str | Path = "var/mailbox", host: str = "127.0.0.1", port: int = DEFAULT_PORT
) -> MailboxServer:
    """Start the mailbox in a background thread and return its controller."""
    return MailboxServer(Path(dir), host, port).start()


def is_mailbox(host: str, port: int, timeout: float = 2.0) -> bool:
    """Whether what listens on ``host:port`` is a kehoach mailbox (its greeting names
    :data:`IDENT`); False when nothing answers or something else does."""
    try:
        with smtplib.SMTP(timeout=timeout) as client:
            code, greeting = client.connect(host, port)
            return code == 220 and IDENT.encode() in greeting.split()
    except (OSError, smtplib.SMTPException):
        return False
