"""Turn an outbox row into a correct Vietnamese ``EmailMessage``.

Templates are Jinja2 files ``<kind>.subject.j2``, ``<kind>.txt.j2`` and
``<kind>.html.j2`` in ``notifications/templates/``; a plan's ``templates_dir`` is
searched first, so a plan can override any of them (or the shared ``_layout``)
without code change. HTML is autoescaped. Everything that goes into a header is
reduced to one line first: a unit name with a newline can never add a header.
"""

from __future__ import annotations

import datetime as dt
import email.policy
import mimetypes
import re
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime
from functools import lru_cache
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from jinja2 import (
    ChainableUndefined,
    ChoiceLoader,
    Environment,
    FileSystemLoader,
    select_autoescape,
)

from engine.config import TIMEZONE, Settings
from engine.store.models import OutboxMessage, utcnow
from notifications.outbox import mail_domain

TEMPLATES = Path(__file__).parent / "templates"
TZ = ZoneInfo(TIMEZONE)

# policy.SMTP: CRLF line ends, and (utf8=False) RFC 2047 encoded words for every
# non-ASCII header, which every mail server accepts, SMTPUTF8 or not. 7bit bodies
# (base64 / quoted-printable) for the same reason: no 8BITMIME needed on the way.
SMTP_POLICY = email.policy.SMTP.clone(cte_type="7bit")

# C0/C1 controls and the Unicode line/paragraph separators: any of them in a header
# could end it (CR, LF) or be turned into a line break by some client.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]+")
_ADDRESS = re.compile(r"[^@\s<>,;\"()\[\]\\]+@[^@\s<>,;\"()\[\]\\]+")

ADMIN_DISPLAY_NAME = "Quản trị hệ thống kehoach"


class RenderError(Exception):
    """A message that cannot be built (bad address, template error, missing file).

    The dispatcher treats it as a permanent failure of that message."""


def one_line(value: Any) -> str:
    """Collapse any text to a single header-safe line (no CR/LF, no controls)."""
    text = _CONTROL.sub(" ", "" if value is None else str(value))
    return " ".join(text.split())


@lru_cache(maxsize=32)
def environment(templates_dir: str | None = None) -> Environment:
    """Jinja2 environment: the plan's folder first, then the defaults."""
    loaders = []
    if templates_dir:
        loaders.append(FileSystemLoader(templates_dir))
    loaders.append(FileSystemLoader(str(TEMPLATES)))
    return Environment(
        loader=ChoiceLoader(loaders),
        # Only the HTML part is markup; subject and text are plain and must not
        # show "&lt;" to the reader.
        autoescape=select_autoescape(enabled_extensions=("html.j2", "html")),
        # A missing optional detail (no focal person, no head) renders as empty
        # rather than blocking a deadline email.
        undefined=ChainableUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )


def render_parts(kind: str, context: dict[str, Any]) -> tuple[str, str, str]:
    """(subject, text, html) for ``kind`` with ``context``."""
    env = environment(context.get("templates_dir") or None)
    try:
        subject = env.get_template(f"{kind}.subject.j2").render(context)
        text = env.get_template(f"{kind}.txt.j2").render(context)
        html = env.get_template(f"{kind}.html.j2").render(context)
    except Exception as exc:  # TemplateNotFound, TemplateSyntaxError, UndefinedError...
        raise RenderError(f"template for {kind!r}: {type(exc).__name__}: {exc}") from exc
    return one_line(subject), text, html


def _address(addr: str, name: str | None) -> Address:
    addr = str(addr).strip()
    if not _ADDRESS.fullmatch(addr):
        raise RenderError(f"not an email address: {one_line(addr)!r}")
    username, _, domain = addr.rpartition("@")
    return Address(display_name=one_line(name), username=username, domain=domain)


def _display_names(context: dict[str, Any]) -> dict[str, str]:
    """Address -> display name, from the units and people the context knows."""
    names: dict[str, str] = {}

    def add_unit(unit: Any) -> None:
        if isinstance(unit, dict):
            for addr in unit.get("emails") or []:
                names.setdefault(str(addr).lower(), unit.get("name") or "")

    def add_person(person: Any) -> None:
        if isinstance(person, dict) and person.get("email"):
            names.setdefault(str(person["email"]).lower(), person.get("name") or "")

    add_person(context.get("head"))
    for key in ("unit", "via", "report_to", "consolidator"):
        add_unit(context.get(key))
    return names


def _ics_escape(text: str) -> str:
    return one_line(text).replace("\\", "\\\\").replace(";", "\\;").replace(",", "\\,")


def _ics_fold(line: str) -> str:
    """Fold at 75 octets (RFC 5545 §3.1) without splitting a UTF-8 character."""
    out, current = [], ""
    for char in line:
        limit = 75 if not out else 74  # continuation lines start with a space
        if len((current + char).encode("utf-8")) > limit:
            out.append(current)
            current = char
        else:
            current += char
    out.append(current)
    return "\r\n ".join(out)


