"""A consolidated report's way upward: draft → approved and numbered → signed → sent.

Consolidation writes a draft ("DỰ THẢO" on every page) and tells the consolidating unit;
nothing goes upward by itself (ARCHITECTURE, principle 9). The unit reviews it (the
units' answers, accepted or returned one by one, and the narrative sections it writes:
kết quả, tồn tại hạn chế, nguyên nhân, phương hướng nhiệm vụ, kiến nghị đề xuất), then:

- :func:`approve` gives it the next number of its issuer's register for the year
  (engine.register_numbers) and writes the final .docx (the number, the day of
  approval, the sections, no mark) and its PDF (LibreOffice);
- :func:`upload_signed` keeps the signed file: a PDF (scanned, or digitally signed)
  that pypdf reads, within the upload limit;
- :func:`send_upward` queues the email to the body the report is for, with the signed
  PDF, and hands the report to the parent plan when the plan says ``upward``.

Each step goes through :func:`engine.transitions.move_report` and writes its audit row in
the same transaction. :func:`follow_up_approvals` (the daily sweep) reminds the unit at
each step's deadline and, when the upward date is near, writes to its head.
"""

from __future__ import annotations

import datetime as dt
import io
import logging
import os
import shutil
import subprocess
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.approval_deadlines import step_deadlines, stored_calendar
from engine.audit import write_audit
from engine.authority import issuer_on
from engine.calendar import TZ, local_day
from engine.consolidation.consolidate import duty_of, stored_document
from engine.consolidation.document import newest_report, slug
from engine.consolidation.draft import finish_document
from engine.consolidation.result import ConsolidationResult
from engine.context import PlanContext, plan_context, version_of_cycle
from engine.documents import DOCX_TYPE, ReportDocument, render_docx, store_file, stored_path
from engine.errors import KehoachError, NotFound
from engine.outbox.kinds import MailKind
from engine.outbox.requests import queue_mail
from engine.register_numbers import number_text, take_number
from engine.report_sections import SECTION_IDS, SECTIONS
from engine.schema import Consolidation, ReportTemplate
from engine.states import ReportApproval, ReviewState
from engine.store.arrays import one_of
from engine.store.models import (
    ConsolidatedReport,
    Cycle,
    Obligation,
    OutboxMessage,
    StoredFile,
    Submission,
)
from engine.transitions import move_report
from engine.vntext import short_date

log = logging.getLogger(__name__)

PDF_TYPE = "application/pdf"
MAX_SECTION_CHARS = 20_000
SOFFICE_TIMEOUT_S = 180


class ApprovalError(KehoachError):
    """A step of the report's way upward that cannot be taken now (Vietnamese, with what
    to do)."""


@dataclass
class Subject:
    """One stored report with what it is about."""

    report: ConsolidatedReport
    cycle: Cycle
    ctx: PlanContext
    consolidation: Consolidation
    template: ReportTemplate
    fed_id: str
    duty: Obligation | None

    @property
    def plan_id(self) -> str:
        return self.ctx.plan_id

    @property
    def duty_id(self) -> int | None:
        return self.duty.id if self.duty else None

    def document(self, session: Session, day: dt.date) -> Any:
        """The stored revision's document (engine.consolidation.stored_document)."""
        return stored_document(
            session, self.ctx, self.consolidation, self.template, self.fed_id, self.report, day
        )


def subject_of(session: Session, report_id: int) -> Subject:
    report = session.get(ConsolidatedReport, report_id)
    if report is None:
        raise NotFound(f"không có báo cáo tổng hợp số {report_id}")
    cycle = session.get(Cycle, report.cycle_id)
    assert cycle is not None
    ctx = plan_context(session, version_of_cycle(session, cycle.id))
    consolidation = ctx.consolidation(report.consolidation_id)
    assert consolidation is not None  # a stored report names a consolidation of its plan
    fed = ctx.plan.deliverable(consolidation.consolidates)
    template = ctx.plan.template(fed.template or "") if fed else None
    assert fed is not None and template is not None
    return Subject(
        report,
        cycle,
        ctx,
        consolidation,
        template,
        fed.id,
        duty_of(session, cycle.id, consolidation.id),
    )


