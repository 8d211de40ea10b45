"""The consolidating unit's page for its consolidated report, behind its own link.

Routes (the link of the consolidation duty; any other link gets 404)
  GET  /o/{token}/bao-cao                 the draft: state, deadlines, the units' answers,
                                          the sections to write, approve, upload, send
  POST /o/{token}/bao-cao                 one step (``action``: answer, narrative,
                                          approve, signed, send), CSRF-protected
  GET  /o/{token}/bao-cao/tep/{file_id}   a file of the report (draft, final, signed)

Every step is engine.approval's (transitions and audit rows there); a refusal is shown
on the page in Vietnamese and nothing is written.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from typing import Any

from fastapi import FastAPI
from starlette.datastructures import UploadFile
from starlette.responses import FileResponse, RedirectResponse, Response

from engine import approval
from engine.calendar import TZ
from engine.documents import stored_path
from engine.errors import KehoachError
from engine.lifecycle import review
from engine.reports import display_value
from engine.states import ReportApproval, ReviewState
from engine.store.db import session_scope
from engine.store.models import ConsolidatedReport, Obligation, StoredFile, Submission
from engine.vntext import short_date
from portal import csrf
from portal.access import LinkRefused, OpenedLink, open_link
from portal.link import FileLink, Link, PostedOnLink, refused_page, with_nonce
from portal.state import PortalState
from portal.uploads import content_disposition
from portal.view import plan_summary, unit_names

log = logging.getLogger("kehoach.portal")

ACTIONS = ("answer", "narrative", "approve", "signed", "send")
DONE = {
    "answer": "Đã ghi quyết định về báo cáo của đơn vị.",
    "narrative": "Đã lưu các mục đánh giá.",
    "approve": "Đã duyệt và cấp số; bản cuối (DOCX, PDF) đã được lập. Hãy ký rồi tải bản đã ký lên.",
    "signed": "Đã lưu bản đã ký.",
    "send": "Đã gửi báo cáo lên cấp trên.",
}


def routes(app: FastAPI, state: PortalState) -> None:
    @app.get("/o/{token}/bao-cao")
    def review_page(link: Link, xong: str = "") -> Response:
        return page_response(state, link, done=DONE.get(xong))

    @app.post("/o/{token}/bao-cao")
    def review_post(posted: PostedOnLink) -> Response:
        return take_step(state, posted.token, posted.form, posted.nonce, posted.addr)

    @app.get("/o/{token}/bao-cao/tep/{file_id}")
    def review_file(file_id: int, link: FileLink) -> Response:
        return file_response(state, link, file_id)


def _time(moment: dt.datetime | None) -> str | None:
    if moment is None:
        return None
    local = moment.astimezone(TZ)
    return f"{local:%H:%M} ngày {short_date(local.date())}"


def page_context(session: Any, link: OpenedLink) -> dict[str, Any] | None:
    """What the page shows, or None when the link is not a consolidation duty's."""
    obligation = link.obligation
    if obligation.kind != "consolidation":
        return None
    report = approval.report_of_duty(session, obligation)
    base: dict[str, Any] = {
        "plan": plan_summary(link.plan),
        "cycle_key": link.cycle.key,
        "unit_name": unit_names(session, link.registry_id, {obligation.unit_id}).get(
            obligation.unit_id, obligation.unit_id
        ),
        "report": None,
    }
    if report is None:
        return base
    subject = approval.subject_of(session, report.id)
    steps = approval.step_deadlines(session, obligation.due_date, report)
    state = ReportApproval(report.approval)
    names = {r.get("unit_id"): r.get("unit_name") for r in report.status_table or []}
    answers = _answers(session, report, subject.template, names)
    files = [
        (label, file_id)
        for label, file_id in (
            ("Dự thảo (DOCX)", report.document_file_id),
            ("Bản cuối (DOCX)", report.final_docx_file_id),
            ("Bản cuối (PDF)", report.final_pdf_file_id),
            ("Bản đã ký (PDF)", report.signed_file_id),
        )
        if file_id
    ]
    base.update(
        report={
            "revision": report.revision,
            "state": state.value,
            "state_label": state.label,
            "number": report.number_text,
            "approved": _time(report.approved_at),
            "approved_by": report.approved_by,
            "signed": _time(report.signed_at),
            "sent": _time(report.sent_at),
            "title": subject.ctx.title(subject.fed_id),
            "due": short_date(obligation.due_date),
        },
        steps={
            "review_by": short_date(steps.review_by),
            "sign_by": short_date(steps.sign_by),
            "send_by": short_date(steps.send_by),
        },
        answers=answers,
        undecided=sum(1 for a in answers if a["can_decide"]),
        sections=[
            (key, label, (report.narrative or {}).get(key, "")) for key, label in approval.SECTIONS
        ],
        files=files,
    )
    return base


