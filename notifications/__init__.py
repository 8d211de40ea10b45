"""Email to units: Vietnamese templates, MIME and an aiosmtplib sender for the rows the
engine queues (``engine.outbox``: what to send to whom, in the state change's transaction).

- ``notifications.render``: turn a row into wire bytes / an ``EmailMessage`` (Jinja2).
- ``notifications.mime``: the fast MIME writer behind it (RFC 2047, base64, CRLF).
- ``notifications.smtp``: one reusable aiosmtplib connection, rate limit, error classes.
- ``notifications.dispatch``: deliver due rows over SMTP (async, pooled, rate-limited).
- ``notifications.mailbox``: a local SMTP server that writes ``.eml`` files (demo).
- ``notifications.flows``: the Prefect flow; the only module here that imports Prefect.
"""
