"""Who is given what: assignment headings naming units ("1. Công an huyện", "6. Đề nghị
Ủy ban Mặt trận …: Đẩy mạnh …", "a) Sở Công Thương: chủ trì …") and their tasks, and the
appendix task tables (task | lead | supporting | time)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from engine.importer.normalise import Paragraph
from engine.importer.phrases import Timing, recurrence_of, timings
from engine.importer.sections import Node
from engine.importer.units import Match, UnitMatcher

# How a heading naming a body starts.
UNIT_START = re.compile(
    r"^(?!Hội nghị|Hội thảo|Hội thi|Tổ chức|Ban hành|Báo cáo)(?:Các\s+|các\s+)?(?:Công an|Phòng|Sở|UBND|Ủy ban|Uỷ ban|Hội đồng|HĐND|Ban|Văn phòng|Trung tâm|"
    r"Đoàn|Hội|Bộ|Cục|Vụ|Thanh tra|Đài|Báo|Trường|Bệnh viện|Chi cục|Kho bạc|Bảo hiểm|Liên đoàn|"
    r"Huyện đoàn|Tỉnh đoàn|Bộ Chỉ huy|Ban Chỉ huy|Viện|Tổng cục|Mặt trận|MTTQ|BQL|Cơ quan|Thủ trưởng|"
    r"Chủ tịch|Trưởng|Thành viên|Tổ công tác|Điện lực|Cảng vụ|Công ty|Doanh nghiệp|Chi nhánh|Hạt Kiểm lâm|"
    r"Đội Quản lý|Quân sự)\b",
    re.IGNORECASE,
)
_PREFIX = re.compile(
    r"^(?:(?P<request>Đề nghị)\s+|Giao\s+|Trách nhiệm của\s+|Nhiệm vụ của\s+)", re.IGNORECASE
)
# Verbs that end a unit's name in "Giao Công an huyện theo dõi …".
_VERBS = re.compile(
    r"\s(?:theo dõi|chủ trì|tổng hợp|phối hợp|hướng dẫn|kiểm tra|là cơ quan|làm đầu mối|có trách nhiệm|"
    r"thực hiện|tham mưu|căn cứ|xây dựng|triển khai|tổ chức|chỉ đạo|báo cáo|đôn đốc)\b"
)


@dataclass
class Task:
    text: str
    line: int
    recurrence: str
    timing: Timing | None = None  # its stated time: the task's ``due``
    cell: str | None = None  # an appendix table's time cell, as printed


@dataclass
class Found:
    """One assignment as the document gives it."""

    section: str
    heading: str
    line: int
    match: Match
    request: bool
    tasks: list[Task] = field(default_factory=list)
    supporting: list[Match] = field(default_factory=list)
    node: Node | None = None


def _capital(text: str) -> str:
    return text[:1].upper() + text[1:] if text else text


def split_heading(text: str) -> tuple[str, str | None, bool] | None:
    """'Đề nghị X: làm Y' → ('X', 'làm Y', True); 'Công an huyện' → ('Công an huyện', None,
    False); None where the text does not start with a unit's name."""
    prefix = _PREFIX.match(text)
    request = bool(prefix and prefix["request"])
    rest = text[prefix.end() :] if prefix else text
    if not UNIT_START.match(rest):
        return None
    head, colon, body = rest.partition(":")
    if colon and len(head) <= 140 and not re.search(r"[.;]", head):
        return head.strip(), body.strip() or None, request
    if len(rest) <= 90 and not rest.rstrip().endswith((".", ";", ":")) and not _VERBS.search(rest):
        return rest.strip(), None, request
    return None


def _unit_heading(text: str) -> bool:
    split = split_heading(text)
    return split is not None and split[1] is not None


def lead_name(text: str) -> str | None:
    """The unit a sentence starts with: 'Giao Công an huyện theo dõi …' → 'Công an huyện'."""
    prefix = _PREFIX.match(text)
    rest = text[prefix.end() :] if prefix else text
    if not UNIT_START.match(rest):
        return None
    verb = _VERBS.search(rest)
    name = rest[: verb.start()] if verb else rest.split(",")[0]
    return name.strip(" ,:") or None


def unit_list(text: str) -> list[str]:
    """'Sở Tài chính, Sở Công Thương các tỉnh, thành phố và Văn phòng Bộ' → the three names:
    a comma starts a new name only where a unit's name starts after it."""
    names: list[str] = []
    for part in re.split(r"\s*[,;]\s*|\s+và\s+(?=[A-ZĐÀ-Ỹ])", text.strip()):
        if not part:
            continue
        if names and not UNIT_START.match(part):
            names[-1] = f"{names[-1]}, {part}"
        else:
            names.append(part)
    return [n for n in names if UNIT_START.match(n)]


_REPORTING = re.compile(r"báo cáo|gửi\b.*\bvề\b", re.IGNORECASE)


def task_time(text: str) -> Timing | None:
    """A task sentence's own time: the first one-off window it states ("hoàn thành trước
    ngày 30/6/2026", "trong quý II năm 2026", "2024 - 2025").  A recurring day ("trước ngày
    20 hằng tháng") is the task's recurrence, and a time in a clause that reports ("báo cáo
    … trước ngày …") is the report's deadline (engine.importer.reports), not the task's."""
    for timing in timings(text):
        # a one-off (a day, a month, a quarter, a year) or a span; not "trong vòng N ngày"
        if not (timing.frequency == "once" and timing.relative is None or timing.until):
            continue
        clause = re.split(r"[;.]", text[: timing.start])[-1]
        if _REPORTING.search(clause):
            continue
        return timing
    return None


