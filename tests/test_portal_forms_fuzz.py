"""Every portal form under hypothesis, uploads included: no 5xx, no traceback, nothing
stored that later breaks a page, a receipt, a file download or the consolidation.

The forms: the report (numbers, a choice, a date, text and an optional signed file) and
the sub-plan (a summary and a required file), each posted first, as a correction of an
answer already sent, and again after the consolidating unit returned the answer; the
fresh-link request. A draw replaces up to two of a valid answer's values with odd ones
(Vietnamese and control characters, 400-digit numbers, NaN, dates that do not exist)
and sends an uploaded file drawn from: names with Vietnamese letters, control
characters, path traversal (``../../etc/passwd.pdf``), right-to-left overrides, 1,000
characters or none; contents empty, a valid PDF, DOCX or PNG, random bytes, or a PDF of
one byte under, at and over the upload limit (1 MB here); declared types right,
wrong or missing.

Checks at each draw: status below 500, no "Traceback" in the page, no error logged by
the portal (``kehoach.portal`` or uvicorn/starlette loggers at ERROR), nothing left in
``files_dir/.incoming``. After all draws, with everything stored: each answer's page
and receipt, each stored file, the operator's cycle page, and the consolidation (the
.docx written and opened again) all succeed.

``KEHOACH_FUZZ_EXAMPLES`` (default 60) sets the draws;
``KEHOACH_FUZZ_EXAMPLES=600 scripts/run-tests tests/test_portal_forms_fuzz.py`` is the long
run; ``KEHOACH_FUZZ_SEED=N`` draws others (``make test-long SEED=N``). Without it the draws
are derandomized: every run makes the same requests.
"""

from __future__ import annotations

import base64
import logging
import os
import re
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st
from sqlalchemy import select

from engine.lifecycle import intake, review
from engine.store.db import session_scope
from engine.store.models import StoredFile, Submission
from tests.test_portal_fuzz import LIMITS
from tests.test_portal_support import (
    PLAN_ID,
    PNG_BYTES,
    UNIT,
    minimal_docx,
    minimal_pdf,
    vn,
    world_fixture,
)

pytestmark = pytest.mark.filterwarnings("ignore:Using `httpx` with `starlette.testclient`")

EXAMPLES = int(os.environ.get("KEHOACH_FUZZ_EXAMPLES", "60"))
SEED = os.environ.get("KEHOACH_FUZZ_SEED")  # other draws than the normal run's (make test-long)
LIMIT = 1024 * 1024  # KEHOACH_PORTAL_MAX_UPLOAD_MB=1 in the portal test world
PDF = minimal_pdf()
GOOD = {
    "report": {
        "f-so-vu-chay": "2",
        "f-ty-le-tap-huan": "95,5",
        "f-dan-phong": "Đã rà soát",
        "f-ngay-ra-soat": "2027-08-30",
        "f-ket-qua": "Tuyên truyền tại 12 thôn.",
    },
    "sub_plan": {"f-tom-tat": "Kế hoạch PCCC năm 2027 của xã Thị Hoa."},
}
DELIVERABLE = {"report": "bao-cao-nam", "sub_plan": "ke-hoach-cu-the"}
ODD_VALUES = [
    "9" * 400,
    "1" + "0" * 5000,
    "1e400",
    "NaN",
    "-Infinity",
    "-0",
    "١٢",
    "2027-02-30",
    "0x1F",
    "\x00",
    "\x0b\x1b[31m",
    "Đã rà soát\u0301",
    "<script>alert(1)</script>",
    "[x](javascript:alert(1)) ![a](http://127.0.0.1/x.png)",
    "{{ cycler.__init__.__globals__.os.getuid() }}",
    "\u202eexe.pdf",
    "",
    " " * 50,
]
NAMES = [
    "Báo cáo PCCC xã Thị Hoa.pdf",
    "../../etc/passwd.pdf",
    "..\\..\\windows\\win.ini.pdf",
    "/etc/shadow.pdf",
    "Báo cáo\x00.pdf",
    "Báo\r\ncáo.pdf",
    "\x1b[31mđỏ.pdf",
    "\u202efdp.exe.pdf",
    "a" * 1000 + ".pdf",
    ".pdf",
    "",
    "CON.pdf",
    "BÁO CÁO.PDF",
    "kế hoạch.docx",
    "ảnh.png",
    "x.pdf.exe",
    "tệp không đuôi",
]
TYPES = ["application/pdf", "application/octet-stream", "text/html", "image/png", ""]


