"""``kehoach audit PLAN [--cycle K]`` prints a plan's audit log; ``kehoach audit --verify
[PLAN]`` checks its hash chain and every content it references (engine.audit_verify).

Times are in Viet Nam (Asia/Ho_Chi_Minh); each row takes two lines of at most 100
columns: its number in the chain, time, what was done and by whom; then the unit and
the details.
"""

from __future__ import annotations

import argparse
import datetime as dt
import textwrap
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from cli.common import EXIT_USAGE, database_url, err, out
from engine.calendar import TZ

WIDTH = 100

ACTION_LABELS = {
    "plan.activated": "Kích hoạt kế hoạch",
    "cycle.started": "Bắt đầu kỳ báo cáo",
    "cycle.closes_on": "Ấn định ngày đóng kỳ",
    "cycle.closed": "Đóng kỳ báo cáo",
    "cycle.reopened": "Mở lại kỳ báo cáo",
    "cycle.consolidated": "Tổng hợp báo cáo",
    "cycle.reconsolidated": "Tổng hợp lại (báo cáo thay thế)",
    "consolidation.late_report_noticed": "Báo có báo cáo đến sau khi tổng hợp",
    "consolidation.tampered_refused": "Không tổng hợp báo cáo không khớp nhật ký",
    "report.handed_upward": "Chuyển báo cáo lên cấp trên",
    "report.upward_refused": "Cấp trên không nhận báo cáo",
    "submission.recorded": "Ghi nhận báo cáo",
    "submission.intake": "Tiếp nhận báo cáo",
    "submission.accepted": "Chấp nhận báo cáo",
    "submission.returned": "Trả lại báo cáo để hoàn thiện",
    "obligation.reminded": "Nhắc hạn",
    "obligation.overdue": "Ghi nhận quá hạn",
    "obligation.escalated": "Báo lãnh đạo về báo cáo chậm",
    "obligation.transferred": "Chuyển cho đơn vị kế thừa",
    "obligation.merged": "Gộp vào nhiệm vụ của đơn vị kế thừa",
    "obligation.rerouted": "Đổi nơi nhận sang đơn vị kế thừa",
    "registry.changed": "Áp dụng thay đổi danh bạ đơn vị",
    "email.delivery_failed": "Gửi thư không thành công",
    "portal.link_request": "Xin liên kết mới qua cổng",
    "portal.submit": "Gửi báo cáo qua cổng",
    "portal.draft_saved": "Lưu nháp báo cáo qua cổng (chưa gửi)",
    "portal.submit_rejected": "Cổng không nhận báo cáo",
    "portal.submit_refused_link": "Cổng từ chối liên kết",
    "portal.csrf_rejected": "Cổng từ chối biểu mẫu không hợp lệ",
    "portal.intake_inline": "Cổng tự tiếp nhận báo cáo",
    "portal.intake_failed": "Cổng tiếp nhận không thành công",
    "portal.submit_replayed": "Cổng nhận lại biểu mẫu đã gửi (trả biên nhận cũ)",
    "portal.audit_suppressed": "Cổng gộp các lần từ chối dồn dập",
    "plan.version_applied_to_running": "Áp dụng phiên bản mới cho kỳ đang chạy",
    "audit.sealed": "Niêm phong dữ liệu có trước chuỗi nhật ký",
}
SOURCES = {
    "portal": "qua cổng",
    "cli": "qua dòng lệnh",
    "upward": "từ cấp dưới",
    "sim": "mô phỏng",
    "consolidation": "do tổng hợp",
}
_SKIPPED = {"link", "submission_ids", "changes", "unit_name", "subject", "to", "message_id"}
_QUIET = {"instance_id", "outbox_id", "plan_id", "obligation_id", "document_path"}
_NAMED = {
    "consolidation": "đợt tổng hợp",
    "parent_plan": "lên kế hoạch",
    "created": "nhiệm vụ mới:",
    "transferred": "chuyển đơn vị kế thừa:",
    "step": "mốc nhắc",
    "kind": "loại thư",
    "by": "bởi",
    "smtp_code": "mã SMTP",
    "attempts": "số lần gửi:",
}


def cmd_audit(args: argparse.Namespace) -> int:
    """The log of a plan, or (``--verify``) whether the chain and its contents hold."""
    if getattr(args, "verify", False):
        return _verify(args)
    if not args.plan:
        err("kehoach audit: thiếu mã kế hoạch (PLAN); hoặc dùng --verify để kiểm tra cả nhật ký")
        return EXIT_USAGE
    return _show(args)


# ---------------------------------------------------------------- verify