def _task(text: str, line: int) -> Task:
    return Task(_capital(text), line, recurrence_of(text), task_time(text))


def _tasks_of(node: Node, body: str | None) -> list[Task]:
    tasks: list[Task] = []
    if body:
        tasks.append(_task(body, node.line))
    structured = [c for c in node.children if c.kind in {"bullet", "point", "subitem"}]
    loose = [c for c in node.children if c.kind == "text"]
    for child in node.children:
        if child.kind == "text" and body and not child.text[:1].islower():
            continue  # a sentence after "Unit: task." is the section's, not this unit's
        if child.kind in {"bullet", "point", "subitem"} or (
            child.kind == "text" and not structured
        ):
            text = child.text
            subs = [s.text for s in child.children if s.kind in {"plus", "text", "bullet"}]
            if subs:
                text = " ".join([text, *(f"+ {s}" for s in subs)])
                for sub in child.children:
                    if sub.para:
                        sub.para.used = True
            tasks.append(_task(text, child.line))
            if child.para:
                child.para.used = True
        elif child.kind == "text" and structured and tasks:
            tasks[-1].text += " " + child.text
            if child.para:
                child.para.used = True
    del loose
    return tasks


def find_assignments(sections: list[Node], matcher: UnitMatcher) -> list[Found]:
    """Every node of ``sections`` whose heading names a unit, with its tasks."""
    found: list[Found] = []

    def visit(node: Node) -> None:
        if node.kind in {"item", "subitem", "point", "bullet"}:
            split = split_heading(node.text)
            # "6. Các cơ quan khác" over "a) Sở Y tế: …", "b) Sở Nội vụ: …": the points
            # are the assignments, the item only groups them.
            grouping = (
                split is not None
                and split[1] is None
                and any(
                    c.kind in {"point", "subitem", "bullet"} and _unit_heading(c.text)
                    for c in node.children
                )
            )
            if grouping and node.para is not None:
                node.para.used = True
            if split is not None and not grouping:
                heading, body, request = split
                match = matcher.match(heading)
                tasks = _tasks_of(node, body)
                if tasks and (match.found or UNIT_START.match(heading)):
                    if node.para:
                        node.para.used = True
                    found.append(
                        Found(
                            node.path() or "?", heading, node.line, match, request, tasks, node=node
                        )
                    )
                    return
        for child in node.children:
            visit(child)

    for section in sections:
        visit(section)
    return found


# ---------------------------------------------------------------- appendix tables

_COLUMNS = (
    ("task", re.compile(r"nhiệm vụ|nội dung|công việc", re.IGNORECASE)),
    ("lead", re.compile(r"chủ trì", re.IGNORECASE)),
    ("supporting", re.compile(r"phối hợp", re.IGNORECASE)),
    ("time", re.compile(r"thời gian|thời hạn|hoàn thành|tiến độ", re.IGNORECASE)),
)


def _tables(rows: list[Paragraph]) -> list[list[Paragraph]]:
    tables: list[list[Paragraph]] = []
    for row in rows:
        if tables and row.first_line - tables[-1][-1].last_line <= 2:
            tables[-1].append(row)
        else:
            tables.append([row])
    return tables


def _cell(cells: list[str], columns: dict[str, int], name: str) -> str:
    index = columns.get(name)
    return cells[index].strip() if index is not None and index < len(cells) else ""


def table_assignments(
    rows: list[Paragraph], matcher: UnitMatcher
) -> tuple[list[Found], list[Paragraph]]:
    """Task tables → assignments grouped by lead unit; rows that did not fit are returned."""
    found: dict[str, Found] = {}
    left: list[Paragraph] = []
    for number, table in enumerate(_tables(rows), 1):
        head = table[0].cells or []
        columns: dict[str, int] = {}
        for name, pattern in _COLUMNS:
            for index, cell in enumerate(head):
                if pattern.search(cell) and index not in columns.values():
                    columns[name] = index
                    break
        if "task" not in columns or "lead" not in columns:
            left.extend(table)
            continue
        table[0].used = True
        for row in table[1:]:
            cells = row.cells or []
            task, lead = _cell(cells, columns, "task"), _cell(cells, columns, "lead")
            if (
                task
                and not lead
                and all(not c for i, c in enumerate(cells) if i != columns["task"] and i > 0)
            ):
                row.used = True  # a group row ("I | Tuyên truyền | | |")
                continue
            if not task or not lead:
                left.append(row)
                continue
            row.used = True
            match = matcher.match(lead)
            key = match.best.id if match.sure and match.best else lead
            time_text = _cell(cells, columns, "time")
            stated = timings(time_text, cell=True) if time_text else []
            timing = stated[0] if stated else None
            recurrence = recurrence_of(time_text) if time_text else "ongoing"
            if timing is not None and timing.frequency == "once":
                recurrence = "once"
            entry = found.get(key)
            if entry is None:
                entry = Found(f"PL{number}", lead, row.first_line, match, False)
                found[key] = entry
            entry.tasks.append(
                Task(_capital(task), row.first_line, recurrence, timing, time_text or None)
            )
            for name in unit_list(_cell(cells, columns, "supporting")):
                entry.supporting.append(matcher.match(name))
    return list(found.values()), left