def calendar_event(context: dict[str, Any], conf: Settings, now: dt.datetime) -> str:
    """An iCalendar PUBLISH with one all-day VEVENT on the due date."""
    due = dt.date.fromisoformat(context["due"]["iso"])
    plan = context.get("plan") or {}
    what = (context.get("deliverable") or {}).get("title") or ""
    summary = f"Hạn gửi: {what}" + (f" ({plan.get('tag')})" if plan.get("tag") else "")
    description = f"{plan.get('ref', '')}. {what}. Gửi tại: {context.get('link', '')}"
    lines = [
        "BEGIN:VCALENDAR",
        "VERSION:2.0",
        "PRODID:-//kehoach//Ke hoach//VI",
        "CALSCALE:GREGORIAN",
        "METHOD:PUBLISH",
        "BEGIN:VEVENT",
        # Stable per obligation: a later calendar file for the same obligation
        # (e.g. a moved deadline) updates the event instead of adding a second one.
        f"UID:obligation-{context.get('obligation_id')}@{mail_domain(conf)}",
        f"DTSTAMP:{now.astimezone(dt.UTC):%Y%m%dT%H%M%SZ}",
        f"DTSTART;VALUE=DATE:{due:%Y%m%d}",
        f"DTEND;VALUE=DATE:{due + dt.timedelta(days=1):%Y%m%d}",
        f"SUMMARY:{_ics_escape(summary)}",
        f"DESCRIPTION:{_ics_escape(description)}",
        f"URL:{one_line(context.get('link', ''))}",
        "TRANSP:TRANSPARENT",
        "END:VEVENT",
        "END:VCALENDAR",
    ]
    return "\r\n".join(_ics_fold(line) for line in lines) + "\r\n"


def _attach_document(msg: EmailMessage, path_text: str) -> None:
    path = Path(path_text)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise RenderError(f"report document {path}: {exc.strerror or exc}") from exc
    ctype = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    maintype, subtype = ctype.split("/", 1)
    msg.add_attachment(data, maintype=maintype, subtype=subtype, filename=one_line(path.name))


def build_message(
    outbox_row: OutboxMessage, settings: Settings, now: dt.datetime | None = None
) -> EmailMessage:
    """The complete message for a row: headers, text + HTML, .ics or document."""
    context = dict(outbox_row.context or {})
    kind = outbox_row.kind
    now = now or utcnow()
    subject, text, html = render_parts(kind, context)

    names = _display_names(context)
    to = [_address(a, names.get(str(a).lower())) for a in outbox_row.to_addrs or []]
    cc = [_address(a, names.get(str(a).lower())) for a in outbox_row.cc_addrs or []]
    if not to:
        raise RenderError("no recipient address (the unit has no email in the registry)")
    if kind == "delivery_failure":
        to = [_address(str(a.addr_spec), ADMIN_DISPLAY_NAME) for a in to]

    msg = EmailMessage(policy=SMTP_POLICY)
    msg["Subject"] = subject
    msg["From"] = _address(settings.mail_from, settings.mail_from_name)
    msg["To"] = to
    if cc:
        msg["Cc"] = cc
    contact_email = (context.get("contact") or {}).get("email")
    if (
        kind != "delivery_failure"
        and contact_email
        and _ADDRESS.fullmatch(str(contact_email).strip())
    ):
        msg["Reply-To"] = _address(contact_email, (context.get("contact") or {}).get("name"))
    msg["Date"] = format_datetime(now.astimezone(TZ))
    msg["Message-ID"] = outbox_row.message_id
    if outbox_row.thread_id and outbox_row.thread_id != outbox_row.message_id:
        msg["In-Reply-To"] = outbox_row.thread_id
        msg["References"] = outbox_row.thread_id
    # RFC 3834: no vacation auto-replies to machine mail.
    msg["Auto-Submitted"] = "auto-generated"
    msg["X-Kehoach-Kind"] = kind
    if outbox_row.obligation_id is not None:
        msg["X-Kehoach-Obligation"] = str(outbox_row.obligation_id)

    msg.set_content(text)
    msg.add_alternative(html, subtype="html")
    if kind == "assignment" and (context.get("due") or {}).get("iso"):
        msg.add_attachment(
            calendar_event(context, settings, now),
            subtype="calendar",
            filename="han-gui.ics",
            params={"method": "PUBLISH"},
        )
    if kind == "consolidated" and context.get("document_path"):
        _attach_document(msg, str(context["document_path"]))
    # After the body: set_content() drops Content-* headers set before it.
    msg["Content-Language"] = "vi"
    return msg


def message_bytes(msg: EmailMessage) -> bytes:
    """The exact bytes put on the wire (CRLF, RFC 2047 headers)."""
    return msg.as_bytes(policy=SMTP_POLICY)