def _verify(args: argparse.Namespace) -> int:
    from engine.audit_anchor import anchor, anchor_path
    from engine.audit_verify import verify
    from engine.clock import clock_from_env
    from engine.config import settings
    from engine.store import migrate, session_scope

    url = database_url(args)
    migrate(url)
    conf = settings()
    anchors = anchor_path(conf)
    with session_scope(url) as session:
        if args.plan:
            _known_plan(session, args.plan)
        checked = verify(session, args.plan, files_dir=Path(conf.files_dir), anchors=anchors)
    where = f" kế hoạch {args.plan}" if args.plan else ""
    counted = (
        f"{_n(checked.rows)} dòng, {_n(checked.chains)} chuỗi, {_n(checked.contents)} nội dung"
    )
    first = checked.first
    if checked.intact or first is None:
        out(f"Nhật ký kiểm tra{where} nguyên vẹn: {counted} khớp mã băm.")
        # the heads verified now are anchored: a later rewrite of them is seen
        now = clock_from_env().now()
        with session_scope(url) as session:
            anchor(session, conf, reason="kiểm tra nhật ký", now=now, chain=args.plan)
        out(f"Khớp {_n(checked.anchors)} mốc neo ngoài cơ sở dữ liệu; mốc mới ghi vào {anchors}")
        return 0
    out(f"Nhật ký kiểm tra{where} KHÔNG nguyên vẹn: {_n(len(checked.breaks))} chỗ sai ({counted}).")
    out(f"Chỗ sai đầu tiên: {_place(first)}")
    _wrapped(first.what, "  ")
    if len(checked.breaks) > 1:
        out("Các chỗ sai khác:")
    for other in checked.breaks[1:10]:
        out(_fit(f"  - {_place(other)}"))
        _wrapped(other.what, "    ")
    if len(checked.breaks) > 10:
        out(f"  … và {_n(len(checked.breaks) - 10)} chỗ sai khác")
    return 1


def _wrapped(text: str, indent: str) -> None:
    for line in textwrap.wrap(text, WIDTH, initial_indent=indent, subsequent_indent=indent):
        out(line)


def _place(found: Any) -> str:
    chain = f"chuỗi {found.chain}" if found.chain else "chuỗi chung"
    parts = [chain]
    if found.seq is not None:
        parts.append(f"dòng số {found.seq}")
    if found.audit_id is not None:
        parts.append(f"id {found.audit_id}")
    if found.at is not None:
        parts.append(_time(found.at))
    return ", ".join(parts) + ":"


def _n(count: int) -> str:
    return f"{count:,}".replace(",", ".")


# ---------------------------------------------------------------- the log


def _known_plan(session: Any, plan_id: str) -> None:
    """NotFound (exit 4, with the plans there are) for a plan that was never loaded."""
    from engine.repository import plan_version

    plan_version(session, plan_id)


def _show(args: argparse.Namespace) -> int:
    from sqlalchemy import select

    from engine.store import migrate, session_scope
    from engine.store.models import AuditEvent

    url = database_url(args)
    migrate(url)
    cycle = getattr(args, "cycle", None)
    with session_scope(url) as session:
        _known_plan(session, args.plan)
        rows = list(
            session.scalars(
                select(AuditEvent).where(AuditEvent.chain == args.plan).order_by(AuditEvent.seq)
            )
        )
        where = _whereabouts(session, args.plan, rows)
        names = _unit_names(session, args.plan)
    if cycle:
        rows = [r for r in rows if _in_cycle(r, _about(where, r), str(cycle))]
    title = f"Nhật ký kiểm tra kế hoạch {args.plan}" + (f", kỳ {cycle}" if cycle else "")
    out(f"{title}: {_n(len(rows))} dòng (giờ Việt Nam)")
    for row in rows:
        about = _about(where, row)
        unit_id = about[0] if about else _data_unit(row.data)
        for line in _entry(row, names, unit_id):
            out(line)
    return 0


def _whereabouts(session: Any, plan_id: str, rows: list[Any]) -> dict[int, tuple[str, str]]:
    """{obligation id: (unit id, cycle key)} of the obligations the rows are about."""
    from sqlalchemy import select

    from engine.store.models import Cycle, Obligation

    ids = sorted({r.obligation_id for r in rows if r.obligation_id is not None})
    found: dict[int, tuple[str, str]] = {}
    for start in range(0, len(ids), 1000):
        batch = ids[start : start + 1000]
        for key, unit_id, cycle_key in session.execute(
            select(Obligation.id, Obligation.unit_id, Cycle.key)
            .join(Cycle, Cycle.id == Obligation.cycle_id)
            .where(Obligation.id.in_(batch))
        ):
            found[key] = (unit_id, cycle_key)
    return found


