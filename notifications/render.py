"""Turn an outbox row into a correct Vietnamese ``EmailMessage``.

The wire bytes are written by ``notifications.mime`` (RFC 2047 headers, base64
UTF-8 bodies, CRLF); ``build_message`` parses them back into an ``EmailMessage``.

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
from dataclasses import dataclass
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
from jinja2.sandbox import SandboxedEnvironment

from engine.config import TIMEZONE, Settings
from engine.outbox import MailKind, mail_domain
from engine.store.models import OutboxMessage, utcnow
from notifications import mime

TEMPLATES = Path(__file__).parent / "templates"
TZ = ZoneInfo(TIMEZONE)


# C0/C1 controls and the Unicode line/paragraph separators: any of them in a header
# could end it (CR, LF) or be turned into a line break by some client.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]+")
_ADDRESS = re.compile(r"[^@\s<>,;\"()\[\]\\]+@[^@\s<>,;\"()\[\]\\]+")

ADMIN_DISPLAY_NAME = "Quản trị hệ thống kehoach"
SUBJECT_MAX = 79  # characters: subjects stay under 80, the deadline and the matter first
_ELASTIC = re.compile("\x0e(.*?)\x0f", re.S)
_OPTIONAL = re.compile("\x10(.*?)\x1e(.*?)\x11", re.S)
_MIN_ELASTIC = 12  # a shortened part keeps at least this much


class RenderError(Exception):
    """A message that cannot be built (bad address, template error, missing file).

    The dispatcher treats it as a permanent failure of that message."""


def one_line(value: Any) -> str:
    """Collapse any text to a single header-safe line (no CR/LF, no controls)."""
    text = _CONTROL.sub(" ", "" if value is None else str(value))
    return " ".join(text.split())


def elastic(value: Any) -> str:
    """Jinja filter: a part of a subject that may be shortened to keep it under 80."""
    return f"\x0e{one_line(value)}\x0f"


def optional(value: Any, instead: str = "") -> str:
    """Jinja filter (or filter block): a part of a subject that is left out, or put as
    ``instead``, when the subject is too long: the plan's name (`` — Kế hoạch PCCC``)
    goes first, before any title is shortened; a unit's name is never in one."""
    return f"\x10{value}\x1e{_CONTROL.sub(' ', instead)}\x11"


def clip(text: str, size: int) -> str:
    """``text`` in at most ``size`` characters, cut at a word and ended with "…"."""
    if len(text) <= size:
        return text
    cut = text[: max(1, size - 1)]
    if " " in cut.strip():
        cut = cut[: cut.rstrip().rfind(" ")]
    return cut.rstrip(" ,;:–—-(") + "…"


def _plain(marked: str) -> str:
    return one_line(_ELASTIC.sub(r"\1", _OPTIONAL.sub(r"\1", marked)))


def _drop_last_optional(marked: str) -> str | None:
    found = list(_OPTIONAL.finditer(marked))
    if not found:
        return None
    last = found[-1]
    instead = f"\x10{last[2]}\x1e\x11" if last[2] else ""  # may give way in its turn
    return marked[: last.start()] + instead + marked[last.end() :]


def _shrink_elastic(marked: str, limit: int) -> str:
    """The :func:`elastic` parts shortened, the longest first and then alike."""
    for _ in range(4):  # cuts at word ends may leave a few characters over
        over = len(_plain(marked)) - limit
        if over <= 0:
            break
        parts = _ELASTIC.split(marked)
        sizes = {i: len(parts[i]) for i in range(1, len(parts), 2) if len(parts[i]) > _MIN_ELASTIC}
        if not sizes:
            break
        cap = max(sizes.values())
        while cap > _MIN_ELASTIC and sum(max(0, n - cap) for n in sizes.values()) < over:
            cap -= 1
        for i, size in sizes.items():
            parts[i] = clip(parts[i], min(size, cap))
        marked = "".join(p if i % 2 == 0 else f"\x0e{p}\x0f" for i, p in enumerate(parts))
    return marked


