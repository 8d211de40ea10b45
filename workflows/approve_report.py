"""The approval flow: the consolidating unit approves its draft report from the Prefect UI.

Like the review flow (workflows/review.py), a deployment run (``approve-report/<plan>``,
not a subflow) suspends with ``suspend_flow_run(wait_for_input=ReportApproval)``: the
UI's Resume form is built from :class:`ReportApprovalInput` (the five sections, who
approves, optionally the path of the signed PDF on the server and whether to send it).
On resume the run starts again from the top; every step is engine.approval's, which
refuses a step already taken, so a decision made meanwhile in the portal or the CLI
wins. Given as parameters (CLI, simulation), nothing suspends. No Prefect timeout:
the step deadlines live in the database (engine.approval_deadlines.StepDeadlines).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prefect import flow
from prefect.flow_runs import suspend_flow_run
from prefect.input import RunInput
from prefect.states import Completed
from pydantic import Field

from engine.config import settings as default_settings
from engine.states import ReportApproval
from engine.store.db import session_scope
from engine.store.models import ConsolidatedReport
from workflows.common import database, iso, plan_tag, resolve_now
from workflows.dispatch import send_emails
from workflows.tasks import kehoach_task
from workflows.upward import announce_sent


class ReportApprovalInput(RunInput):
    """The Resume form: what the consolidating unit writes and decides."""

    ket_qua: str = Field("", description="Đánh giá kết quả thực hiện")
    ton_tai: str = Field("", description="Tồn tại, hạn chế")
    nguyen_nhan: str = Field("", description="Nguyên nhân")
    phuong_huong: str = Field("", description="Phương hướng, nhiệm vụ thời gian tới")
    kien_nghi: str = Field("", description="Kiến nghị, đề xuất ('Không có.' nếu không có)")
    by: str = Field("", description="Người duyệt (họ tên, chức vụ)")
    signed_pdf: str = Field(
        "",
        description="Đường dẫn tệp PDF đã ký trên máy chủ (để trống: tải lên sau ở cổng)",
    )
    send: bool = Field(False, description="Gửi cấp trên ngay sau khi lưu bản đã ký")


def _state(url: str, report_id: int) -> tuple[ReportApproval, str] | None:
    with session_scope(url) as session:
        report = session.get(ConsolidatedReport, report_id)
        if report is None:
            return None
        return ReportApproval(report.approval), f"báo cáo tổng hợp lần {report.revision}"


@kehoach_task("approve report")
def take_steps(
    report_id: int,
    narrative: dict[str, str],
    by: str,
    signed_pdf: str,
    send: bool,
    now: str,
    database_url: str,
    simulated: bool = False,
) -> dict[str, Any]:
    """Save the sections and approve a draft; keep the signed PDF; send: each step only
    from the state before it (a step already taken is skipped, not repeated)."""
    from engine import approval

    conf = default_settings()
    moment = resolve_now(now)
    done: list[str] = []
    with session_scope(database_url) as session:
        report = session.get(ConsolidatedReport, report_id)
        assert report is not None
        if ReportApproval(report.approval) is ReportApproval.DRAFT:
            if any(narrative.values()):
                approval.save_narrative(session, report_id, narrative, by=by, now=moment)
            approval.approve(
                session, report_id, by=by, now=moment, conf=conf, final_pdf=not simulated
            )
            done.append("approved")
        if simulated and ReportApproval(report.approval) is ReportApproval.APPROVED:
            data = approval.simulated_signature(report.number_text or "")
            approval.upload_signed(
                session, report_id, data, name="ban-ky-mo-phong.pdf", by=by, now=moment, conf=conf
            )
            done.append("signed")
        elif signed_pdf and ReportApproval(report.approval) is ReportApproval.APPROVED:
            path = Path(signed_pdf)
            approval.upload_signed(
                session, report_id, path.read_bytes(), name=path.name, by=by, now=moment, conf=conf
            )
            done.append("signed")
        if send and ReportApproval(report.approval) is ReportApproval.SIGNED:
            approval.send_upward(session, report_id, by=by, now=moment, conf=conf)
            done.append("sent")
        return {"done": done, "approval": report.approval.value, "number": report.number_text}


@flow(name="approve-report", persist_result=False, log_prints=True)
def approve_report_flow(
    report_id: int,
    narrative: dict[str, str] | None = None,
    by: str | None = None,
    signed_pdf: str | None = None,
    send: bool = False,
    now: str | None = None,
    database_url: str | None = None,
    dispatch: bool = True,
    simulated: bool = False,
) -> Any:
    """Approve (number), keep the signed PDF and send one consolidated report; without
    ``narrative``, wait (suspended) for the consolidating unit's form. ``simulated``
    (kehoach simulate): no final PDF, a one-page stand-in marked as such for the signed
    file."""
    url = database(database_url)
    found = _state(url, report_id)
    if found is None:
        raise ValueError(f"consolidated report {report_id} does not exist")
    state, label = found
    if state is ReportApproval.DRAFT and narrative is None:
        answer = suspend_flow_run(
            wait_for_input=ReportApprovalInput.with_initial_data(
                description=(
                    f"**Duyệt {label}** (số {report_id}): viết các mục, ghi người duyệt; "
                    "hệ thống cấp số và lập bản cuối. Bản đã ký có thể tải lên sau ở cổng."
                )
            ),
            key=f"approve-report-{report_id}",
            timeout=None,  # never a Prefect timeout: deadlines live in the database
        )
        narrative = {
            key: getattr(answer, key)
            for key in ("ket_qua", "ton_tai", "nguyen_nhan", "phuong_huong", "kien_nghi")
        }
        by, signed_pdf, send = answer.by, answer.signed_pdf, answer.send
    when = iso(resolve_now(now))
    result = take_steps.with_options(task_run_name=f"duyệt · {label}")(
        report_id, narrative or {}, by or "operator", signed_pdf or "", send, when, url, simulated
    )
    sent = send_emails(url, when) if dispatch else None
    if "sent" in result["done"]:  # approved, signed, its email to the body above sent
        announce_sent(url, report_id, when)
    final = ReportApproval(result["approval"])
    print(
        f"{label}: {final.label.lower()}" + (f", số {result['number']}" if result["number"] else "")
    )
    return Completed(name=final.label, message=label, data={**result, "sent": sent})


def deployment_name(plan_id: str) -> str:
    return f"approve-report/{plan_id}"


def trigger_approval(report_id: int, plan_id: str, database_url: str | None = None) -> Any:
    """Create a run of the plan's approval deployment (it suspends for the form)."""
    from prefect.deployments import run_deployment

    parameters: dict[str, Any] = {"report_id": report_id}
    if database_url:
        parameters["database_url"] = database_url
    run = run_deployment(
        deployment_name(plan_id),
        parameters=parameters,
        timeout=0,
        as_subflow=False,
        flow_run_name=f"duyệt báo cáo tổng hợp · {plan_id} · số {report_id}",
        tags=[plan_tag(plan_id)],
    )
    return run.id  # type: ignore[union-attr]