def _answers(
    session: Any, report: ConsolidatedReport, template: Any, names: dict[str, str]
) -> list[dict[str, Any]]:
    """One row per unit of the report: its version counted, its newest, the decision."""
    rows = []
    ids = [r["obligation_id"] for r in report.status_table or [] if r.get("obligation_id")]
    newest: dict[int, Submission] = {}
    counted: dict[int, Submission] = {}
    wanted = {r["obligation_id"]: r.get("included_version") for r in report.status_table or []}
    for submission in session.query(Submission).filter(Submission.obligation_id.in_(ids)):
        if submission.version == wanted.get(submission.obligation_id):
            counted[submission.obligation_id] = submission
        held = newest.get(submission.obligation_id)
        if held is None or submission.version > held.version:
            newest[submission.obligation_id] = submission
    for row in report.status_table or []:
        obligation_id = row.get("obligation_id")
        sub = counted.get(obligation_id)
        latest = newest.get(obligation_id)
        fields = []
        if sub is not None:
            for f in template.fields:
                if f.id in (sub.values or {}):
                    fields.append((f.label, display_value(f, sub.values[f.id], names)))
        state = ReviewState(latest.review_state) if latest is not None else None
        rows.append(
            {
                "unit_name": row.get("unit_name"),
                "status": row.get("state"),
                "version": sub.version if sub else None,
                "sent": _time(sub.submitted_at) if sub else None,
                "on_time": sub.on_time if sub else None,
                "fields": fields,
                "summary": sub.summary if sub else None,
                "review_label": state.label if state else "Chưa gửi",
                "submission_id": latest.id if latest is not None else None,
                "can_decide": state is ReviewState.VALIDATED,
                "newer": latest is not None and sub is not None and latest.version > sub.version,
            }
        )
    return rows


def page_response(
    state: PortalState,
    link: OpenedLink,
    *,
    done: str | None = None,
    error: str | None = None,
    status_code: int = 200,
    typed: dict[str, str] | None = None,
) -> Response:
    with state.reading() as session:
        context = page_context(session, link)
    if context is None:
        return state.pages.error(404, back=link.page)
    fresh = link.nonce is None
    nonce = link.nonce or csrf.new_nonce()
    if typed and context.get("sections"):
        context["sections"] = [(k, label, typed.get(k, v)) for k, label, v in context["sections"]]
    response = state.pages.response(
        "review_report.html.j2",
        status_code,
        **context,
        token=link.token,
        csrf=state.form_token(link.token, nonce),
        done=done,
        error=error,
        max_upload_mb=f"{state.conf.portal_max_upload_mb:g}",
    )
    return with_nonce(state, response, nonce, fresh)


def take_step(state: PortalState, token: str, form: Any, nonce: str | None, addr: str) -> Response:
    """One step posted from the page: the CSRF field, the link, then engine.approval."""
    given = form.get(csrf.FIELD)
    if not isinstance(given, str) or not csrf.valid(state.csrf_key, token, nonce, given):
        from portal.pages import CSRF_FAILED

        return state.pages.error(403, *CSRF_FAILED, back=f"/o/{token}/bao-cao")
    with state.reading() as session:
        try:
            link = open_link(session, token, state.conf, state.now(), state.link_max_age, nonce)
        except LinkRefused as exc:
            return refused_page(state, token, exc, nonce)
        context = page_context(session, link)
    if context is None or context.get("report") is None:
        return state.pages.error(404, back=link.page)
    action = form.get("action")
    if action not in ACTIONS:
        return page_response(state, link, error="Thao tác không hợp lệ.", status_code=400)
    typed = {key: str(form.get(key) or "") for key in approval.SECTION_IDS}
    try:
        when = _apply(state, link, str(action), form, addr)
    except KehoachError as exc:
        log.info("review step %s refused: %s", action, exc)
        return page_response(state, link, error=_sentence(str(exc)), status_code=409, typed=typed)
    if action == "send":
        _announce_in_background(state.db_url, link.obligation.id, when)
    return RedirectResponse(f"/o/{token}/bao-cao?xong={action}", status_code=303)


