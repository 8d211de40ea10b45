"""Chain heads copied outside the database, so that a chain rewritten whole is seen.

The hash chain (engine.audit_chain) shows an edit, a deletion or a row put in; but
someone who can write the database can also recompute every hash after the rows they
changed, and the chain verifies again. So the chain heads (the last row of each chain:
its seq, id, hash and time) are copied to an append-only file outside the database,
``KEHOACH_AUDIT_ANCHOR`` (default ``$KEHOACH_HOME/audit-anchors.jsonl``): each
``kehoach audit --verify`` that finds the log intact, each consolidation and each cycle
closing appends one line. The consolidated report carries its chain's head too (the
document's properties and the report artifact), so the unit that receives it holds a
copy. :func:`check` reads every line and compares each recorded head with the row now
at that place of its chain: a rewritten row no longer has the hash the anchor recorded.

Each line names the store it was taken from (the database URL without its password),
so one anchor file may serve several stores; lines of another store are skipped.
Keep the file where the database's writers cannot write (another host, an append-only
mount): an attacker who can rewrite both is not caught by this.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast
from zoneinfo import ZoneInfo

from sqlalchemy import Table, event, select
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.orm import Session

from engine.config import TIMEZONE
from engine.store.models import AuditChainHead, AuditEvent

log = logging.getLogger("kehoach.audit")

_EVENTS = cast(Table, AuditEvent.__table__)
_HEADS = cast(Table, AuditChainHead.__table__)
_AFTER_COMMIT = "kehoach.audit_anchor"
FILE_NAME = "audit-anchors.jsonl"


@dataclass(frozen=True)
class Head:
    """The last row of one chain."""

    chain: str
    seq: int
    row_hash: str
    audit_id: int | None
    at: dt.datetime | None

    def as_json(self) -> dict[str, Any]:
        at = self.at.replace(tzinfo=dt.UTC) if self.at and self.at.tzinfo is None else self.at
        return {
            "chain": self.chain,
            "seq": self.seq,
            "id": self.audit_id,
            "hash": self.row_hash,
            "at": at.isoformat() if at else None,
        }


@dataclass(frozen=True)
class Mismatch:
    """An anchored head the chain no longer has (``what`` in Vietnamese)."""

    line: int
    chain: str
    seq: int | None
    audit_id: int | None
    at: dt.datetime | None
    what: str


def anchor_path(conf: Any) -> Path:
    """Where the anchors of this set-up go (``KEHOACH_AUDIT_ANCHOR``)."""
    configured = getattr(conf, "audit_anchor", None)
    return Path(configured) if configured else Path(conf.home) / FILE_NAME


def store_name(url: str) -> str:
    """The store an anchor belongs to: its database URL, password hidden."""
    return make_url(url).render_as_string(hide_password=True)


def heads(connection: Connection | Session, chain: str | None = None) -> list[Head]:
    """Every chain's head (or one chain's) with its last row's id and time."""
    query = (
        select(_HEADS.c.chain, _HEADS.c.seq, _HEADS.c.row_hash, _EVENTS.c.id, _EVENTS.c.at)
        .select_from(_HEADS)
        .outerjoin(_EVENTS, (_EVENTS.c.chain == _HEADS.c.chain) & (_EVENTS.c.seq == _HEADS.c.seq))
        .where(_HEADS.c.seq > 0)
        .order_by(_HEADS.c.chain)
    )
    if chain is not None:
        query = query.where(_HEADS.c.chain == chain)
    return [Head(str(c), int(s), str(h), i, a) for c, s, h, i, a in connection.execute(query)]