def fit_subject(rendered: str, limit: int = SUBJECT_MAX) -> str:
    """The subject in one line of at most ``limit`` characters. When it is longer: the
    last :func:`optional` part (the plan's name) is left out; then the :func:`elastic`
    parts (titles) are shortened at word ends; then the other optional parts are left
    out, last first; the whole is cut only when that is not enough. Unit names are
    plain text in every template, so they are never cut while anything else can go."""
    marked = rendered
    dropped = _drop_last_optional(marked) if len(_plain(marked)) > limit else None
    marked = dropped if dropped is not None else marked
    marked = _shrink_elastic(marked, limit)
    while len(_plain(marked)) > limit:
        dropped = _drop_last_optional(marked)
        if dropped is None:
            break
        marked = dropped
    return clip(_plain(marked), limit)


@lru_cache(maxsize=32)
def environment(templates_dir: str | None = None) -> Environment:
    """Jinja2 environment: the plan's folder first, then the defaults.

    A plan's templates are data written by whoever loads the plan: with a plan folder
    the environment is sandboxed, so ``{{ cycler.__init__.__globals__ }}`` and the like
    raise SecurityError (the message fails with that reason) instead of running code.
    """
    loaders = []
    if templates_dir:
        loaders.append(FileSystemLoader(templates_dir))
    loaders.append(FileSystemLoader(str(TEMPLATES)))
    kind = SandboxedEnvironment if templates_dir else Environment
    env = kind(
        loader=ChoiceLoader(loaders),
        # Only the HTML part is markup; subject and text are plain and must not
        # show "&lt;" to the reader.
        autoescape=select_autoescape(enabled_extensions=("html.j2", "html")),
        # A missing optional detail (no focal person, no head) renders as empty
        # rather than blocking a deadline email.
        undefined=ChainableUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        # Templates are read once per process: no stat() per message, and kept in a
        # plain dict (the default LRU cache locks and reorders a list on each of the
        # ~11 look-ups a message makes through extends and include).
        auto_reload=False,
        cache_size=-1,
        keep_trailing_newline=True,
    )
    env.filters["elastic"] = elastic
    env.filters["optional"] = optional
    return env


def render_parts(kind: str, context: dict[str, Any]) -> tuple[str, str, str]:
    """(subject, text, html) for ``kind`` with ``context``."""
    env = environment(context.get("templates_dir") or None)
    try:
        subject = env.get_template(f"{kind}.subject.j2").render(context)
        text = env.get_template(f"{kind}.txt.j2").render(context)
        html = env.get_template(f"{kind}.html.j2").render(context)
    except Exception as exc:  # TemplateNotFound, TemplateSyntaxError, UndefinedError...
        raise RenderError(f"template for {kind!r}: {type(exc).__name__}: {exc}") from exc
    return fit_subject(subject), text, html


def _address(addr: str, name: str | None) -> tuple[str, str]:
    """(display name, address), both safe for a header; RenderError if not an address."""
    addr = str(addr).strip()
    # ASCII only: an internationalised address would need SMTPUTF8 on every hop.
    if not (_ADDRESS.fullmatch(addr) and addr.isascii()):
        raise RenderError(f"not an email address: {one_line(addr)!r}")
    return one_line(name), addr


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
    return mime.split_utf8(line.encode("utf-8"), 75, 74).decode("utf-8")


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


def _document(path_text: str) -> mime.Part:
    path = Path(path_text)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise RenderError(f"report document {path}: {exc.strerror or exc}") from exc
    ctype = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    return mime.Part(ctype, data, filename=one_line(path.name))


@dataclass(frozen=True)
class Rendered:
    """A message ready for SMTP: the exact bytes, the envelope and the subject."""

    raw: bytes
    subject: str
    recipients: list[str]


def _days_left_on_sending(context: dict[str, Any], now: dt.datetime) -> None:
    """A reminder counts the days left on the day it is sent, not the day it was queued:
    one held over a holiday or a night (KEHOACH_MAIL_HOURS) or by an outage would say
    "còn 7 ngày" with 4 left."""
    due = str((context.get("due") or {}).get("iso") or "")
    try:
        due_date = dt.date.fromisoformat(due)
    except ValueError:
        return  # no date to count to: the count queued stands
    context["days_left"] = (due_date - now.astimezone(TZ).date()).days