def _announce_in_background(db_url: str, duty_id: int, when: dt.datetime) -> None:
    """The report just sent, on Prefect's event feed (workflows.upward.announce_sent, as
    the approval flow does), off the request: the page never waits for Prefect."""

    def announce() -> None:
        try:
            from workflows.common import iso
            from workflows.upward import announce_sent_outside_flow

            with session_scope(db_url) as session:
                duty = session.get(Obligation, duty_id)
                report = approval.report_of_duty(session, duty) if duty is not None else None
                report_id = report.id if report is not None else None
            if report_id is None:
                return
            problem = announce_sent_outside_flow(db_url, report_id, iso(when))
        except Exception as exc:  # the report is sent; the event is for the operator
            log.warning("report sent upward, event not emitted: %s", exc)
            return
        if problem:
            log.info("report %s sent upward, event not emitted: %s", report_id, problem)

    threading.Thread(target=announce, name="upward-event", daemon=True).start()


def _sentence(text: str) -> str:
    text = text.strip()
    return text[:1].upper() + text[1:] + ("" if text.endswith((".", "!", "?")) else ".")


def _apply(state: PortalState, link: OpenedLink, action: str, form: Any, addr: str) -> dt.datetime:
    """Take the step ``action``; returns the moment it was taken."""
    actor = f"{link.actor} ({addr})" if addr else link.actor
    now = state.now()
    with state.writing() as session:
        report = approval.report_of_duty(session, link.obligation)
        assert report is not None
        if action == "answer":
            _decide(session, report, form, actor, now)
        elif action == "narrative":
            texts = {key: str(form.get(key) or "") for key in approval.SECTION_IDS}
            approval.save_narrative(session, report.id, texts, by=actor, now=now)
        elif action == "approve":
            texts = {key: str(form.get(key) or "") for key in approval.SECTION_IDS}
            if any(texts.values()):
                approval.save_narrative(session, report.id, texts, by=actor, now=now)
            approval.approve(session, report.id, by=actor, now=now, conf=state.conf)
        elif action == "signed":
            upload = form.get("signed")
            if not isinstance(upload, UploadFile) or not upload.filename:
                raise approval.ApprovalError("chưa chọn tệp PDF đã ký")
            data = upload.file.read(state.max_file_bytes + 1)
            approval.upload_signed(
                session,
                report.id,
                data,
                name=upload.filename,
                by=actor,
                now=now,
                conf=state.conf,
            )
        elif action == "send":
            approval.send_upward(session, report.id, by=actor, now=now, conf=state.conf)
    return now


def _decide(session: Any, report: ConsolidatedReport, form: Any, actor: str, now: Any) -> None:
    try:
        submission_id = int(str(form.get("submission_id") or ""))
    except ValueError:
        raise approval.ApprovalError("không rõ báo cáo nào được duyệt") from None
    decision = form.get("decision")
    reason = str(form.get("reason") or "").strip()
    if decision not in ("accept", "return"):
        raise approval.ApprovalError("hãy chọn chấp nhận hoặc trả lại")
    if decision == "return" and not reason:
        raise approval.ApprovalError("trả lại báo cáo cần ghi lý do để đơn vị hoàn thiện")
    submission = session.get(Submission, submission_id)
    counted = {r.get("obligation_id") for r in report.status_table or []}
    if submission is None or submission.obligation_id not in counted:
        raise approval.ApprovalError("báo cáo này không thuộc bản tổng hợp")
    if submission.review_state is not ReviewState.VALIDATED:
        raise approval.ApprovalError(
            f"báo cáo này đã có quyết định ({ReviewState(submission.review_state).label.lower()})"
        )
    review(session, submission_id, decision=str(decision), reason=reason or None, by=actor, now=now)


def file_response(state: PortalState, link: OpenedLink, file_id: int) -> Response:
    with state.reading() as session:
        report = approval.report_of_duty(session, link.obligation)
        allowed = (
            {
                report.document_file_id,
                report.final_docx_file_id,
                report.final_pdf_file_id,
                report.signed_file_id,
            }
            if report is not None
            else set()
        )
        row = session.get(StoredFile, file_id) if file_id in allowed else None
        if row is None:
            return state.pages.error(404, back=f"/o/{link.token}/bao-cao")
        path = stored_path(state.files_dir, row.sha256)
        name, ctype = row.original_name, row.content_type
    if not path.exists():
        return state.pages.error(404, back=f"/o/{link.token}/bao-cao")
    return FileResponse(
        path, media_type=ctype, headers={"content-disposition": content_disposition(name)}
    )
