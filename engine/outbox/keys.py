"""Identifiers of queued emails: idempotency keys, Message-IDs, threads; clean values."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from engine.config import Settings
from engine.config import settings as default_settings
from engine.outbox.kinds import MailKind


def mail_domain(conf: Settings) -> str:
    """The domain part of ``mail_from``: Message-IDs live in our own namespace."""
    domain = conf.mail_from.rpartition("@")[2].strip().strip(">")
    return domain or "kehoach.local"


def message_id_for(idempotency_key: str, conf: Settings | None = None) -> str:
    """A stable Message-ID for a key: the same key always gives the same header."""
    conf = conf or default_settings()
    digest = hashlib.sha256(idempotency_key.encode("utf-8")).hexdigest()[:32]
    return f"<{digest}@{mail_domain(conf)}>"


def obligation_key(obligation_id: int, kind: str, step: str = "") -> str:
    return f"obl:{obligation_id}:{kind}:{step}"


def thread_id_for(thread_key: str | None, obligation_id: int | None, conf: Settings) -> str | None:
    """Message-ID that starts the thread: ``thread_key``'s, by default the obligation's
    assignment; ``""`` means no thread."""
    if thread_key is None and obligation_id is not None:
        thread_key = obligation_key(obligation_id, MailKind.ASSIGNMENT)
    return message_id_for(thread_key, conf) if thread_key else None


def clean_addresses(addresses: Any) -> list[str]:
    """Strip, drop empties and duplicates (case-insensitive), keep order."""
    seen: set[str] = set()
    out: list[str] = []
    for raw in addresses or ():
        address = str(raw).strip()
        if address and address.lower() not in seen:
            seen.add(address.lower())
            out.append(address)
    return out


def json_safe(value: Any) -> Any:
    """Context is stored as JSON: dates and paths become strings."""
    return json.loads(json.dumps(value, default=str, ensure_ascii=False))