def report_of_duty(session: Session, obligation: Any) -> ConsolidatedReport | None:
    """The newest revision of the report a consolidation duty is for (None before it)."""
    if obligation.kind != "consolidation":
        return None
    return newest_report(session, obligation.cycle_id, obligation.deliverable_id)


def save_narrative(
    session: Session, report_id: int, texts: dict[str, str], *, by: str, now: dt.datetime
) -> ConsolidatedReport:
    """Keep the sections the unit wrote (only while the report is a draft)."""
    subject = subject_of(session, report_id)
    report = subject.report
    _require(report, ReportApproval.DRAFT, "sửa nội dung")
    unknown = sorted(set(texts) - set(SECTION_IDS))
    if unknown:
        raise ApprovalError(
            f"mục không có trong báo cáo: {', '.join(unknown)}; các mục: {', '.join(SECTION_IDS)}"
        )
    narrative = dict(report.narrative or {})
    for key, value in texts.items():
        text = (value or "").replace("\r\n", "\n").strip()
        if len(text) > MAX_SECTION_CHARS:
            label = dict(SECTIONS)[key]
            raise ApprovalError(
                f"mục '{label}' dài {len(text)} ký tự, quá {MAX_SECTION_CHARS}; hãy rút gọn"
            )
        narrative[key] = text
    if narrative == (report.narrative or {}):
        return report
    report.narrative = narrative
    write_audit(
        session,
        "report.narrative_saved",
        at=now,
        plan_id=subject.plan_id,
        obligation_id=subject.duty_id,
        actor=by,
        report_id=report.id,
        revision=report.revision,
        sections={k: len(v) for k, v in narrative.items()},
    )
    session.flush()
    return report


def undecided_answers(session: Session, report: ConsolidatedReport) -> tuple[list[str], list[str]]:
    """(units whose version in the report is not accepted or returned yet, units whose
    version was returned after the draft counted it)."""
    wanted = {
        row.get("obligation_id"): (row.get("unit_name"), row.get("included_version"))
        for row in report.status_table or []
        if row.get("included_version")
    }
    if not wanted:
        return [], []
    found = session.execute(
        select(Submission.obligation_id, Submission.version, Submission.review_state).where(
            one_of(session, Submission.obligation_id, wanted)
        )
    ).all()
    open_, returned = [], []
    for obligation_id, version, state in found:
        name, included = wanted[obligation_id]
        if version != included:
            continue
        if state is ReviewState.RETURNED:
            returned.append(name)
        elif not ReviewState(state).decided:
            open_.append(name)
    return open_, returned


# ---------------------------------------------------------------- approve


def _ready_to_approve(session: Session, report: ConsolidatedReport) -> None:
    """A draft may be approved: every section written, no returned answer counted."""
    _require(report, ReportApproval.DRAFT, "duyệt")
    missing = [label for key, label in SECTIONS if not (report.narrative or {}).get(key)]
    if missing:
        raise ApprovalError(
            "chưa viết các mục: " + "; ".join(missing) + ". Hãy viết đủ rồi duyệt "
            "(ghi 'Không có.' nếu mục đó không có nội dung)."
        )
    _open, returned = undecided_answers(session, report)
    if returned:
        raise ApprovalError(
            "dự thảo còn tính số liệu của báo cáo đã bị trả lại ("
            + "; ".join(returned)
            + "); khi đơn vị gửi lại, hệ thống lập dự thảo mới để duyệt."
        )


