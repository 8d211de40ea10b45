"""Plain-text views of a plan for the terminal: the tree (`show`) and a year (`calendar`)."""

from __future__ import annotations

import datetime as dt
import textwrap
from dataclasses import dataclass

from engine import vntext
from engine.authority import chain_text, report_authority
from engine.calendar import WorkCalendar, cycles_in_year, deadline
from engine.content import content_lines
from engine.deadline_text import ASSUMED, POLICY_WORDS
from engine.deadline_words import against_the_letter, kind_of
from engine.periods import counting_from, owed
from engine.registry import RegistryView
from engine.render_tasks import task_detail, task_table_lines
from engine.schema import (
    AfterActivation,
    CalendarOverrides,
    DeadlineKind,
    DeadlineRule,
    Duty,
    Frequency,
    OnRequest,
    Plan,
    Recipient,
    Registry,
    Routing,
    Target,
    Unit,
)

ROLE_VI = {"lead": "chủ trì", "supporting": "phối hợp", "consolidation_point": "đầu mối tổng hợp"}
MODE_VI = {"order": "giao", "request": "đề nghị"}
PURPOSE_VI = {"report": "B/c", "action": "thực hiện", "information": "để biết", "archive": "Lưu"}
# The schema's English values as `show` prints them (an unknown value prints as it is).
FREQUENCY_VI = {
    "once": "một lần",
    "yearly": "hằng năm",
    "half_yearly": "6 tháng một lần",
    "quarterly": "hằng quý",
    "monthly": "hằng tháng",
    "ongoing": "thường xuyên",
    "on_request": "đột xuất khi có yêu cầu",
}
KIND_VI = {"sub_plan": "kế hoạch", "report": "báo cáo"}
BASIS_ROLE_VI = {
    "implements": "thực hiện",
    "continues": "tiếp tục",
    "combined_with": "lồng ghép",
    "cites": "viện dẫn",
    "grounds": "căn cứ",
}
RULE_VI = {
    "fixed": "ngày cố định",
    "yearly": "hằng năm",
    "monthly": "hằng tháng",
    "quarter_end": "cuối quý",
    "half_year_end": "cuối 6 tháng",
    "after_activation": "sau khi kích hoạt",
    "on_request": "theo từng yêu cầu",
}
FIELD_TYPE_VI = {
    "integer": "số nguyên",
    "decimal": "số thập phân",
    "percent": "tỷ lệ %",
    "text": "văn bản",
    "date": "ngày",
    "choice": "lựa chọn",
    "file": "tệp",
}
AGGREGATE_VI = {
    "sum": "cộng",
    "mean": "trung bình",
    "min": "nhỏ nhất",
    "max": "lớn nhất",
    "count": "đếm",
    "list_by_unit": "liệt kê theo đơn vị",
}


def _vi(words: dict[str, str], value: object) -> str:
    raw = str(getattr(value, "value", value))
    return words.get(raw, raw)


def _wrap(text: str, indent: str, width: int = 100) -> str:
    return textwrap.fill(
        " ".join(text.split()), width=width, initial_indent=indent, subsequent_indent=indent + "  "
    )


def _unit_name(view: RegistryView, unit_id: str | None) -> str:
    if unit_id is None:
        return ""
    unit = view.unit(unit_id)
    return unit.name if unit else unit_id


def _target_text(view: RegistryView, target: Target) -> str:
    if target.unit:
        return _unit_name(view, target.unit)
    group = view.groups.get(target.group or "")
    return group.name if group else str(target.group)


def _routing_text(view: RegistryView, routing: Routing) -> str:
    to = _unit_name(view, routing.to)
    text = f"→ {routing.person} ({to})" if routing.person else f"→ {to}"
    return text + (f" qua {_unit_name(view, routing.via)}" if routing.via else "")


def _rule_text(rule: DeadlineRule) -> str:
    """The plan's words (or that it has none), the deadline kind and the moving policy."""
    if rule.assumed:
        text = f"{ASSUMED.lower()} ({_vi(RULE_VI, rule.rule)}; văn bản không nêu hạn)"
    else:
        text = f"“{rule.phrase}”" if rule.phrase else _vi(RULE_VI, rule.rule)
    kind = kind_of(rule)
    text += " (tính cả ngày ghi" if kind is DeadlineKind.inclusive else " (không tính ngày ghi"
    if against_the_letter(rule):
        text += f": {(rule.note or '').strip().rstrip('.')}"
    return text + f"; {POLICY_WORDS[rule.policy]})"