def write(path: Path, store: str, found: list[Head], *, reason: str, now: dt.datetime) -> None:
    """Append one anchor line (nothing when there is no chain yet), synced to disk."""
    if not found:
        return
    line = {
        "at": now.astimezone(dt.UTC).isoformat(),
        "reason": reason,
        "store": store,
        "heads": [h.as_json() for h in found],
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
    try:
        os.write(fd, (json.dumps(line, ensure_ascii=False, sort_keys=True) + "\n").encode())
        os.fsync(fd)
    finally:
        os.close(fd)


def anchor(
    session: Session, conf: Any, *, reason: str, now: dt.datetime, chain: str | None = None
) -> Path:
    """Anchor the heads as this session sees them (committed: call outside a write);
    returns the anchor file."""
    url = session.get_bind().engine.url.render_as_string(hide_password=False)
    path = anchor_path(conf)
    write(path, store_name(url), heads(session, chain), reason=reason, now=now)
    return path


def after_commit(session: Session, conf: Any, *, reason: str, now: dt.datetime) -> None:
    """Anchor the heads once this session's transaction has committed (a rolled-back
    transaction anchors nothing: its rows were never there). A failure to write the
    file is logged; it never undoes the commit."""
    session.info[_AFTER_COMMIT] = (conf, reason, now)


@event.listens_for(Session, "after_commit")
def _anchor_committed(session: Session) -> None:
    pending = session.info.pop(_AFTER_COMMIT, None)
    if pending is None:
        return
    conf, reason, now = pending
    try:
        engine = session.get_bind().engine
        with engine.connect() as connection:
            found = heads(connection)
        url = engine.url.render_as_string(hide_password=False)
        write(anchor_path(conf), store_name(url), found, reason=reason, now=now)
    except Exception:  # the commit stands; the next verify anchors again
        log.exception("could not write the audit anchor (%s)", reason)


@event.listens_for(Session, "after_rollback")
def _nothing_to_anchor(session: Session) -> None:
    if not session.in_transaction():
        session.info.pop(_AFTER_COMMIT, None)


def _lines(path: Path) -> Iterator[tuple[int, dict[str, Any] | None]]:
    with path.open(encoding="utf-8", errors="replace") as source:
        for number, text in enumerate(source, start=1):
            if not text.strip():
                continue
            try:
                parsed = json.loads(text)
            except ValueError:
                parsed = None
            yield number, parsed if isinstance(parsed, dict) else None


def _vn(moment: str | None) -> str:
    if not moment:
        return "không rõ lúc nào"
    try:
        at = dt.datetime.fromisoformat(moment)
    except ValueError:
        return moment
    return at.astimezone(ZoneInfo(TIMEZONE)).strftime("%H:%M %d/%m/%Y")


def head_line(found: list[Head]) -> str | None:
    """The head a consolidated report carries (document properties, artifact)."""
    if not found:
        return None
    return "; ".join(f"chuỗi nhật ký {h.chain}: dòng {h.seq}, mã băm {h.row_hash}" for h in found)


def check(session: Session, path: Path, store: str) -> tuple[int, list[Mismatch]]:
    """(anchors of this store read, every anchored head the chain no longer has)."""
    if not path.exists():
        return 0, []
    rows: dict[tuple[str, int], tuple[int, str, Any]] = {}
    wanted: list[tuple[int, dict[str, Any], dict[str, Any]]] = []
    mismatches: list[Mismatch] = []
    read = 0
    for number, line in _lines(path):
        if line is None or not isinstance(line.get("heads"), list):
            what = f"mốc neo dòng {number} của {path} không đọc được (tệp mốc neo bị sửa?)"
            mismatches.append(Mismatch(number, "", None, None, None, what))
            continue
        if line.get("store") != store:
            continue
        read += 1
        for head in line["heads"]:
            if isinstance(head, dict):
                wanted.append((number, line, head))
    places = {(str(h.get("chain")), h.get("seq")) for _, _, h in wanted}
    for chain in {c for c, _ in places}:
        seqs = [s for c, s in places if c == chain and isinstance(s, int)]
        query = select(_EVENTS.c.seq, _EVENTS.c.id, _EVENTS.c.row_hash, _EVENTS.c.at).where(
            _EVENTS.c.chain == chain, _EVENTS.c.seq.in_(seqs)
        )
        for seq, audit_id, row_hash, at in session.connection().execute(query):
            rows[(chain, seq)] = (audit_id, row_hash, at)
    for number, line, head in wanted:
        chain, seq, expected = str(head.get("chain")), head.get("seq"), str(head.get("hash"))
        when = f"mốc neo số {number} ({_vn(line.get('at'))}, {line.get('reason', '')})"
        found = rows.get((chain, seq)) if isinstance(seq, int) else None
        if found is None:
            what = (
                f"{when} ghi dòng số {seq} với mã băm {expected[:12]}; chuỗi không còn dòng "
                "này: chuỗi đã bị cắt hoặc viết lại"
            )
            mismatches.append(Mismatch(number, chain, seq, None, None, what))
        elif found[1] != expected:
            what = (
                f"không khớp {when}: mốc ghi mã băm {expected[:12]}, nay là {found[1][:12]}; "
                "chuỗi đã bị viết lại (các mã băm được tính lại) từ dòng này hoặc trước đó"
            )
            mismatches.append(Mismatch(number, chain, seq, found[0], found[2], what))
    mismatches.sort(key=lambda m: (m.line, m.chain))
    return read, mismatches