def _final_files(
    session: Session,
    subject: Subject,
    doc: ReportDocument,
    number: str,
    conf: Any,
    now: dt.datetime,
    final_pdf: bool,
) -> tuple[StoredFile, StoredFile | None]:
    """The approved .docx (and its PDF unless ``final_pdf`` is False), rendered and stored."""
    folder = Path(conf.reports_dir) / subject.plan_id / subject.cycle.key
    stem = f"{subject.consolidation.id}-{slug(number)}"
    docx_path = render_docx(doc, folder / f"{stem}.docx")
    pdf_path = docx_to_pdf(docx_path) if final_pdf else None
    files_dir = Path(conf.files_dir)
    docx_row = store_file(
        session,
        docx_path.read_bytes(),
        name=docx_path.name,
        content_type=DOCX_TYPE,
        now=now,
        files_dir=files_dir,
    )
    pdf_row = (
        store_file(
            session,
            pdf_path.read_bytes(),
            name=pdf_path.name,
            content_type=PDF_TYPE,
            now=now,
            files_dir=files_dir,
        )
        if pdf_path is not None
        else None
    )
    return docx_row, pdf_row


def approve(
    session: Session,
    report_id: int,
    *,
    by: str,
    now: dt.datetime,
    conf: Any,
    final_pdf: bool = True,
) -> ConsolidatedReport:
    """Approve a draft: the number from the issuer's register, the final .docx and PDF
    (``final_pdf=False``: the .docx alone, for the simulation, which signs no paper)."""
    subject = subject_of(session, report_id)
    report = subject.report
    _ready_to_approve(session, report)
    # Answers not decided yet may stand (the review page lists them): an accepted one
    # could no longer be corrected by its unit, which a later revision would take in.
    today = local_day(now)
    doc, _rows, _figures, _prev = subject.document(session, today)
    issuer = issuer_on(subject.ctx.plan, subject.ctx.view, subject.consolidation, today)
    registered = take_number(
        session,
        issuer_id=issuer,
        year=today.year,
        symbol=doc.symbol,
        report_id=report.id,
        by=by,
        now=now,
    )
    number = number_text(registered.number, registered.symbol)
    doc.number, doc.day = number, today
    finish_document(
        session,
        doc,
        subject.consolidation,
        subject.cycle.key,
        report.narrative or {},
        draft=False,
    )
    docx_row, pdf_row = _final_files(session, subject, doc, number, conf, now, final_pdf)
    report.number_text = number
    report.approved_at, report.approved_by = now, by
    report.final_docx_file_id = docx_row.id
    report.final_pdf_file_id = pdf_row.id if pdf_row else None
    _step(
        session,
        subject,
        ReportApproval.APPROVED,
        "report.approved",
        by=by,
        now=now,
        revision=report.revision,
        issuer=issuer,
        year=today.year,
        docx_sha256=docx_row.sha256,
        pdf_sha256=pdf_row.sha256 if pdf_row else None,
    )
    return report


_SOFFICE_LOCK = threading.Lock()


def docx_to_pdf(docx: Path) -> Path:
    """The PDF of ``docx`` beside it, by LibreOffice headless. One conversion at a time
    per process, with a profile of its own (a profile shared by two processes at once
    makes one of them fail); it is kept, so later conversions start faster."""
    soffice = shutil.which("soffice") or shutil.which("libreoffice")
    if soffice is None:
        raise KehoachError(
            "không tìm thấy LibreOffice (soffice) để lập bản PDF; cài gói "
            "libreoffice-writer-nogui (make setup) rồi duyệt lại"
        )
    profile = Path(tempfile.gettempdir()) / f"kehoach-soffice-{os.getpid()}"
    with _SOFFICE_LOCK:
        done = subprocess.run(
            [
                soffice,
                "--headless",
                "--norestore",
                f"-env:UserInstallation={profile.as_uri()}",
                "--convert-to",
                "pdf",
                "--outdir",
                str(docx.parent),
                str(docx),
            ],
            capture_output=True,
            timeout=SOFFICE_TIMEOUT_S,
            check=False,
        )
    pdf = docx.with_suffix(".pdf")
    if done.returncode != 0 or not pdf.exists():
        log.error("soffice failed (%s): %s", done.returncode, done.stderr.decode(errors="replace"))
        raise KehoachError(f"LibreOffice không chuyển được {docx.name} sang PDF; chưa duyệt")
    return pdf


# ---------------------------------------------------------------- the signed file