def _about(where: dict[int, tuple[str, str]], row: Any) -> tuple[str, str] | None:
    return where.get(row.obligation_id) if row.obligation_id is not None else None


def _unit_names(session: Any, plan_id: str) -> dict[str, str]:
    from engine.context import plan_context
    from engine.repository import plan_version

    try:
        view = plan_context(session, plan_version(session, plan_id)).view
    except Exception:  # a registry that is not loaded any more: ids are shown instead
        return {}
    return {key: unit.name for key, unit in view.units.items()}


def _in_cycle(row: Any, where: tuple[str, str] | None, cycle: str) -> bool:
    if where is not None:
        return where[1] == cycle
    data = row.data or {}
    return str(data.get("cycle")) == cycle or cycle in [str(c) for c in data.get("cycles") or []]


def _data_unit(data: Mapping[str, Any] | None) -> str | None:
    value = (data or {}).get("unit_id") or (data or {}).get("unit")
    return value if isinstance(value, str) else None


def _entry(row: Any, names: Mapping[str, str], unit_id: str | None) -> list[str]:
    label = ACTION_LABELS.get(row.action, row.action)
    first = f"#{row.seq:<5} {_time(row.at)}  {label} — {_actor(row.actor, names)}"
    unit = names.get(unit_id or "", unit_id or "")
    details = _details(row.action, row.data or {}, names)
    if row.content_hash:
        details += ("; " if details else "") + f"mã băm {row.content_hash[:8]}"
    second = "       " + " · ".join(p for p in (unit, details) if p)
    return [_fit(first), _fit(second)]


def _time(moment: dt.datetime) -> str:
    return moment.astimezone(TZ).strftime("%d/%m/%Y %H:%M:%S")


def _fit(line: str) -> str:
    return line if len(line) <= WIDTH else line[: WIDTH - 1] + "…"


def _actor(actor: str, names: Mapping[str, str]) -> str:
    kind, _, who = actor.partition(":")
    if actor == "system":
        return "hệ thống"
    if kind == "system":
        return {
            "dispatcher": "hệ thống (gửi thư)",
            "migration": "hệ thống (nâng cấp CSDL)",
            "portal": "hệ thống (cổng)",
        }.get(who, f"hệ thống ({who})")
    if kind == "unit":
        return names.get(who, who)
    if kind == "plan":
        return f"kế hoạch {who}"
    return actor


def _details(action: str, data: Mapping[str, Any], names: Mapping[str, str]) -> str:
    """A few words from the row's details, in Vietnamese; the rest as key=value."""
    parts: list[str] = []
    counts = action in ("cycle.consolidated", "cycle.reconsolidated", "cycle.closed")
    for key, value in data.items():
        text = _detail(key, value, counts, names)
        if text:
            parts.append(text)
    return ", ".join(parts)


def _detail(key: str, value: Any, counts: bool, names: Mapping[str, str]) -> str | None:
    if value is None or value == [] or value == {} or key in _SKIPPED:
        return None
    if counts and key in ("on_time", "late", "missing") and isinstance(value, int):
        word = {"on_time": "đúng hạn", "late": "muộn", "missing": "chưa gửi"}[key]
        return f"{value} {word}"
    simple = {
        "version": lambda v: f"phiên bản {v}",
        "revision": lambda v: f"lần {v}",
        "cycle": lambda v: f"kỳ {v}",
        "submission_id": lambda v: f"báo cáo #{v}",
        "report_id": lambda v: f"báo cáo tổng hợp #{v}",
        "replaces_report_id": lambda v: f"thay #{v}",
        "reason": lambda v: f"lý do: {v}",
        "error": lambda v: f"lỗi: {v}",
        "days_left": lambda v: f"còn {v} ngày",
        "days_late": lambda v: f"chậm {v} ngày",
        "due_date": lambda v: f"hạn {v}",
        "source": lambda v: SOURCES.get(str(v), str(v)),
        "from_unit": lambda v: f"từ {names.get(str(v), v)}",
        "to_unit": lambda v: f"sang {names.get(str(v), v)}",
        "on_time": lambda v: ("đúng hạn" if v else "quá hạn") if isinstance(v, bool) else None,
        "superseded": lambda v: "đã có phiên bản mới hơn" if v else None,
    }
    if key in simple:
        return simple[key](value)
    if key in _QUIET:
        return None
    if key in _NAMED:
        return f"{_NAMED[key]} {value}"
    if isinstance(value, (str, int, float, bool)):
        return f"{key}={value}"
    return None
