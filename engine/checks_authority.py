"""Checks of authority and routing in a plan (engine.checks calls them).

Signer blocks (the plan's, each consolidation's) against Nghị định 30's rules
(engine.authority); a consolidated report never goes to the body it goes out as, nor
is consolidated by the body it is for; a report is never owed by the body it is for;
the fields that name the report's body, signer and recipients name something real; a unit that owes a report
to itself is said once (a warning).
"""

from __future__ import annotations

from collections.abc import Callable

from engine.authority import check_signer, report_issuer
from engine.cutoff import check_cutoffs
from engine.registry import RegistryView
from engine.schema import Plan

Add = Callable[[tuple, str, str], None]
UnitCheck = Callable[[tuple, str], bool]


def check_authority(
    plan: Plan, view: RegistryView, add: Add, warn: Add, check_unit: UnitCheck
) -> None:
    document = plan.document
    check_signer(
        document.signer, view.unit(document.issuer_unit), ("document", "signer"), add, warn
    )
    for index, consolidation in enumerate(plan.consolidations):
        base = ("consolidations", index)
        routing = consolidation.routing
        if consolidation.on_behalf_of and not check_unit(
            (*base, "on_behalf_of"), consolidation.on_behalf_of
        ):
            continue
        issuer = report_issuer(plan, consolidation)
        if consolidation.by == routing.to:
            add(
                (*base, "routing", "to"),
                f"'{consolidation.by}' vừa tổng hợp vừa là nơi nhận báo cáo tổng hợp (tự báo "
                "cáo cho chính mình); ghi routing.to là cơ quan cấp trên nhận báo cáo",
                "reports-to-itself",
            )
            continue
        if issuer == routing.to:
            add(
                (*base, "on_behalf_of") if consolidation.on_behalf_of else (*base, "routing", "to"),
                f"báo cáo đi dưới tên '{issuer}'"
                + ("" if consolidation.on_behalf_of else " (mặc định: cơ quan ban hành kế hoạch)")
                + f" lại gửi cho chính '{issuer}'; ghi on_behalf_of: {consolidation.by} (báo "
                "cáo do đơn vị tổng hợp ban hành) hoặc sửa routing.to",
                "reports-to-itself",
            )
            continue
        if routing.via is not None and routing.via == routing.to:
            add(
                (*base, "routing", "via"),
                f"'{routing.via}' vừa là kênh gửi (via) vừa là nơi nhận (to); bỏ via hoặc "
                "ghi đơn vị trung gian",
                "via-is-to",
            )
        unit = view.unit(issuer)
        if consolidation.signer is not None:
            check_signer(consolidation.signer, unit, (*base, "signer"), add, warn)
        elif issuer != document.issuer_unit and (unit is None or unit.head is None):
            warn(
                (*base, "on_behalf_of"),
                f"báo cáo đi dưới tên '{issuer}' nhưng không ghi 'signer' và danh mục không "
                "có thủ trưởng (head) của đơn vị: khối chữ ký in 'THỦ TRƯỞNG ĐƠN VỊ' và để "
                "trống tên; ghi consolidations[].signer",
                "signer-unknown",
            )
        _check_recipients(base, consolidation.recipients, add)
    _check_owed_to_itself(plan, view, warn)
    check_cutoffs(plan, add)


def _check_recipients(base: tuple, lines: list[str], add: Add) -> None:
    archives = 0
    for i, line in enumerate(lines):
        if not line.strip():
            add((*base, "recipients", i), "dòng Nơi nhận trống; xóa nó hoặc ghi tên", "blank")
        elif line.strip().startswith("Lưu"):
            archives += 1
            if archives > 1:
                add(
                    (*base, "recipients", i),
                    "hai dòng 'Lưu:'; gộp thành một (Lưu: VT, TH)",
                    "archive-twice",
                )


def _check_owed_to_itself(plan: Plan, view: RegistryView, warn: Add) -> None:
    """A unit that owes a report to itself (the deliverable's 'to' among its units): said
    once, since a consolidating office often reports its own part too (it is mailed and
    answers through the portal like the others)."""
    for index, deliverable in enumerate(plan.deliverables):
        chosen = (
            plan.assignments
            if deliverable.from_assignments == "all"
            else [a for a in plan.assignments if a.id in set(deliverable.from_assignments)]
        )
        for assignment in chosen:
            if assignment.to.group is not None and assignment.to.group not in view.groups:
                continue  # reported by the group checks
            owing = {u.id for u in view.resolve(assignment.to, plan.as_of)}
            if deliverable.routing.to in owing:
                warn(
                    ("deliverables", index, "routing", "to"),
                    f"'{deliverable.routing.to}' phải gửi '{deliverable.id}' cho chính mình "
                    f"(nó thuộc nhiệm vụ '{assignment.id}'): nó được giao và nộp qua cổng như "
                    "các đơn vị khác; nếu không phải vậy, loại nó khỏi nhóm (exclude)",
                    "reports-to-itself",
                )
                break
