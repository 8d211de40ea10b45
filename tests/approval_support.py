"""The consolidating unit's side of a consolidated report, as a test plays it (no tests
here): accept the units' answers still undecided, write the sections, approve (number,
final .docx and PDF by LibreOffice), upload a signed PDF and send it upward."""

from __future__ import annotations

import datetime as dt
from typing import Any

import docx
from sqlalchemy.orm import Session

from engine.approval import SECTIONS, approve, send_upward, undecided_answers, upload_signed
from engine.consolidation.result import ConsolidationResult
from engine.documents import stored_path
from engine.lifecycle import review
from engine.store.models import ConsolidatedReport, StoredFile, Submission
from tests.test_portal_support import minimal_pdf

NARRATIVE = {
    "ket_qua": "Các đơn vị triển khai đầy đủ nhiệm vụ được giao.",
    "ton_tai": "Một số đơn vị gửi báo cáo chậm.",
    "nguyen_nhan": "Cán bộ kiêm nhiệm nhiều việc.",
    "phuong_huong": "Tiếp tục tuyên truyền, kiểm tra.",
    "kien_nghi": "Không có.",
}


def accept_undecided(session: Session, report: ConsolidatedReport, now: dt.datetime) -> int:
    """Accept every answer the report counts that has no decision yet; how many."""
    ids = {
        row["obligation_id"]: row["included_version"]
        for row in report.status_table
        if row.get("included_version")
    }
    accepted = 0
    for submission in session.query(Submission).filter(Submission.obligation_id.in_(list(ids))):
        if (
            submission.version == ids[submission.obligation_id]
            and not submission.review_state.decided
        ):
            review(session, submission.id, decision="accept", by="tong-hop", now=now)
            accepted += 1
    assert undecided_answers(session, report) == ([], [])
    return accepted


def approve_sign_send(
    session: Session,
    report_id: int,
    conf: Any,
    now: dt.datetime,
    *,
    accept: bool = False,
    final_pdf: bool = True,
) -> ConsolidationResult:
    """The whole way upward of one draft, by the consolidating unit, at ``now``
    (``accept``: accept the units' answers first; ``final_pdf=False``: no PDF of the final
    .docx, LibreOffice's seconds saved where the rendering is not the point)."""
    approve_and_sign(session, report_id, conf, now, accept=accept, final_pdf=final_pdf)
    return send_upward(session, report_id, by="tong-hop", now=now, conf=conf)


def approve_and_sign(
    session: Session,
    report_id: int,
    conf: Any,
    now: dt.datetime,
    *,
    accept: bool = False,
    final_pdf: bool = True,
) -> None:
    """:func:`approve_sign_send` up to the signed PDF: the report waits to be sent."""
    from engine.approval import save_narrative

    report = session.get(ConsolidatedReport, report_id)
    assert report is not None
    if accept:
        accept_undecided(session, report, now)
    save_narrative(session, report_id, NARRATIVE, by="tong-hop", now=now)
    assert set(NARRATIVE) == {key for key, _ in SECTIONS}
    approve(session, report_id, by="tong-hop", now=now, conf=conf, final_pdf=final_pdf)
    upload_signed(
        session,
        report_id,
        minimal_pdf(),
        name="bao-cao-da-ky.pdf",
        by="tong-hop",
        now=now,
        conf=conf,
    )


def final_docx_text(session: Session, report: ConsolidatedReport, conf: Any) -> str:
    """The text of the approved report's final .docx as stored: its page headers, its
    paragraphs and the cells of its tables (the header block and the signer are tables)."""
    stored = session.get(StoredFile, report.final_docx_file_id)
    assert stored is not None, "the report has no final .docx (not approved)"
    document = docx.Document(str(stored_path(conf.files_dir, stored.sha256)))
    parts = [
        p.text
        for section in document.sections
        for header in (section.first_page_header, section.header)
        for p in header.paragraphs
    ]
    return "\n".join(parts + _body_parts(document))


def docx_text(path: str) -> str:
    """A .docx's paragraphs and the cells of its tables (the header block is a table)."""
    return "\n".join(_body_parts(docx.Document(path)))


def _body_parts(document: Any) -> list[str]:
    parts = [p.text for p in document.paragraphs]
    for table in document.tables:
        for row in table.rows:
            parts.extend(cell.text for cell in row.cells)
    return parts