def render_plan(
    plan: Plan,
    registry: Registry,
    calendar: CalendarOverrides | None,
    activated_on: dt.date | None,
    today: dt.date,
) -> str:
    view = RegistryView(registry, plan.groups)
    cal = WorkCalendar(calendar)
    lines = _document_lines(plan, registry, view)
    lines += _basis_lines(plan)
    lines += _preamble_lines(plan)
    lines += _objective_lines(plan)
    lines += _assignment_lines(plan, view, cal, activated_on)
    lines += task_table_lines(plan, view, cal, activated_on)
    lines += ["", "III. Tổ chức thực hiện (sản phẩm phải gửi, hạn kế tiếp):"]
    lines += _deliverable_lines(plan, view, cal, activated_on, today)
    lines += _consolidation_lines(plan, view, cal, activated_on, today)
    lines += _event_and_duty_lines(plan, view)
    lines += content_lines(plan)
    lines += _template_lines(plan)
    lines += ["", _wrap(plan.closing, "")] if plan.closing else []  # "Trên đây là …"
    lines += _recipient_lines(plan, view)
    lines += _sample_lines(plan, registry, view)
    return "\n".join(lines)


def _document_lines(plan: Plan, registry: Registry, view: RegistryView) -> list[str]:
    """The plan's own document: number, summary, issuer, signer, registry, parent plan."""
    doc = plan.document
    number = doc.number or "(số trống)"
    lines = [f"{doc.type.value} {number} — {plan.id}", _wrap(doc.summary, "  ")]
    issued = vntext.long_date(doc.date, doc.place) if doc.date else (doc.date_note or "ngày: —")
    lines.append(f"  Cơ quan ban hành: {_unit_name(view, doc.issuer_unit)}; {issued}")
    signer = doc.signer
    lines.append(f"  Người ký: {chain_text(signer.lines(), signer.title, signer.name)}")
    lines.append(f"  Đăng ký tổ chức: {registry.id} (tra cứu theo ngày {plan.as_of:%d/%m/%Y})")
    if registry.note:
        lines.append(_wrap(f"Ghi chú của danh mục: {registry.note}", "    "))
    if plan.parent_plan:
        lines.append(f"  Thực hiện kế hoạch cấp trên: {plan.parent_plan}")
    return lines


def _basis_lines(plan: Plan) -> list[str]:
    if not plan.basis:
        return []
    lines = ["", "Căn cứ:"]
    for item in plan.basis:
        date = f" ngày {item.date:%d/%m/%Y}" if item.date else ""
        implements = f"  ⇐ thực hiện {', '.join(item.implements)}" if item.implements else ""
        head = f"  - [{item.id}] {item.type.value} {item.number or ''}{date}"
        lines.append(f"{head} ({_vi(BASIS_ROLE_VI, item.role)}){implements}")
        if item.title:
            lines.append(_wrap(item.title, "      "))
    return lines


def _preamble_lines(plan: Plan) -> list[str]:
    """The paragraph a plan opens with after its căn cứ ('… ban hành Kế hoạch … như sau:')."""
    if not plan.preamble:
        return []
    return ["", *(_wrap(p, "  ") for p in plan.preamble.split("\n\n") if p.strip())]


def _objective_lines(plan: Plan) -> list[str]:
    if not plan.objectives:
        return []
    lines = ["", "I. Mục đích, yêu cầu:"]
    for index, objective in enumerate(plan.objectives, 1):
        lines.append(_wrap(f"{index}. {objective}", "  "))
    return lines


