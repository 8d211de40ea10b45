"""A new consolidated revision is a draft (engine.approval takes it further): the
revision it replaces stops on its way, the consolidating unit is told to review it, and
its document carries the unit's sections (placeholders while it is a draft)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy.orm import Session

from engine.consolidation.combined import combined_sections
from engine.documents import ReportDocument
from engine.outbox.kinds import MailKind
from engine.outbox.requests import queue_mail
from engine.schema import Consolidation
from engine.states import ReportApproval
from engine.store.models import ConsolidatedReport, Obligation
from engine.transitions import move_report

DRAFT_PLACEHOLDER = "(Đơn vị tổng hợp viết nội dung này khi duyệt dự thảo.)"


def drafted(
    session: Session,
    duty: Obligation | None,
    report: ConsolidatedReport,
    previous: ConsolidatedReport | None,
    *,
    plan_id: str,
    now: dt.datetime,
) -> None:
    """A new revision is a draft: the one it replaces stops on its way (when not sent
    yet), and the consolidating unit is told to review it (its link, the deadlines)."""
    if previous is not None and not ReportApproval(previous.approval).terminal:
        move_report(
            session,
            previous,
            ReportApproval.SUPERSEDED,
            at=now,
            action="report.superseded",
            plan_id=plan_id,
            obligation_id=duty.id if duty else None,
            report_id=previous.id,
            revision=previous.revision,
            by_revision=report.revision,
        )
    if duty is not None:
        queue_mail(session, duty, MailKind.REPORT_DRAFT, f"r{report.revision}", None, now)


def apply_narrative(doc: ReportDocument, narrative: dict[str, Any], *, draft: bool) -> None:
    """The unit's sections into the document: the assessment opens section I, the others
    follow section II (III. tồn tại, hạn chế và nguyên nhân; IV. phương hướng; V. kiến
    nghị). In a draft, a section not written yet shows what belongs there."""

    def paragraphs(key: str) -> list[str]:
        text = str(narrative.get(key) or "").strip()
        if not text:
            return [DRAFT_PLACEHOLDER] if draft else []
        return [line.strip() for line in text.splitlines() if line.strip()]

    doc.draft = draft
    if not draft and not any(str(v or "").strip() for v in narrative.values()):
        return  # a report sent before approval existed: it had no such sections
    doc.assessment = paragraphs("ket_qua")
    shortcomings = paragraphs("ton_tai")
    causes = paragraphs("nguyen_nhan")
    doc.sections = [
        (
            "III. TỒN TẠI, HẠN CHẾ VÀ NGUYÊN NHÂN",
            ["1. Tồn tại, hạn chế", *shortcomings, "2. Nguyên nhân", *causes],
        ),
        ("IV. PHƯƠNG HƯỚNG, NHIỆM VỤ THỜI GIAN TỚI", paragraphs("phuong_huong")),
        ("V. KIẾN NGHỊ, ĐỀ XUẤT", paragraphs("kien_nghi")),
    ]


def finish_document(
    session: Session,
    doc: ReportDocument,
    consolidation: Consolidation,
    cycle_key: str,
    narrative: dict[str, Any],
    *,
    draft: bool,
) -> None:
    """The unit's sections (:func:`apply_narrative`), then the combined plan's section."""
    apply_narrative(doc, narrative, draft=draft)
    doc.sections = [*doc.sections, *combined_sections(session, consolidation, cycle_key)]
