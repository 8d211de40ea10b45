"""Shared set-up for the portal tests (no tests here).

``PortalWorld`` is a real SQLite store with the small plan of tests/data/portal/
loaded and activated for 2027, settings pointing at a test portal address and a
test SMTP server, and a virtual clock. ``ServedPortal`` runs the portal with
uvicorn in a thread on a free loopback port.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import socket
import threading
import time
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select, text

from engine import config
from engine.clock import VirtualClock
from engine.config import Settings, load_settings
from engine.links import make_token
from engine.store.db import connect, migrate, session_scope
from engine.store.models import Obligation

DATA = Path(__file__).parent / "data" / "portal"
TZ = dt.timezone(dt.timedelta(hours=7))
SECRET = "portal-test-secret-4b1d0c6e9f-2a7c5e81"
PLAN_ID = "portal-pccc"
UNIT = "xa-thi-hoa"
OTHER_UNIT = "xa-quang-long"
SCRIPT = "<script>alert(1)</script>"


def vn(year: int, month: int, day: int, hour: int = 9, minute: int = 0) -> dt.datetime:
    return dt.datetime(year, month, day, hour, minute, tzinfo=TZ)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def minimal_pdf(text_line: str = "Bao cao PCCC xa Thi Hoa") -> bytes:
    """A small, valid one-page PDF (correct xref offsets), written by hand."""
    stream = f"BT /F1 18 Tf 72 720 Td ({text_line}) Tj ET".encode("ascii")
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] "
        b"/Resources << /Font << /F1 5 0 R >> >> /Contents 4 0 R >>",
        b"<< /Length " + str(len(stream)).encode() + b" >>\nstream\n" + stream + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += f"{number} 0 obj\n".encode() + body + b"\nendobj\n"
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    for offset in offsets:
        out += f"{offset:010d} 00000 n \n".encode()
    out += (
        f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode()
    )
    return bytes(out)


def minimal_docx(path: Path) -> Path:
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("[Content_Types].xml", "<Types/>")
        z.writestr("word/document.xml", "<w:document/>")
    return path


PNG_BYTES = (
    b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00"
    b"\x1f\x15\xc4\x89\x00\x00\x00\rIDATx\x9cc\xf8\x0f\x00\x00\x01\x01\x00\x05\x18\xd8N\x00\x00"
    b"\x00\x00IEND\xaeB`\x82"
)


def table_fingerprint(db_url: str) -> dict[str, tuple[int, str]]:
    """Row count and a hash of every row of every table: any write changes it."""
    engine = connect(db_url)
    out: dict[str, tuple[int, str]] = {}
    with engine.connect() as conn:
        names = [
            r[0]
            for r in conn.execute(
                text("SELECT name FROM sqlite_master WHERE type='table' ORDER BY name")
            )
        ]
        for name in names:
            rows = conn.execute(text(f'SELECT * FROM "{name}" ORDER BY 1')).all()
            digest = hashlib.sha256(repr(rows).encode()).hexdigest()
            out[name] = (len(rows), digest)
    return out


def files_on_disk(files_dir: Path) -> list[Path]:
    if not files_dir.exists():
        return []
    return sorted(p for p in files_dir.rglob("*") if p.is_file())


@dataclass
class PortalWorld:
    settings: Settings
    db_url: str
    clock: VirtualClock
    port: int
    home: Path
    obligations: dict[tuple[str, str], int] = field(default_factory=dict)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def obligation_id(self, unit: str = UNIT, deliverable: str = "bao-cao-nam") -> int:
        return self.obligations[(unit, deliverable)]

    def token(
        self, unit: str = UNIT, deliverable: str = "bao-cao-nam", conf: Settings | None = None
    ) -> str:
        with session_scope(self.db_url) as session:
            obligation = session.get(Obligation, self.obligation_id(unit, deliverable))
            assert obligation is not None
            return make_token(
                obligation.id,
                obligation.unit_id,
                obligation.cycle.key,
                obligation.token_version,
                conf or self.settings,
            )

    def count(self, model: Any, **where: Any) -> int:
        with session_scope(self.db_url) as session:
            query = select(func.count()).select_from(model)
            for key, value in where.items():
                query = query.where(getattr(model, key) == value)
            return int(session.scalar(query) or 0)

    def app(self, **kwargs: Any):  # type: ignore[no-untyped-def]
        from portal.app import create_app

        kwargs.setdefault("clock", self.clock)
        kwargs.setdefault("intake_flow", False)
        return create_app(self.settings, self.db_url, **kwargs)


def make_world(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    db_url: str | None = None,
    *,
    sources: list[Path] | None = None,
    plan_id: str = PLAN_ID,
    activated_at: dt.datetime | None = None,
    years: list[int] | None = None,
    now: dt.datetime | None = None,
    **env: str,
) -> PortalWorld:
    """Settings in the environment (the activation mails links built from them), a store
    (SQLite unless ``db_url``) with the test plan loaded and activated on 20/8/2027, a
    clock at 1/9/2027 09:00 (or ``sources`` activated as ``plan_id`` at ``activated_at``
    for ``years``, the clock at ``now``)."""
    from engine.lifecycle import activate
    from engine.loader import load
    from engine.repository import store_catalog

    port = free_port()
    db_url = db_url or f"sqlite:///{tmp_path / 'kehoach.sqlite'}"
    values = {
        "KEHOACH_HOME": str(tmp_path / "var"),
        "KEHOACH_DATABASE_URL": db_url,
        "KEHOACH_PORTAL_BASE_URL": f"http://127.0.0.1:{port}",
        "KEHOACH_PORTAL_SECRET": SECRET,
        "KEHOACH_PORTAL_OLD_SECRETS": "",
        "KEHOACH_PORTAL_MAX_UPLOAD_MB": "1",
        "KEHOACH_OPERATOR_USER": "tonghop",
        "KEHOACH_OPERATOR_PASSWORD": "mat-khau-thu-nghiem",
        "KEHOACH_MAIL_FROM": "kehoach@halang.example",
        # The portal sends receipts itself: to a closed port unless a test gives a server
        # (never to whatever listens on the default 8025).
        "KEHOACH_SMTP_PORT": str(free_port()),
        # hand-overs to intake in quick succession (the batching is tested on its own)
        "KEHOACH_INTAKE_BATCH_SECONDS": "0.05",
        **env,
    }
    for key, value in values.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("KEHOACH_NOW", raising=False)
    monkeypatch.delenv("KEHOACH_CONFIG", raising=False)
    config.settings.cache_clear()
    settings = load_settings()
    assert config.settings() == settings

    migrate(db_url)
    catalog = load(sources or [DATA / "registry.yaml", DATA / "plan.yaml"])
    if sources is None:
        activated_at, years = vn(2027, 8, 20, 8, 0), [2027]
    assert activated_at is not None
    with session_scope(db_url) as session:
        store_catalog(session, catalog)
        activate(session, plan_id, now=activated_at, years=years)
    clock = VirtualClock(now or vn(2027, 9, 1))
    world = PortalWorld(settings, db_url, clock, port, tmp_path)
    with session_scope(db_url) as session:
        for row in session.scalars(select(Obligation)):
            world.obligations[(row.unit_id, row.deliverable_id)] = row.id
    return world


def world_fixture(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[PortalWorld]:
    """Body of each portal test module's ``world`` fixture."""
    yield make_world(tmp_path, monkeypatch)
    config.settings.cache_clear()


class ServedPortal:
    """uvicorn serving an app in a thread on 127.0.0.1:port."""

    def __init__(self, app: Any, port: int) -> None:
        import uvicorn

        self.app = app
        self.port = port
        self.server = uvicorn.Server(
            uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)
        )
        self.thread = threading.Thread(target=self.server.run, name="portal", daemon=True)

    def __enter__(self) -> ServedPortal:
        self.thread.start()
        deadline = time.monotonic() + 15
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the portal did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=15)


LINK = re.compile(r"https?://127\.0\.0\.1:\d+/o/[A-Za-z0-9_.\-]+")


def link_in(message: Any) -> str:
    """The portal link in a received email's text part."""
    body = message.get_body(preferencelist=("plain",)).get_content()
    found = LINK.findall(body)
    assert found, f"no portal link in:\n{body}"
    return found[0]