def _assignment_lines(
    plan: Plan, view: RegistryView, cal: WorkCalendar, activated_on: dt.date | None
) -> list[str]:
    if not plan.assignments:
        return []
    lines = ["", "II. Phân công:"]
    tracked = {t.id: t for t in plan.tracked.tasks}
    for assignment in plan.assignments:
        units = view.resolve(assignment.to, plan.as_of)
        role = ROLE_VI[assignment.role.value]
        mode = MODE_VI[assignment.mode.value]
        lines.append(
            f"  {assignment.section} {assignment.heading} [{role}; {mode}] — {len(units)} đơn vị"
        )
        if assignment.to.group:
            names = ", ".join(u.name for u in units)
            lines.append(_wrap(f"đơn vị: {names}", "      "))
        for target in assignment.supporting:
            lines.append(f"      phối hợp: {_target_text(view, target)}")
        for task in assignment.tasks:
            recurrence = (
                f" ({_vi(FREQUENCY_VI, task.recurrence)})"
                if task.recurrence not in {"ongoing"}
                else ""
            )
            inferred = " [suy ra, không trích nguyên văn]" if task.source == "inferred" else ""
            lines.append(_wrap(f"- {task.text}{recurrence}{inferred}", "    "))
            if task.id in tracked:
                detail = task_detail(plan, view, tracked[task.id], cal, activated_on)
                lines += [_wrap(line, "      ") for line in detail]
    return lines


def _deliverable_lines(
    plan: Plan,
    view: RegistryView,
    cal: WorkCalendar,
    activated_on: dt.date | None,
    today: dt.date,
) -> list[str]:
    lines = []
    for deliverable in plan.deliverables:
        lines.append(
            f"  [{deliverable.id}] {deliverable.title} ({_vi(KIND_VI, deliverable.kind)}, "
            f"{_vi(FREQUENCY_VI, deliverable.frequency)}) "
            f"{_routing_text(view, deliverable.routing)}"
        )
        lines.append(
            f"      hạn: {_rule_text(deliverable.deadline)}; "
            f"{_next_deadline(deliverable.deadline, deliverable.frequency, cal, activated_on, today)}"
        )
        if deliverable.template:
            lines.append(f"      mẫu báo cáo: {deliverable.template}")
    return lines


def _consolidation_lines(
    plan: Plan,
    view: RegistryView,
    cal: WorkCalendar,
    activated_on: dt.date | None,
    today: dt.date,
) -> list[str]:
    lines = []
    for consolidation in plan.consolidations:
        fed = plan.deliverable(consolidation.consolidates)
        frequency = fed.frequency if fed else Frequency.yearly
        lines.append(
            f"  [{consolidation.id}] Tổng hợp [{consolidation.consolidates}] do "
            f"{_unit_name(view, consolidation.by)} thực hiện "
            f"{_routing_text(view, consolidation.routing)}"
        )
        said = report_authority(
            plan,
            view,
            consolidation,
            consolidation.by,
            plan.as_of,
            consolidation.routing.to,
            consolidation.routing.via,
        )
        signer = chain_text(said.signer_lines, said.signer_title, said.signer_name)
        lines.append(
            _wrap(f"báo cáo ban hành với danh nghĩa: {_unit_name(view, said.issuer_id)}", "      ")
        )
        lines.append(_wrap(f"người ký: {signer}", "      "))
        lines.append(_wrap(f"nơi nhận: {'; '.join([*said.recipients, said.archive])}", "      "))
        lines.append(
            f"      hạn: {_rule_text(consolidation.deadline)}; "
            f"{_next_deadline(consolidation.deadline, frequency, cal, activated_on, today)}"
        )
        if consolidation.combined_with:
            lines.append(_wrap(f"lồng ghép với: {consolidation.combined_with}", "      "))
        if consolidation.upward:
            lines.append(
                f"      báo cáo lên: {consolidation.upward.plan} / {consolidation.upward.deliverable}"
            )
    return lines


def _event_and_duty_lines(plan: Plan, view: RegistryView) -> list[str]:
    lines = []
    for event in plan.events:
        when = _rule_text(event.date) if event.date else f"tháng {event.month} hằng năm"
        lines.append(f"  [sự kiện] {event.title} — {when}")
        if event.text:
            lines.append(_wrap(event.text, "      "))
    for duty in plan.duties:
        goal = f" (chỉ tiêu {duty.target})" if duty.target else ""
        goal += _measured_text(plan, duty)
        lines.append(
            _wrap(
                f"[nhiệm vụ {_vi(FREQUENCY_VI, duty.frequency)}] {_target_text(view, duty.who)}: "
                f"{duty.text}{goal}",
                "  ",
            )
        )
    return lines


def _template_lines(plan: Plan) -> list[str]:
    if not plan.report_templates:
        return []
    lines = ["", "Mẫu báo cáo:"]
    for template in plan.report_templates:
        lines.append(f"  [{template.id}] {template.title}")
        for f in template.fields:
            unit = f" ({f.unit})" if f.unit else ""
            kind, how = _vi(FIELD_TYPE_VI, f.type), _vi(AGGREGATE_VI, f.aggregate)
            lines.append(f"    - {f.label}{unit}: {kind}, tổng hợp: {how}")
    return lines


