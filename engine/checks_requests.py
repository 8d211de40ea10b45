"""Checks of reports on request (đột xuất): a report with ``frequency: on_request`` has
the ``on_request`` deadline rule and no schedule of its own; its consolidation is due
``days`` (at least one) after the units' date; nothing else uses that rule."""

from __future__ import annotations

from collections.abc import Callable

from engine.schema import DeliverableKind, Frequency, OnRequest, Plan

Add = Callable[[tuple, str, str], None]


def check_requests(plan: Plan, add: Add) -> None:
    on_request = set()
    for index, deliverable in enumerate(plan.deliverables):
        base = ("deliverables", index)
        asked = deliverable.frequency is Frequency.on_request
        ruled = isinstance(deliverable.deadline, OnRequest)
        if asked:
            on_request.add(deliverable.id)
        if asked and not ruled:
            add(
                (*base, "deadline", "rule"),
                "báo cáo theo yêu cầu (frequency: on_request) lấy hạn từ từng yêu cầu; ghi "
                "deadline: {rule: on_request}",
                "request-rule",
            )
        elif ruled and not asked:
            add(
                (*base, "deadline", "rule"),
                f"quy tắc 'on_request' chỉ dùng cho báo cáo theo yêu cầu; đặt frequency: "
                f"on_request (đang là {deliverable.frequency.value}) hoặc dùng quy tắc khác",
                "request-rule",
            )
        if not asked:
            continue
        if deliverable.kind is not DeliverableKind.report:
            add(
                (*base, "kind"),
                "chỉ báo cáo (kind: report) mới được yêu cầu đột xuất",
                "request-kind",
            )
        if isinstance(deliverable.deadline, OnRequest) and deliverable.deadline.days:
            add(
                (*base, "deadline", "days"),
                "hạn của đơn vị là ngày mỗi yêu cầu ghi (kehoach request --due); 'days' chỉ "
                "dùng cho hạn tổng hợp, bỏ nó ở đây",
                "request-days",
            )
        if deliverable.first_period is not None:
            add(
                (*base, "first_period"),
                "báo cáo theo yêu cầu không có kỳ định trước; bỏ 'first_period'",
                "request-first-period",
            )
    for index, consolidation in enumerate(plan.consolidations):
        path = ("consolidations", index, "deadline")
        ruled = isinstance(consolidation.deadline, OnRequest)
        if consolidation.consolidates in on_request:
            if not ruled:
                add(
                    (*path, "rule"),
                    "tổng hợp một báo cáo theo yêu cầu: hạn tính từ hạn của đơn vị; ghi "
                    "deadline: {rule: on_request, days: N} (N ngày sau hạn của đơn vị)",
                    "request-rule",
                )
            elif isinstance(consolidation.deadline, OnRequest) and consolidation.deadline.days < 1:
                add(
                    (*path, "days"),
                    "hạn tổng hợp phải sau hạn của các đơn vị; ghi days từ 1 trở lên",
                    "deadline-order",
                )
        elif ruled:
            add(
                (*path, "rule"),
                "quy tắc 'on_request' chỉ dùng khi tổng hợp một báo cáo theo yêu cầu",
                "request-rule",
            )
