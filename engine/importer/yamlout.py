"""A small YAML writer that keeps comments: the draft's ``# KIỂM TRA:`` notes stand right
above the values they are about, and what the schema cannot hold yet is written as
commented-out YAML.  Only the shapes the draft uses are supported."""

from __future__ import annotations

import datetime as dt
import re
import textwrap
from dataclasses import dataclass, field
from typing import Any

import yaml

WIDTH = 90


@dataclass
class Entry:
    key: str
    value: Any
    notes: list[str] = field(default_factory=list)
    off: bool = False  # written commented out


class Map:
    """An ordered mapping whose entries may carry comments."""

    def __init__(self, flow: bool = False) -> None:
        self.entries: list[Entry] = []
        self.flow = flow

    def put(self, key: str, value: Any, *notes: str | None, off: bool = False) -> Map:
        self.entries.append(Entry(key, value, [n for n in notes if n], off))
        return self

    def get(self, key: str) -> Any:
        return next((e.value for e in self.entries if e.key == key and not e.off), None)

    def data(self) -> dict[str, Any]:
        """The plain value (comments and commented-out entries left out)."""
        return {e.key: plain(e.value) for e in self.entries if not e.off}


def plain(value: Any) -> Any:
    if isinstance(value, Map):
        return value.data()
    if isinstance(value, list):
        return [plain(v) for v in value]
    return value


# A string YAML reads back as itself when written bare: a letter first, none of the
# indicator characters, no trailing space, not a word YAML 1.1 reads as a bool or null.
# Most of a draft's strings are such; the others go through PyYAML's own emitter (one
# emitter per string was half the time of writing a draft).
_PLAIN = re.compile(
    r"[^\W\d_][^\x00-\x1f\x7f-\x9f\u2028\u2029\ufeff:#,?\[\]{}&*!|>'\"%@`\\]*(?<! )"
)
_WORDS = {"yes", "no", "true", "false", "on", "off", "null"}


def scalar(value: Any) -> str:
    if isinstance(value, str) and _PLAIN.fullmatch(value) and value.lower() not in _WORDS:
        return value
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, dt.date):
        return value.isoformat()
    text = yaml.safe_dump(str(value), allow_unicode=True, width=10**6, default_style=None)
    return text.removesuffix("\n...\n").rstrip("\n")


def _comment(notes: list[str], pad: str) -> list[str]:
    lines: list[str] = []
    for note in notes:
        wrapped = textwrap.wrap(
            note, WIDTH - len(pad) - 2, break_long_words=False, break_on_hyphens=False
        )
        lines.extend(f"{pad}# {w}" for w in wrapped or [""])
    return lines


def _long(text: str, pad: str) -> list[str] | None:
    """A long string as a folded block (">-"), or None where folding would change it."""
    if len(text) < 60 or text != text.strip():
        return None
    lines: list[str] = []
    for index, part in enumerate(text.split("\n\n")):
        if "\n" in part or "  " in part or not part:
            return None
        wrapped = textwrap.wrap(
            part, WIDTH - len(pad), break_long_words=False, break_on_hyphens=False
        )
        if " ".join(wrapped) != part or any(w.startswith(("#", " ")) for w in wrapped):
            return None
        lines.extend(["", ""] if index else [])
        lines.extend(pad + w for w in wrapped)
    return lines


def _flow(value: Map) -> str:
    return "{" + ", ".join(f"{e.key}: {_inline(e.value)}" for e in value.entries if not e.off) + "}"


def _inline(value: Any) -> str:
    if isinstance(value, Map):
        return _flow(value)
    if isinstance(value, list):
        return "[" + ", ".join(_inline(v) for v in value) + "]"
    return scalar(value)


def _value_lines(key_text: str, value: Any, pad: str) -> list[str]:
    """``key: value`` (or ``- value``) and what follows it, at ``pad``."""
    child = pad + "  "
    if isinstance(value, Map) and not value.flow and value.entries:
        return [f"{pad}{key_text}"] + emit_map(value, child)
    if isinstance(value, list) and value and not all(_is_flat(v) for v in value):
        return [f"{pad}{key_text}"] + emit_list(value, child)
    if isinstance(value, str):
        folded = _long(value, child)
        if folded is not None:
            return [f"{pad}{key_text} >-"] + folded
    return [f"{pad}{key_text} {_inline(value)}"]


def _is_flat(value: Any) -> bool:
    return not isinstance(value, (Map, list)) and not (isinstance(value, str) and len(value) > 50)


def emit_map(value: Map, pad: str = "") -> list[str]:
    lines: list[str] = []
    for entry in value.entries:
        lines.extend(_comment(entry.notes, pad))
        body = _value_lines(f"{entry.key}:", entry.value, pad)
        if entry.off:
            body = [f"{pad}# {line[len(pad) :]}" for line in body]
        lines.extend(body)
    return lines


def emit_list(values: list[Any], pad: str) -> list[str]:
    lines: list[str] = []
    for value in values:
        if isinstance(value, Map) and not value.flow:
            inner = emit_map(value, pad + "  ")
            # the first key goes on the dash's line, after any comments above it
            first = next(i for i, line in enumerate(inner) if not line.lstrip().startswith("#"))
            lines.extend(pad + line[len(pad) + 2 :] for line in inner[:first])  # at the dash
            lines.append(pad + "- " + inner[first][len(pad) + 2 :])
            lines.extend(inner[first + 1 :])
        else:
            lines.extend(_value_lines("-", value, pad))
    return lines


def dump(document: Map, header: list[str]) -> str:
    return "\n".join([*(f"# {h}" if h else "#" for h in header), *emit_map(document)]) + "\n"