def check_signed_pdf(data: bytes, max_bytes: int) -> str:
    """Why ``data`` is not a signed report the system can keep, or '' when it is one.
    Returns the kind through :func:`pdf_kind` once valid."""
    if not data:
        return "tệp rỗng"
    if len(data) > max_bytes:
        return f"tệp {len(data) / 1048576:.1f} MB, quá giới hạn {max_bytes / 1048576:g} MB"
    if not data.startswith(b"%PDF-"):
        return "không phải tệp PDF (hãy quét hoặc ký số bản báo cáo thành PDF)"
    from pypdf import PdfReader
    from pypdf.errors import PyPdfError

    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted:
            return "tệp PDF có mật khẩu; hãy gửi bản không đặt mật khẩu"
        if len(reader.pages) == 0:
            return "tệp PDF không có trang nào"
    except (PyPdfError, ValueError, KeyError, TypeError) as exc:
        return f"tệp PDF hỏng, không đọc được ({type(exc).__name__})"
    return ""


def pdf_kind(data: bytes) -> str:
    """'chữ ký số' when the PDF holds a signature field with a value, else 'bản quét'."""
    from pypdf import PdfReader

    reader = PdfReader(io.BytesIO(data))
    for value in (reader.get_fields() or {}).values():
        if value.get("/FT") == "/Sig" and value.get("/V") is not None:
            return "chữ ký số"
    return "bản quét"


def upload_signed(
    session: Session,
    report_id: int,
    data: bytes,
    *,
    name: str,
    by: str,
    now: dt.datetime,
    conf: Any,
) -> ConsolidatedReport:
    """Keep the signed PDF of an approved report (a located refusal when it is not one)."""
    subject = subject_of(session, report_id)
    report = subject.report
    _require(report, ReportApproval.APPROVED, "tải bản đã ký")
    why = check_signed_pdf(data, int(conf.portal_max_upload_mb * 1024 * 1024))
    if why:
        raise ApprovalError(f"{name}: {why}; chưa lưu gì")
    kind = pdf_kind(data)
    row = store_file(
        session,
        data,
        name=name if name.lower().endswith(".pdf") else f"{name}.pdf",
        content_type=PDF_TYPE,
        now=now,
        files_dir=Path(conf.files_dir),
    )
    report.signed_file_id, report.signed_at, report.signed_by = row.id, now, by
    _step(
        session,
        subject,
        ReportApproval.SIGNED,
        "report.signed",
        by=by,
        now=now,
        signed_sha256=row.sha256,
        size=row.size,
        kind=kind,
    )
    return report


# ---------------------------------------------------------------- send


def send_upward(
    session: Session, report_id: int, *, by: str, now: dt.datetime, conf: Any
) -> ConsolidationResult:
    """The signed report goes upward: the email to the body it is for (the signed PDF
    attached) and, when the plan says ``upward``, the parent plan's submission."""
    from engine.consolidation.upward import hand_upward

    subject = subject_of(session, report_id)
    report = subject.report
    _require(report, ReportApproval.SIGNED, "gửi lên cấp trên")
    signed = session.get(StoredFile, report.signed_file_id)
    assert signed is not None
    folder = Path(conf.reports_dir) / subject.plan_id / subject.cycle.key
    folder.mkdir(parents=True, exist_ok=True)
    attached = folder / f"{subject.consolidation.id}-{slug(report.number_text or '')}-da-ky.pdf"
    shutil.copyfile(stored_path(Path(conf.files_dir), signed.sha256), attached)
    result = ConsolidationResult(report, "", False)
    doc, _rows, _figures, previous_ids = subject.document(session, local_day(now))
    if subject.duty is not None:
        extra: dict[str, Any] = {"document_path": str(attached), "number": report.number_text}
        step = ""
        if previous_ids is not None:
            step = f"lan-{report.revision}"
            before = session.get(ConsolidatedReport, previous_ids[0])
            extra.update(
                revision=report.revision,
                replaces=doc.replaces,
                changes=doc.changes,
                previous_date=short_date(local_day(before.created_at)) if before else None,
            )
        queue_mail(session, subject.duty, MailKind.CONSOLIDATED, step, extra, now)
    if subject.consolidation.upward is not None:
        names = {r.get("unit_id"): r.get("unit_name") for r in report.status_table or []}
        hand_upward(
            session,
            subject.ctx,
            subject.consolidation,
            subject.template,
            subject.cycle.key,
            report.by_unit_id,
            report,
            signed.id,
            doc.summary,
            names,
            now,
            result,
        )
    report.sent_at = now
    _step(
        session,
        subject,
        ReportApproval.SENT,
        "report.sent",
        by=by,
        now=now,
        upward_submission_id=report.upward_submission_id,
        upward_refused=result.upward_refused,
        warnings=list(result.warnings),
    )
    return result


