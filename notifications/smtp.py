"""SMTP delivery with aiosmtplib: one reusable connection, a rate limit, error classes.

The dispatcher opens up to ``smtp_connections`` of these and keeps each one open
across messages: a TLS handshake and AUTH per message would cost more than the
message itself. Errors are reduced to :class:`SmtpFailure`, which says whether
retrying can help (4xx, network) or not (5xx).
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import ssl
import time
from collections.abc import Sequence

import aiosmtplib
from aiosmtplib.protocol import normalize_message_line_endings
from aiosmtplib.typing import SMTPStatus

from engine.config import Settings

SECURITY_MODES = ("none", "starttls", "tls")
# A bare ASCII address (what notifications.render lets through): it goes on the MAIL
# and RCPT lines as it is. aiosmtplib's sendmail parses every address with
# email.utils first, a third of its CPU per message; anything else still goes that way.
_PLAIN_ADDRESS = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]+@[A-Za-z0-9.-]+")


class SmtpFailure(Exception):
    """A delivery attempt that did not succeed.

    ``permanent``: the server refused the message for good (5xx); retrying the same
    message cannot help. ``connection``: the failure happened before any message
    was offered (connect, TLS, AUTH), so it says nothing about the message and
    every other message would fail the same way right now.
    """

    def __init__(
        self,
        message: str,
        *,
        code: int | None = None,
        permanent: bool = False,
        connection: bool = False,
        refused: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.permanent = permanent
        self.connection = connection
        # every recipient refused at RCPT: address -> "code text" (the codes may differ)
        self.refused = refused or {}


def tls_context(conf: Settings) -> ssl.SSLContext:
    """Verifying context; ``smtp_ca_file`` adds a private CA (e.g. a ministry's own)."""
    return ssl.create_default_context(cafile=conf.smtp_ca_file or None)


def client_for(conf: Settings) -> aiosmtplib.SMTP:
    """An unconnected aiosmtplib client configured from settings."""
    security = conf.smtp_security.lower()
    if security not in SECURITY_MODES:
        raise ValueError(
            f"smtp_security is {conf.smtp_security!r}; expected one of {', '.join(SECURITY_MODES)}"
        )
    return aiosmtplib.SMTP(
        hostname=conf.smtp_host,
        port=conf.smtp_port,
        username=conf.smtp_username or None,
        password=conf.smtp_password or None,
        use_tls=security == "tls",
        # False, not None: None would mean "STARTTLS if offered", and a plain
        # setting must stay plain (e.g. a local relay with a broken certificate).
        start_tls=security == "starttls",
        tls_context=tls_context(conf) if security != "none" else None,
        timeout=conf.smtp_timeout,
    )


class TokenBucket:
    """At most ``rate`` acquisitions per second on average, bursts up to ``capacity``.

    ``rate`` 0 means unlimited. Shared by all connections of one dispatcher, so the
    limit holds for the whole dispatcher, not per connection.
    """

    def __init__(self, rate: float, capacity: float | None = None) -> None:
        self.rate = float(rate)
        self.capacity = capacity if capacity is not None else max(1.0, self.rate)
        self._tokens = self.capacity
        self._stamp = time.monotonic()
        self._lock = asyncio.Lock()

    async def acquire(self) -> None:
        if self.rate <= 0:
            return
        async with self._lock:
            while True:
                now = time.monotonic()
                self._tokens = min(self.capacity, self._tokens + (now - self._stamp) * self.rate)
                self._stamp = now
                if self._tokens >= 1:
                    self._tokens -= 1
                    return
                await asyncio.sleep((1 - self._tokens) / self.rate)


def wire_size(data: bytes) -> int:
    """The octets of ``data`` as sent in DATA (RFC 1870 SIZE), before dot-stuffing: what
    aiosmtplib's normalize_message_line_endings gives, without its regex pass over the
    whole message when every line already ends in CRLF (every rendered message does)."""
    crlf = data.count(b"\r\n")
    if data.count(b"\r") != crlf or data.count(b"\n") != crlf:
        return len(normalize_message_line_endings(data))
    return len(data) + (0 if data.endswith(b"\r\n") else 2)


async def sendmail(
    client: aiosmtplib.SMTP, sender: str, recipients: Sequence[str], data: bytes
) -> dict[str, aiosmtplib.SMTPResponse]:
    """``client.sendmail(sender, recipients, data)``: the same commands, replies and
    exceptions, without parsing plain addresses again. Returns the refused recipients."""
    addresses = (sender, *recipients)
    if client.is_ehlo_or_helo_needed or not all(_PLAIN_ADDRESS.fullmatch(a) for a in addresses):
        errors, _ = await client.sendmail(sender, list(recipients), data)
        return errors
    options = []
    if client.supports_extension("size"):  # RFC 1870: the octets as sent in DATA
        options.append(b"SIZE=%d" % wire_size(data))
    refused: list[aiosmtplib.SMTPRecipientRefused] = []
    try:
        reply = await client.execute_command(b"MAIL", b"FROM:<%s>" % sender.encode(), *options)
        if reply.code != SMTPStatus.completed:
            raise aiosmtplib.SMTPSenderRefused(reply.code, reply.message, sender)
        for address in recipients:
            reply = await client.execute_command(b"RCPT", b"TO:<%s>" % address.encode())
            if reply.code not in (SMTPStatus.completed, SMTPStatus.will_forward):
                refused.append(aiosmtplib.SMTPRecipientRefused(reply.code, reply.message, address))
        if len(refused) == len(recipients):
            raise aiosmtplib.SMTPRecipientsRefused(refused)
        await client.data(data)
    except (aiosmtplib.SMTPResponseException, aiosmtplib.SMTPRecipientsRefused):
        # Reset the envelope for the next message, as sendmail does.
        with contextlib.suppress(ConnectionError, aiosmtplib.SMTPResponseException):
            await client.rset()
        raise
    return {r.recipient: aiosmtplib.SMTPResponse(r.code, r.message) for r in refused}


def _describe(exc: BaseException) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


class SmtpConnection:
    """One SMTP connection, opened on first use and reused for the next messages."""

    def __init__(self, conf: Settings) -> None:
        self.conf = conf
        self._client: aiosmtplib.SMTP | None = None
        self.connects = 0

    @property
    def is_open(self) -> bool:
        return self._client is not None and self._client.is_connected

    async def _connect(self) -> aiosmtplib.SMTP:
        client = client_for(self.conf)
        try:
            await client.connect()
            if client.is_ehlo_or_helo_needed:  # greeted once here, not in each sendmail
                try:
                    await client.ehlo()
                except aiosmtplib.SMTPHeloError:
                    await client.helo()
        except aiosmtplib.SMTPResponseException as exc:
            # e.g. 421 greeting or 535 AUTH: the server or our configuration, not
            # the message. Retried later; a wrong password shows in last_error.
            raise SmtpFailure(f"{exc.code} {exc.message}", code=exc.code, connection=True) from exc
        except (TimeoutError, aiosmtplib.SMTPException, OSError, ssl.SSLError) as exc:
            raise SmtpFailure(
                f"cannot connect to {self.conf.smtp_host}:{self.conf.smtp_port}: {_describe(exc)}",
                connection=True,
            ) from exc
        self.connects += 1
        self._client = client
        return client

    async def close(self) -> None:
        """QUIT politely; a dead connection is just dropped."""
        client, self._client = self._client, None
        if client is None:
            return
        try:
            if client.is_connected:
                await client.quit()
        except (TimeoutError, aiosmtplib.SMTPException, OSError):
            client.close()

    def _drop(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            client.close()

    async def send(self, sender: str, recipients: Sequence[str], data: bytes) -> dict[str, str]:
        """Send ``data`` as is; return recipients the server refused (partial refusal).

        A connection the server closed while idle is reopened once: that is not a
        delivery failure.
        """
        reused = self.is_open
        client = self._client if reused else await self._connect()
        assert client is not None  # is_open means a client is there
        try:
            errors = await sendmail(client, sender, recipients, data)
        except aiosmtplib.SMTPServerDisconnected as exc:
            self._drop()
            if not reused:
                raise SmtpFailure(f"server closed the connection: {_describe(exc)}") from exc
            return await self.send(sender, recipients, data)
        except aiosmtplib.SMTPRecipientsRefused as exc:
            codes = [r.code for r in exc.recipients]
            text = "; ".join(f"{r.recipient}: {r.code} {r.message}" for r in exc.recipients)
            permanent = all(500 <= c < 600 for c in codes)
            raise SmtpFailure(
                text,
                code=max(codes) if codes else None,
                permanent=permanent,
                refused={r.recipient: f"{r.code} {r.message}" for r in exc.recipients},
            ) from exc
        except aiosmtplib.SMTPResponseException as exc:
            # After a refusal the envelope state is uncertain (a 421 also closes the
            # channel): start the next message on a fresh connection.
            self._drop()
            raise SmtpFailure(
                f"{exc.code} {exc.message}", code=exc.code, permanent=500 <= exc.code < 600
            ) from exc
        except (TimeoutError, aiosmtplib.SMTPException, OSError) as exc:
            self._drop()
            raise SmtpFailure(_describe(exc)) from exc
        return {addr: f"{resp.code} {resp.message}" for addr, resp in errors.items()}
