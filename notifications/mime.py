"""A small, fast MIME writer for the one message shape kehoach sends.

``email.message.EmailMessage`` spends about 6 ms per message folding RFC 2047
headers, four times what one SMTP transaction costs on loopback; at 3,500 units
that is the whole budget. This module writes the same standard bytes directly:

- headers: ASCII kept as is; anything else as RFC 2047 ``B`` encoded-words of at
  most 75 characters, one per folded line; every line CRLF and at most 78 octets;
- bodies: UTF-8, base64 (76-character lines), so the message is 7-bit clean and
  needs neither 8BITMIME nor SMTPUTF8 from any server on the way.

Values are expected to be single lines already (``render.one_line``); this module
still refuses CR and LF in any header as a last line of defence.
"""

from __future__ import annotations

import base64
import re
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

MAX_WORD_BYTES = 45  # 45 bytes -> 60 base64 chars + "=?utf-8?b?" + "?=" = 72 < 75
_ATEXT_PHRASE = re.compile(r"[A-Za-z0-9!#$%&'*+\-/=?^_`{|}~ ]*")


@dataclass(frozen=True)
class Part:
    """A leaf part: its content type line parameters, the bytes, optional filename."""

    content_type: str  # e.g. 'text/plain; charset="utf-8"'
    data: bytes
    filename: str | None = None


@dataclass
class Message:
    headers: list[tuple[str, str]] = field(default_factory=list)  # already encoded
    text: str = ""
    html: str = ""
    attachments: list[Part] = field(default_factory=list)


def _check(value: str) -> str:
    if "\r" in value or "\n" in value:
        raise ValueError("a header value may not contain CR or LF")
    return value