def render_message(
    outbox_row: OutboxMessage, settings: Settings, now: dt.datetime | None = None
) -> Rendered:
    """Render a row to wire bytes (what the dispatcher sends and stores in ``raw``)."""
    context = dict(outbox_row.context or {})
    kind = outbox_row.kind
    now = now or utcnow()
    if kind == MailKind.REMINDER:
        _days_left_on_sending(context, now)
    subject, text, html = render_parts(kind, context)

    names = _display_names(context)
    if kind == MailKind.DELIVERY_FAILURE:
        names = {str(a).lower(): ADMIN_DISPLAY_NAME for a in outbox_row.to_addrs or []}
    to = [_address(a, names.get(str(a).lower())) for a in outbox_row.to_addrs or []]
    cc = [_address(a, names.get(str(a).lower())) for a in outbox_row.cc_addrs or []]
    if not to:
        raise RenderError("no recipient address (the unit has no email in the registry)")

    # Named as the agency the mail is from (the address stays ours): the unit that
    # collects the answer, or the plan's issuer (engine/outbox/context.py).
    sender = str((context.get("sender") or {}).get("name") or "")
    if kind == MailKind.DELIVERY_FAILURE or not sender.strip():
        sender = settings.mail_from_name
    headers = [
        mime.address_list("From", [_address(settings.mail_from, sender)]),
        mime.address_list("To", to),
    ]
    if cc:
        headers.append(mime.address_list("Cc", cc))
    contact = context.get("contact") or {}
    contact_email = str(contact.get("email") or "").strip()
    if kind != MailKind.DELIVERY_FAILURE and _ADDRESS.fullmatch(contact_email):
        headers.append(
            mime.address_list("Reply-To", [_address(contact_email, contact.get("name"))])
        )
    headers += [
        mime.unstructured("Subject", subject),
        mime.simple("Date", format_datetime(now.astimezone(TZ))),
        mime.simple("Message-ID", outbox_row.message_id),
    ]
    if outbox_row.thread_id and outbox_row.thread_id != outbox_row.message_id:
        headers.append(mime.simple("In-Reply-To", outbox_row.thread_id))
        headers.append(mime.simple("References", outbox_row.thread_id))
    # RFC 3834: no vacation auto-replies to machine mail.
    headers.append(mime.simple("Auto-Submitted", "auto-generated"))
    headers.append(mime.simple("Content-Language", "vi"))
    headers.append(mime.simple("X-Kehoach-Kind", one_line(kind)))
    if outbox_row.obligation_id is not None:
        headers.append(mime.simple("X-Kehoach-Obligation", str(outbox_row.obligation_id)))

    attachments = []
    if kind == MailKind.ASSIGNMENT and (context.get("due") or {}).get("iso"):
        ics = calendar_event(context, settings, now).encode("utf-8")
        attachments.append(
            mime.Part('text/calendar; charset="utf-8"; method=PUBLISH', ics, "han-gui.ics")
        )
    if kind == MailKind.CONSOLIDATED and context.get("document_path"):
        attachments.append(_document(str(context["document_path"])))
    try:
        raw = mime.compose(
            mime.Message(
                headers=[("", h) for h in headers], text=text, html=html, attachments=attachments
            )
        )
    except ValueError as exc:  # CR/LF or non-ASCII where it must never be
        raise RenderError(str(exc)) from exc
    recipients = [a[1] for a in to] + [a[1] for a in cc]
    return Rendered(raw=raw, subject=subject, recipients=recipients)


def build_message(
    outbox_row: OutboxMessage, settings: Settings, now: dt.datetime | None = None
) -> EmailMessage:
    """The complete message for a row as an ``EmailMessage`` (parsed from the wire bytes)."""
    raw = render_message(outbox_row, settings, now).raw
    return email.message_from_bytes(raw, policy=email.policy.default)