def _pdf_of(size: int) -> bytes:
    """A valid PDF padded with a comment to exactly ``size`` bytes."""
    return PDF + b"%" + b"x" * (size - len(PDF) - 2) + b"\n"


def _contents(tmp: Path) -> dict[str, bytes]:
    return {
        "pdf": PDF,
        "empty": b"",
        "docx": minimal_docx(tmp / "fuzz.docx").read_bytes(),
        "png": PNG_BYTES,
        "under the limit": _pdf_of(LIMIT - 1),
        "at the limit": _pdf_of(LIMIT),
        "over the limit": _pdf_of(LIMIT + 1),
    }


text = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=300)
value = st.one_of(text, st.sampled_from(ODD_VALUES), st.integers().map(str))
file_name = st.one_of(st.sampled_from(NAMES), text.map(lambda t: t + ".pdf"), text)


def _seeded(test: Any) -> Any:
    return seed(int(SEED))(test) if SEED else test


class Errors(logging.Handler):
    """Error records of the portal and its server: none may appear."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def world(tmp_path, monkeypatch):  # type: ignore[no-untyped-def]
    yield from world_fixture(tmp_path, monkeypatch)


def _return_newest(world: Any, obligation_id: int) -> bool:
    """The consolidating unit returns the newest answer (taken in first); False if none."""
    with session_scope(world.db_url) as session:
        newest = session.scalars(
            select(Submission)
            .where(Submission.obligation_id == obligation_id)
            .order_by(Submission.version.desc())
        ).first()
        if newest is None:
            return False
        intake(session, newest.id, now=world.clock.now())
    with session_scope(world.db_url) as session:
        newest = session.get(Submission, newest.id)
        if not newest.review_state.decided:
            review(
                session,
                newest.id,
                decision="return",
                reason="Số liệu chưa khớp",
                by="ca-huyen",
                now=world.clock.now(),
            )
    return True


@pytest.fixture
def client(world):  # type: ignore[no-untyped-def]
    """The portal with its start and stop (its intake hand-over thread and process)."""
    from starlette.testclient import TestClient

    with TestClient(world.app(limits=LIMITS), raise_server_exceptions=False) as running:
        yield running


def test_every_form_with_odd_values_and_files(world, client, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from engine.consolidation import consolidate

    contents = _contents(tmp_path)
    tokens = {form: world.token(UNIT, deliverable) for form, deliverable in DELIVERABLE.items()}
    incoming = Path(world.settings.files_dir) / ".incoming"
    errors = Errors()
    watched = [logging.getLogger(n) for n in ("kehoach", "uvicorn", "starlette", "fastapi")]
    for logger in watched:
        logger.addHandler(errors)
    seen: Counter[str] = Counter()
    broken: list[str] = []

    @_seeded
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        derandomize=SEED is None,
        suppress_health_check=list(HealthCheck),
    )
    @given(
        form=st.sampled_from(
            ["report", "report", "report", "sub_plan", "sub_plan", "link request"]
        ),
        path=st.sampled_from(["first or correction", "after a return"]),
        odd=st.dictionaries(st.sampled_from([*GOOD["report"], "f-tom-tat"]), value, max_size=2),
        upload=st.one_of(
            st.none(),
            st.tuples(file_name, st.sampled_from(sorted(contents)), st.sampled_from(TYPES)),
            st.tuples(file_name, st.binary(max_size=3000), st.sampled_from(TYPES)),
        ),
    )
    def one(form: str, path: str, odd: dict[str, str], upload: Any) -> None:
        if form == "link request":
            token = tokens["report"] if "f-tom-tat" in odd else "x" + odd.get("f-ket-qua", "")
            page = client.get(f"/o/{tokens['report']}")
            found = re.search(r'name="csrf" value="([^"]+)"', page.text)
            data = {"email": odd.get("f-so-vu-chay", "xa@example.vn"), "token": token}
            response = client.post(
                "/link/request", data={**data, "csrf": found[1] if found else ""}
            )
        else:
            token = tokens[form]
            if path == "after a return":
                _return_newest(world, world.obligation_id(UNIT, DELIVERABLE[form]))
            page = client.get(f"/o/{token}")
            found = re.search(r'name="csrf" value="([^"]+)"', page.text)
            data = {**GOOD[form], **odd, "csrf": found[1] if found else ""}
            files = {}
            if upload is not None:
                name, body, media = upload
                files["f-van-ban"] = (name, contents.get(body, body), media)
            elif form == "sub_plan":
                files["f-van-ban"] = ("kế hoạch.pdf", PDF, "application/pdf")
            response = client.post(
                f"/o/{token}/submit", data=data, files=files, follow_redirects=True
            )
        key = f"{form} {path if form != 'link request' else ''} {response.status_code}"
        seen[key] += 1
        if response.status_code >= 500 or "Traceback" in response.text:
            broken.append(f"{key}: {odd} {str(upload)[:200]}")
        left = list(incoming.iterdir()) if incoming.exists() else []
        if left:
            broken.append(f"{key}: staged files left behind: {left}")

    try:
        one()
        client.app.state.handoff.wait(timeout=60)  # intake of what was stored
    finally:
        for logger in watched:
            logger.removeHandler(errors)

    with session_scope(world.db_url) as session:
        stored = [(s.obligation_id, s.version) for s in session.scalars(select(Submission))]
        files = session.query(StoredFile).count()
    by_obligation = {world.obligation_id(UNIT, DELIVERABLE[f]): t for f, t in tokens.items()}
    pages = [client.get(f"/o/{t}") for t in tokens.values()]
    receipts = [client.get(f"/o/{by_obligation[o]}/receipt/{v}") for o, v in stored]
    linked = {
        link
        for shown in [*pages, *receipts]
        for link in re.findall(r'href="(/o/[^"/]+/files/\d+)"', shown.text)
    }
    downloads = [client.get(link) for link in sorted(linked)]
    auth = base64.b64encode(b"tonghop:mat-khau-thu-nghiem").decode()
    operator = client.get(
        f"/operator/plans/{PLAN_ID}/cycles/2027", headers={"Authorization": f"Basic {auth}"}
    )
    with session_scope(world.db_url) as session:
        result = consolidate(
            session, PLAN_ID, "2027", "tong-hop", now=vn(2027, 9, 26, 8), settings=world.settings
        )
    import docx

    written = list(Path(world.settings.reports_dir).rglob("*.docx"))
    opened = [len(docx.Document(str(p)).paragraphs) for p in written]
    print(
        f"\nportal forms fuzz: {sum(seen.values())} requests, {len(stored)} answers and "
        f"{files} files stored ({len(linked)} linked from the pages); {dict(sorted(seen.items()))}; consolidation "
        f"warnings {len(result.warnings)}, {len(written)} .docx"
    )
    assert not broken, "\n".join(broken[:20])
    assert not errors.records, [r.getMessage()[:300] for r in errors.records[:5]]
    assert all(p.status_code == 200 and "Traceback" not in p.text for p in pages)
    assert [r.status_code for r in receipts] == [200] * len(receipts)
    assert [d.status_code for d in downloads] == [200] * len(downloads)
    assert downloads, "no page links a stored file"
    assert operator.status_code == 200, operator.text[:300]
    assert written and all(opened), written
    # the draws got through the checks, on both forms and with files
    assert {o for o, _ in stored} == set(by_obligation), stored
    assert files, "no drawn upload was ever stored"
    assert any(k.startswith("report after a return 200") for k in seen), seen