def _room(columns: int) -> int:
    """UTF-8 bytes that fit in one encoded-word of at most ``columns`` characters."""
    return max(3, min(MAX_WORD_BYTES, (columns - 12) // 4 * 3))


def _utf8_cuts(data: bytes, first: int, rest: int, after_space: bool = False) -> list[bytes]:
    """Split UTF-8 ``data`` into chunks of at most ``first`` then ``rest`` bytes,
    never inside a character (a cut moves back over continuation bytes).

    ``after_space``: cut right after a space when one is in the second half of the
    chunk. RFC 2047 readers join adjacent encoded-words exactly; some lenient ones
    (Python's address parser among them) insert a space at each boundary, which
    then falls next to a real space instead of splitting a word."""
    chunks: list[bytes] = []
    start, limit = 0, first
    while len(data) - start > limit:
        cut = start + limit
        while cut > start + 1 and (data[cut] & 0xC0) == 0x80:
            cut -= 1
        if after_space:
            space = data.rfind(b" ", start + limit // 2, cut)
            if space != -1:
                cut = space + 1
        chunks.append(data[start:cut])
        start, limit = cut, rest
    chunks.append(data[start:])
    return chunks


def split_utf8(data: bytes, first: int, rest: int, sep: bytes = b"\r\n ") -> bytes:
    """``data`` folded into lines of at most ``first``/``rest`` bytes (iCalendar style)."""
    return sep.join(_utf8_cuts(data, first, rest))


def encoded_words(text: str, first_columns: int = 75) -> list[str]:
    """``text`` as RFC 2047 B encoded-words, split on character boundaries.

    ``first_columns``: room left on the first line (after ``Subject: ``)."""
    chunks = _utf8_cuts(text.encode("utf-8"), _room(first_columns), MAX_WORD_BYTES, True)
    return [f"=?utf-8?b?{base64.b64encode(c).decode('ascii')}?=" for c in chunks]


def _fold_ascii(name: str, value: str) -> str:
    """Fold a plain ASCII value at spaces so lines stay within 78 octets."""
    lines: list[str] = []
    current = f"{name}:"
    for word in value.split(" "):
        if len(current) + 1 + len(word) > 78 and current.strip() and not current.endswith(":"):
            lines.append(current)
            current = f" {word}"
        else:
            current += f" {word}"
    lines.append(current)
    return "\r\n".join(lines)


def unstructured(name: str, value: str) -> str:
    """A header line for free text (Subject): ASCII folded, otherwise encoded-words."""
    _check(value)
    if value.isascii():
        return _fold_ascii(name, value)
    return f"{name}: " + "\r\n ".join(encoded_words(value, 78 - len(name) - 2))


def phrase(display_name: str, first_columns: int = 75) -> str:
    """A display name as RFC 5322 allows it: atoms, a quoted string, or encoded-words."""
    _check(display_name)
    if not display_name:
        return ""
    if display_name.isascii():
        if _ATEXT_PHRASE.fullmatch(display_name):
            return display_name
        escaped = display_name.replace("\\", "\\\\").replace('"', '\\"')
        return f'"{escaped}"'
    return "\r\n ".join(encoded_words(display_name, first_columns))


def address_list(name: str, addresses: Iterable[tuple[str, str]]) -> str:
    """``To: Name <a@b>, ...``: each mailbox starts a line, so folding stays simple."""
    items = []
    for index, (display_name, addr) in enumerate(addresses):
        _check(addr)
        indent = len(name) + 2 if index == 0 else 1
        shown = phrase(display_name, 78 - indent)
        last = shown.rsplit("\r\n", 1)[-1]
        if not shown:
            items.append(f"<{addr}>")
        elif (indent if "\r\n" not in shown else 0) + len(last) + len(addr) + 4 <= 78:
            items.append(f"{shown} <{addr}>")
        else:
            items.append(f"{shown}\r\n <{addr}>")
    return f"{name}: " + ",\r\n ".join(items)


def simple(name: str, value: str) -> str:
    """An ASCII header that needs no encoding (Date, Message-ID, ...)."""
    _check(value)
    if not value.isascii():
        raise ValueError(f"{name} must be ASCII")
    return f"{name}: {value}"


def _base64_body(data: bytes) -> bytes:
    """Base64 in 76-character CRLF lines (one C call, then slicing: encodebytes
    calls into C once per 57-byte line)."""
    encoded = base64.b64encode(data)
    lines = [encoded[i : i + 76] for i in range(0, len(encoded), 76)]
    return b"\r\n".join(lines) + b"\r\n" if lines else b""


def _text_bytes(text: str) -> bytes:
    # Canonical form of text/* is CRLF line ends (templates give bare LF).
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    return text.replace("\n", "\r\n").encode("utf-8")


def _filename_params(filename: str) -> str:
    _check(filename)
    if filename.isascii() and '"' not in filename and "\\" not in filename:
        return f'"{filename}"'
    # RFC 2231 for non-ASCII file names; most clients also read the encoded-word form.
    from urllib.parse import quote

    return f"*=utf-8''{quote(filename, safe='')}"


def _leaf(part: Part) -> bytes:
    # Parameters on their own lines keep long types (docx) within 78 octets.
    ctype = _check(part.content_type).replace("; ", ";\r\n ")
    head = [f"Content-Type: {ctype}", "Content-Transfer-Encoding: base64"]
    if part.filename is not None:
        params = _filename_params(part.filename)
        sep = "" if params.startswith("*=") else "="
        head.append(f"Content-Disposition: attachment;\r\n filename{sep}{params}")
    return ("\r\n".join(head) + "\r\n\r\n").encode("ascii") + _base64_body(part.data)


def _multipart(subtype: str, parts: Sequence[bytes]) -> tuple[str, bytes]:
    # Base64 never produces "=_", so the boundary cannot occur inside a part.
    boundary = f"=_kehoach_{uuid.uuid4().hex}"
    body = b"".join(b"--" + boundary.encode() + b"\r\n" + p + b"\r\n" for p in parts)
    body += b"--" + boundary.encode() + b"--\r\n"
    return f'multipart/{subtype};\r\n boundary="{boundary}"', body


def compose(message: Message) -> bytes:
    """The complete message: headers, text + HTML alternative, attachments."""
    text = Part('text/plain; charset="utf-8"', _text_bytes(message.text))
    html = Part('text/html; charset="utf-8"', _text_bytes(message.html))
    ctype, body = _multipart("alternative", [_leaf(text), _leaf(html)])
    if message.attachments:
        inner = f"Content-Type: {ctype}\r\n\r\n".encode("ascii") + body
        ctype, body = _multipart("mixed", [inner, *(_leaf(a) for a in message.attachments)])
    head = [*(line for _, line in message.headers), "MIME-Version: 1.0", f"Content-Type: {ctype}"]
    return ("\r\n".join(head) + "\r\n\r\n").encode("ascii") + body