def _measured_text(plan: Plan, duty: Duty) -> str:
    """'; đo bằng: <field label> (mẫu <template>)' for a duty a report field measures."""
    if not duty.measured_by:
        return ""
    templates = [plan.template(duty.template)] if duty.template else plan.report_templates
    for template in templates:
        found = (
            next((f for f in template.fields if f.id == duty.measured_by), None)
            if template
            else None
        )
        if found is not None and template is not None:
            return f"; đo bằng: {found.label} (mẫu {template.id})"
    return f"; đo bằng: {duty.measured_by}"


def _recipient_lines(plan: Plan, view: RegistryView) -> list[str]:
    """Nơi nhận as written, each line's units and groups resolved as of the plan's date."""
    if not plan.recipients:
        return []
    lines = ["", "Nơi nhận:"]
    for recipient in plan.recipients:
        marker = PURPOSE_VI[recipient.purpose]
        suffix = "" if marker in recipient.name else f" ({marker})"
        lines.append(f"  - {recipient.name}{suffix}")
        names = [u.name for u in recipient_units(view, recipient, plan.as_of)]
        if names:
            lines.append(_wrap(f"gồm {len(names)} đơn vị: {', '.join(names)}", "      "))
        elif recipient.units or recipient.groups:
            lines.append("      (không có đơn vị nào vào ngày tra cứu danh mục)")
    lines.append(
        _wrap(
            "(Khi kích hoạt, mỗi đơn vị nêu trên, trừ mục Lưu, nhận một thư gửi kế hoạch "
            "để thực hiện, để báo cáo hoặc để biết; cơ quan ban hành và đơn vị có nhiệm vụ "
            "trong kế hoạch, đã nhận thư giao nhiệm vụ, không nhận thêm thư này.)",
            "  ",
        )
    )
    return lines


def recipient_units(view: RegistryView, recipient: Recipient, day: dt.date) -> list[Unit]:
    """The units a Nơi nhận line names (its units, then its groups' members) on ``day``."""
    found: dict[str, Unit] = {}
    for unit_id in recipient.units:
        unit = view.unit_on(unit_id, day)
        if unit is not None:
            found.setdefault(unit.id, unit)
    for group_id in recipient.groups:
        if group_id in view.groups:
            for unit in view.expand_group(group_id, day):
                found.setdefault(unit.id, unit)
    return list(found.values())


def _sample_lines(plan: Plan, registry: Registry, view: RegistryView) -> list[str]:
    """The units and persons the plan mails that the registry marks ``sample: true``."""
    ids: set[str] = set()
    for target in _targets(plan):
        ids.update(u.id for u in view.resolve(target, plan.as_of))
    units = [u for u in registry.units if u.id in ids]
    sample_units = [u for u in units if u.sample]
    people = [p for u in units for p in (u.head, u.focal) if p is not None and p.sample]
    if not (sample_units or people):
        return []
    text = (
        f"Dữ liệu mẫu, chưa kiểm chứng, trong danh mục {registry.id}: "
        f"{len(sample_units)} đơn vị kế hoạch giao việc hoặc gửi báo cáo tới"
        + (f" ({', '.join(u.name for u in sample_units)})" if sample_units else "")
        + f", {len(people)} người (thủ trưởng, đầu mối)"
        + (f" ({', '.join(p.name for p in people)})" if people else "")
        + "; thay bằng dữ liệu thật trước khi gửi thư thật."
    )
    return ["", _wrap(text, "")]


def _targets(plan: Plan) -> list[Target]:
    """Every unit or group the plan gives work, sends reports to or consolidates at."""
    found: list[Target] = []
    for assignment in plan.assignments:
        found += [assignment.to, *assignment.supporting]
    for task in plan.tracked.tasks:
        found += [task.lead, *task.supporting]
    for d in plan.all_deliverables:
        found += [Target(unit=u) for u in (d.routing.to, d.routing.via) if u]
    for c in plan.consolidations:
        found += [Target(unit=u) for u in (c.by, c.routing.to, c.routing.via) if u]
    return found