# ---------------------------------------------------------------- deadlines


def follow_up_approvals(session: Session, *, now: dt.datetime, plan_id: str | None = None) -> int:
    """Reminders to the consolidating unit at each step's deadline, and one letter to its
    head when the upward date is near and the report is not sent (each once per
    revision, by the outbox key). Returns how many were queued."""
    today = now.astimezone(TZ).date()
    query = select(ConsolidatedReport, Obligation).join(
        Obligation,
        (Obligation.cycle_id == ConsolidatedReport.cycle_id)
        & (Obligation.deliverable_id == ConsolidatedReport.consolidation_id)
        & (Obligation.kind == "consolidation"),
    )
    query = query.where(
        ConsolidatedReport.approval.in_(
            [ReportApproval.DRAFT, ReportApproval.APPROVED, ReportApproval.SIGNED]
        )
    )
    queued = 0
    calendar = stored_calendar(session)
    for report, duty in session.execute(query).all():
        if plan_id is not None and duty.cycle.instance.plan_id != plan_id:
            continue
        steps = step_deadlines(session, duty.due_date, report, calendar)
        state = ReportApproval(report.approval)
        wanted = []
        if state is ReportApproval.DRAFT and today >= steps.review_by:
            wanted.append("nhac-duyet")
        if state is not ReportApproval.DRAFT and today >= steps.sign_by:
            wanted.append("nhac-ky-gui")
        if today >= steps.escalate_from:
            wanted.append("bao-thu-truong")
        for step in wanted:
            key = f"obl:{duty.id}:{MailKind.REPORT_DRAFT}:r{report.revision}-{step}"
            if session.scalar(select(OutboxMessage.id).where(OutboxMessage.idempotency_key == key)):
                continue  # once per step and revision
            queue_mail(
                session,
                duty,
                MailKind.REPORT_DRAFT,
                f"r{report.revision}-{step}",
                {"approval_label": state.label},
                now,
            )
            queued += 1
    return queued


def _step(
    session: Session,
    subject: Subject,
    to: ReportApproval,
    action: str,
    *,
    by: str,
    now: dt.datetime,
    **data: Any,
) -> None:
    """Move the report to ``to`` with its audit row (who, the report, its number)."""
    report = subject.report
    move_report(
        session,
        report,
        to,
        at=now,
        action=action,
        plan_id=subject.plan_id,
        actor=by,
        obligation_id=subject.duty_id,
        report_id=report.id,
        number=report.number_text,
        **data,
    )
    session.flush()


def _require(report: ConsolidatedReport, state: ReportApproval, what: str) -> None:
    current = ReportApproval(report.approval)
    if current is not state:
        raise ApprovalError(
            f"không thể {what}: báo cáo tổng hợp lần {report.revision} đang ở trạng thái "
            f"'{current.label}' (cần '{state.label}')"
        )


def simulated_signature(number: str) -> bytes:
    """A one-page PDF that says in its metadata it stands for a signature the simulation
    did not make (``kehoach simulate``, the demo); never for a real report."""
    from pypdf import PdfWriter

    writer = PdfWriter()
    writer.add_blank_page(width=595, height=842)  # A4 in points
    writer.add_metadata(
        {"/Title": f"Bản ký mô phỏng – báo cáo số {number}", "/Producer": "kehoach"}
    )
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()