def _next_deadline(
    rule: DeadlineRule,
    frequency: Frequency,
    cal: WorkCalendar,
    activated_on: dt.date | None,
    today: dt.date,
) -> str:
    if isinstance(rule, AfterActivation) and activated_on is None:
        return f"{rule.days} ngày sau khi kích hoạt (chưa kích hoạt)"
    if frequency is Frequency.on_request or isinstance(rule, OnRequest):
        days = rule.days if isinstance(rule, OnRequest) else 0
        after = f", tổng hợp {days} ngày sau hạn của đơn vị" if days else ""
        return f"hạn do từng yêu cầu ghi (kehoach request){after}"
    for year in (today.year, today.year + 1):
        for cycle in cycles_in_year(frequency, year):
            d = deadline(rule, cycle, activated_on or today, cal)
            if d.due >= today:
                # why the day is not the one written (the kind, the policy), never "moved
                # from" a date the plan may not have written
                why = f" ({d.reason})" if d.reason else ""
                return f"kế tiếp {vntext.date_with_weekday(d.due)}{why}"
    return "không còn hạn nào"


@dataclass(frozen=True)
class CalendarEntry:
    nominal: dt.date
    due: dt.date
    what: str
    reason: str | None


def calendar_entries(
    plan: Plan, calendar: CalendarOverrides | None, year: int, activated_on: dt.date | None
) -> list[CalendarEntry]:
    cal = WorkCalendar(calendar)
    entries: list[CalendarEntry] = []
    start = activated_on or plan.as_of
    for deliverable in plan.all_deliverables:
        if isinstance(deliverable.deadline, AfterActivation) and activated_on is None:
            continue
        # Only the periods the plan owes: none due before it takes effect (engine/periods.py).
        for cycle in owed(
            plan, deliverable, cycles_in_year(deliverable.frequency, year), start, cal
        ):
            d = deadline(deliverable.deadline, cycle, counting_from(plan, start), cal)
            if d.nominal.year != year and d.due.year != year:
                continue
            label = f"{deliverable.title} [{deliverable.id}, kỳ {cycle.key}]"
            entries.append(CalendarEntry(d.nominal, d.due, label, d.reason))
    for consolidation in plan.consolidations:
        fed = plan.deliverable(consolidation.consolidates)
        frequency = fed.frequency if fed else Frequency.yearly
        cycles = cycles_in_year(frequency, year)
        for cycle in owed(plan, fed, cycles, start, cal) if fed else cycles:
            d = deadline(consolidation.deadline, cycle, counting_from(plan, start), cal)
            label = f"Tổng hợp, báo cáo lên [{consolidation.id}, kỳ {cycle.key}]"
            entries.append(CalendarEntry(d.nominal, d.due, label, d.reason))
    for event in plan.events:
        if event.date is not None:
            cycle = cycles_in_year(Frequency.yearly, year)[0]
            d = deadline(event.date, cycle, start, cal)
            entries.append(CalendarEntry(d.nominal, d.due, f"Sự kiện: {event.title}", None))
        elif event.month is not None:
            first = dt.date(year, event.month, 1)
            entries.append(
                CalendarEntry(first, first, f"Sự kiện cả tháng {event.month}: {event.title}", None)
            )
    return sorted(entries, key=lambda e: (e.due, e.what))


def render_calendar(
    plan: Plan, calendar: CalendarOverrides | None, year: int, activated_on: dt.date | None
) -> str:
    lines = [
        f"Lịch năm {year} — {plan.id} ({plan.document.type.value} {plan.document.number or '(số trống)'})"
    ]
    skipped = [
        d.id
        for d in plan.deliverables
        if isinstance(d.deadline, AfterActivation) and activated_on is None
    ]
    for entry in calendar_entries(plan, calendar, year, activated_on):
        when = f"{vntext.weekday(entry.nominal):8} {vntext.short_date(entry.nominal):>10}"
        if entry.due != entry.nominal:
            when += f" → {vntext.weekday(entry.due)} {vntext.short_date(entry.due)}"
        lines.append(f"  {when:42} {entry.what}")
        if entry.reason:
            lines.append(f"  {'':42} lý do: {entry.reason}")
    if skipped:
        lines.append(
            f"  (chưa kích hoạt: hạn tính từ ngày kích hoạt của {', '.join(skipped)} chưa xác định)"
        )
    return "\n".join(lines)
