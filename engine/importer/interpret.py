"""The parts of a plan document → the draft plan (a commented :class:`Map`) and the list
of what to check.  Each unsure value gets a ``# KIỂM TRA:`` comment in the draft and a
line, with its line number in the document, in the report."""

from __future__ import annotations

import datetime as dt
import re
from typing import TYPE_CHECKING, Any

from engine.importer.assignments import Found, Task, find_assignments, table_assignments
from engine.importer.closing import Closing, read_closing
from engine.importer.context import Draft, Finding, slug
from engine.importer.draft_document import DocumentParts
from engine.importer.draft_reports import ReportParts
from engine.importer.header import Header, read_header
from engine.importer.normalise import Paragraph, paragraphs
from engine.importer.refs import SCHEMA_TYPES, TYPE_WORDS, Ref, find_refs
from engine.importer.sections import Node, build_tree
from engine.importer.sources import ImportInputError
from engine.importer.units import UnitMatcher
from engine.importer.yamlout import Map
from engine.task_window import Shape, read_window
from engine.vntext import short_date

if TYPE_CHECKING:
    pass

PLAN_TYPES = {"KH", "CTr", "PA", "ĐA"}
_PLACE = re.compile(
    r"\b((?:tỉnh|huyện|xã|phường|thành phố|thị xã|thị trấn|quận)\s+[A-ZĐÀ-Ỹ][\wÀ-ỹ]*(?:\s+[A-ZĐÀ-Ỹ][\wÀ-ỹ]*)*)"
)
_AREA = re.compile(
    r"trên địa bàn\s+(?P<place>(?:tỉnh|huyện|xã|phường|thành phố|thị xã)\s+[A-ZĐÀ-Ỹ][\wÀ-ỹ]*(?:\s+[A-ZĐÀ-Ỹ][\wÀ-ỹ]*)*)"
)
_SUBJECT = re.compile(
    r"^(?P<who>(?:Ủy ban nhân dân|UBND|Sở|Bộ|Ban|Đoàn)[^,.]{0,60}?)\s+(?:xây dựng|ban hành)\s+Kế hoạch"
)
_LEGAL = {"Luật", "NĐ", "TT"}
_RECURRING = {
    "yearly": "hằng năm",
    "half_yearly": "6 tháng một lần",
    "quarterly": "hằng quý",
    "monthly": "hằng tháng",
    "on_request": "khi có yêu cầu",
}


class Interpreter(DocumentParts, ReportParts):
    """A plan document's parts → the draft, with every point to check."""

    def run(self) -> Draft:
        paras = paragraphs(self.source.lines, hard_breaks=self.source.hard_breaks)
        if not paras:
            raise ImportInputError(
                f"{self.source.path}: không có chữ nào đọc được; hãy chọn tệp văn bản kế hoạch"
            )
        header = read_header(paras)
        root, preamble, closing_paras = build_tree(paras)
        sections = [n for n in root.children if n.kind == "section"]
        self._is_plan(header, sections)
        closing = read_closing(closing_paras)
        refs = self._refs(preamble, sections, closing)
        as_of, as_of_note = self._as_of(header, refs)
        self.as_of = as_of
        self.registry_on(as_of)
        issuer_name, issuer_note = self._issuer(header, preamble, closing)
        places = self._places(issuer_name, as_of)
        self.matcher = UnitMatcher(self.registry, as_of, places, issuer_name)

        plan = Map()
        plan.put("kind", "plan")
        plan.put(
            "id", self._plan_id(header, issuer_name, as_of), "Mã kế hoạch do máy đặt; đổi nếu cần."
        )
        registry_id = self.registry.id if self.registry else "chua-co-danh-ba"
        plan.put(
            "registry",
            registry_id,
            self._changes_note()
            if self.registry
            else self.check(0, "chưa đưa danh bạ (--registry); ghi mã danh bạ đơn vị"),
        )
        plan.put("as_of", as_of, as_of_note)
        document, issuer_unit = self._document(header, issuer_name, issuer_note, closing)
        plan.put("document", document)
        basis = self._basis(refs)
        plan.put("basis", basis)
        self._parent_plan(plan, refs)
        plan.put("preamble", "\n\n".join(p.text for p in preamble if not p.used) or None)
        for p in preamble:
            p.used = True
        plan.put("objectives", self._objectives(sections))
        body = [s for s in sections if not _is_objectives(s)]
        found = find_assignments(body, self.matcher)
        rows = [n.para for s in sections for n in s.walk() if n.kind == "row" and n.para]
        tabled, _left = table_assignments(rows, self.matcher)
        found.extend(tabled)
        assignments = self._assignments(found)
        plan.put("assignments", assignments)
        deliverables, consolidations, templates, on_request = self._deliverables(
            body, found, [a.get("id") for a in assignments], issuer_unit
        )
        plan.put("deliverables", deliverables)
        if on_request:
            plan.put("on_request", on_request, *self._on_request_notes(on_request), off=True)
        plan.put("consolidations", consolidations)
        plan.put("report_templates", templates)
        plan.put("recipients", self._recipients(closing, found))
        plan.put("closing", closing.text)
        for entry in list(plan.entries):
            if entry.value in (None, []) and entry.key in {
                "basis",
                "objectives",
                "deliverables",
                "consolidations",
                "report_templates",
                "recipients",
                "preamble",
                "closing",
            }:
                plan.entries.remove(entry)
        for section in sections:
            if section.para and any(
                n.para and n.para.used for n in section.walk() if n is not section
            ):
                section.para.used = True
        self._unread(paras)
        self.findings.sort(key=lambda f: (f.line, f.kind))
        return self._draft(plan)

    def _changes_note(self) -> str | None:
        if not self.applied:
            return None
        return (
            f"Tên đơn vị đối chiếu với danh bạ như ngày {short_date(self.as_of)}, sau các thay "
            f"đổi danh bạ: {', '.join(f'{c.id} (từ {short_date(c.effective)})' for c in self.applied)}."
        )

    # ------------------------------------------------------------ parts

    def _is_plan(self, header: Header, sections: list[Node]) -> None:
        if header.type is not None and header.type not in PLAN_TYPES:
            line = header.lines.get("type", 0)
            raise ImportInputError(
                f"{self.source.path}:{line}: văn bản này là {_type_name(header.type)}, không phải kế hoạch; "
                "`kehoach import` nhận kế hoạch (KẾ HOẠCH, CHƯƠNG TRÌNH, PHƯƠNG ÁN, ĐỀ ÁN)"
            )
        if header.type is None or not sections:
            raise ImportInputError(
                f"{self.source.path}: không nhận ra một kế hoạch: thiếu dòng tên loại “KẾ HOẠCH” "
                "hoặc các mục La Mã (I., II. …); kiểm tra đúng tệp chưa"
            )

    def _refs(
        self, preamble: list[Paragraph], sections: list[Node], closing: Closing
    ) -> list[tuple[Ref, str, int]]:
        """Every cited document with its role: (ref, role, line)."""
        out: list[tuple[Ref, str, int]] = []
        for para in preamble:
            legal_basis = para.text.startswith("Căn cứ")
            for ref in find_refs(para.text):
                role = (
                    "cites"
                    if legal_basis and (ref.type in _LEGAL or "/QH" in (ref.number or ""))
                    else "implements"
                )
                out.append((ref, role, para.first_line))
        for section in sections:
            for node in section.walk():
                if node.para is None:
                    continue
                text = node.text
                for index, ref in enumerate(find_refs(text)):
                    before = text[max(0, ref.start - 60) : ref.start].lower()
                    role = "cites"
                    if "lồng ghép" in before:
                        role = "combined_with"
                    elif index == 0 and re.search(r"tiếp tục thực hiện.*(?:tại|theo)\s*$", before):
                        role = "continues"
                    out.append((ref, role, node.line))
        if closing.text:
            out.extend((r, "cites", closing.text_line) for r in find_refs(closing.text))
        return out

    def _as_of(
        self, header: Header, refs: list[tuple[Ref, str, int]]
    ) -> tuple[dt.date, str | None]:
        if header.date is not None:
            return header.date, None
        dated = [r.date for r, _, _ in refs if r.date]
        if dated:
            latest = max(dated)
            return latest, self.check(
                header.lines.get("date", 0),
                f"văn bản không ghi ngày ban hành; tạm lấy ngày của văn bản căn cứ mới nhất "
                f"({latest.day}/{latest.month}/{latest.year}). Ghi ngày ban hành thật",
            )
        today = dt.date.today()
        return today, self.check(
            0, "văn bản không ghi ngày ban hành; tạm lấy hôm nay. Ghi ngày ban hành thật"
        )

    def _issuer(
        self, header: Header, preamble: list[Paragraph], closing: Closing
    ) -> tuple[str | None, str | None]:
        if header.issuer:
            return header.issuer, None
        area = _AREA.search(closing.text or "")
        for para in preamble:
            subject = _SUBJECT.match(para.text)
            if subject:
                who = subject["who"].strip()
                if area and not _PLACE.search(who):
                    who = f"{who.removesuffix(' ' + area['place'].split()[0])} {area['place']}"
                return who, self.check(
                    para.first_line,
                    f"văn bản không có phần đầu (cơ quan ban hành); suy ra “{who}” từ câu “{subject[0]}”"
                    + (f" và “trên địa bàn {area['place']}”" if area else ""),
                )
        return None, self.check(
            0, "không tìm thấy cơ quan ban hành; ghi document.issuer và issuer_unit"
        )

    def _places(self, issuer: str | None, as_of: dt.date) -> list[str]:
        places: list[str] = []
        if issuer:
            found = _PLACE.search(issuer)
            if found:
                places.append(found.group(1))
        if self.registry and issuer:
            probe = UnitMatcher(self.registry, as_of, places)
            match = probe.match(issuer, prefer_group=False)
            unit = next(
                (u for u in self.registry.units if match.best and u.id == match.best.id), None
            )
            seen = set()
            while unit is not None and unit.parent and unit.parent not in seen:
                seen.add(unit.parent)
                unit = next((u for u in self.registry.units if u.id == unit.parent), None)
                if unit is not None:
                    above = _PLACE.search(unit.name)
                    if above and above.group(1) not in places:
                        places.append(above.group(1))
        return places

    def _plan_id(self, header: Header, issuer: str | None, as_of: dt.date) -> str:
        words = header.summary or "ke hoach"
        who = "-".join(slug(issuer or "", 30).split("-")[-2:]) if issuer else ""
        return slug(f"{who} {' '.join(words.split()[:6])} {as_of.year}", 60)

    def _basis(self, refs: list[tuple[Ref, str, int]]) -> list[Map]:
        merged: dict[str, dict[str, Any]] = {}
        for ref, role, line in refs:
            entry = merged.setdefault(
                ref.key,
                {"ref": ref, "role": role, "line": line, "implements": list(ref.implements)},
            )
            known: Ref = entry["ref"]
            for name in ("date", "issuer", "title"):
                if getattr(known, name) is None and getattr(ref, name) is not None:
                    setattr(known, name, getattr(ref, name))
            for number in ref.implements:
                if number not in entry["implements"]:
                    entry["implements"].append(number)
            rank = ["cites", "continues", "combined_with", "implements"]
            if (
                role != entry["role"]
                and role in {"combined_with", "continues"}
                and entry["role"] == "cites"
                or rank.index(role) > rank.index(entry["role"])
                and role == "implements"
            ):
                entry["role"] = role
        ids: dict[str, str] = {}
        items: list[Map] = []
        for key, entry in merged.items():
            ref = entry["ref"]
            year = ref.date.year if ref.date else ""
            number_part = (
                re.sub(r"/\d{4}/", "/", ref.number or "").replace("/", " ").replace("-", " ")
            )
            ids[key] = self.ids.make(
                f"{ref.type} {number_part} {year}" if ref.number else f"{ref.type} {ref.title}", 40
            )
        for key, entry in merged.items():
            ref = entry["ref"]
            item = Map()
            item.put("id", ids[key])
            notes: list[str] = []
            if ref.type not in SCHEMA_TYPES:
                notes.append(
                    self.check(
                        entry["line"],
                        f"loại văn bản “{ref.type}” ({ref.number}) chưa có trong lược đồ; tạm ghi CV",
                    )
                )
            item.put("type", ref.type if not notes else "CV", *notes)
            item.put("number", ref.number)
            if ref.number is None:
                item.entries[-1].notes.append(
                    self.check(
                        entry["line"],
                        "văn bản chỉ được nêu tên, không có số, ngày, cơ quan ban hành",
                    )
                )
            item.put("date", ref.date)
            item.put("issuer", ref.issuer)
            if ref.title:
                item.put("title", ref.title)
            implements = [ids[n] for n in entry["implements"] if n in ids]
            if implements:
                item.put("implements", implements)
            item.put("role", entry["role"])
            items.append(item)
        return items

    def _parent_plan(self, plan: Map, refs: list[tuple[Ref, str, int]]) -> None:
        direct = next((r for r, role, _ in refs if role == "implements" and r.type == "KH"), None)
        if direct is not None and direct.number:
            line = next(line for r, _, line in refs if r is direct)
            plan.put(
                "parent_plan",
                slug(f"{direct.number} {direct.date.year if direct.date else ''}"),
                self.check(
                    line,
                    f"kế hoạch thực hiện {direct.number}; nếu kế hoạch cấp trên đã được nạp, ghi mã của nó ở đây",
                ),
                off=True,
            )

    def _objectives(self, sections: list[Node]) -> list[str]:
        out: list[str] = []
        for section in sections:
            if not _is_objectives(section):
                continue
            if section.para:
                section.para.used = True
            for node in section.walk():
                if node is section or node.para is None:
                    continue
                heading_only = (
                    node.kind in {"item", "subitem"}
                    and len(node.text) < 40
                    and not node.text.endswith(".")
                )
                if heading_only and node.children:
                    node.para.used = True
                    continue
                out.append(node.text)
                node.para.used = True
        return out

    def _assignments(self, found: list[Found]) -> list[Map]:
        out: list[Map] = []
        for item in found:
            entry = Map()
            entry.put("id", self.ids.make(item.heading.removeprefix("Đề nghị ")))
            entry.put("section", item.section)
            entry.put("heading", ("Đề nghị " if item.request else "") + item.heading)
            notes: list[str] = []
            entry.put("to", self.target(item.match, item.line, notes), *notes)
            if item.request:
                entry.put("mode", "request")
            extra: list[str] = []
            supporting = [self.target(match, item.line, extra) for match in item.supporting]
            if supporting:
                entry.put("supporting", supporting, *extra)
            tasks: list[Map] = []
            for task in item.tasks:
                one = Map()
                one.put("id", self.ids.make(" ".join(task.text.split()[:6]), 40))
                one.put("recurrence", task.recurrence)
                one.put("text", task.text)
                self._task_due(task, one)
                tasks.append(one)
            entry.put("tasks", tasks)
            out.append(entry)
        return out

    def _task_due(self, task: Task, one: Map) -> None:
        """``due``: the task's time in the document's words, where the schema's reading
        of a task's time (engine.task_window, as ``TaskDue`` checks it) reads them; else
        the words commented out, saying why."""
        timing = task.timing
        phrase = task.cell or (timing.phrase if timing is not None else None)
        if not phrase:
            return
        notes: list[str] = []
        try:
            window = read_window(phrase)
        except ValueError:
            try:
                window = read_window(phrase, self.as_of.year)
            except ValueError as exc:
                reason = str(exc)
                if timing is not None and timing.frequency in _RECURRING:
                    reason = (
                        f"đây là thời hạn lặp lại ({_RECURRING[timing.frequency]}), không phải "
                        f"một thời điểm hay một khoảng thời gian; nhiệm vụ ghi recurrence: "
                        f"{task.recurrence}, báo cáo định kỳ ghi ở deliverables"
                    )
                one.put(
                    "due",
                    phrase,
                    self.check(task.line, f"thời gian “{phrase}” chưa ghi được vào due: {reason}"),
                    off=True,
                )
                return
            notes.append(
                self.check(
                    task.line,
                    f"thời gian “{phrase}” không ghi năm; hiểu là năm {self.as_of.year} (năm của "
                    "kế hoạch), ghi 'year' nếu khác",
                )
            )
        doubt = timing.doubt() if timing is not None and window.shape is Shape.date else None
        if doubt:
            notes.append(self.check(task.line, doubt))
        one.put("due", phrase, *notes)

    # ------------------------------------------------------------ reports

    def _unread(self, paras: list[Paragraph]) -> None:
        for para in paras:
            if not para.used:
                excerpt = para.text if len(para.text) <= 90 else para.text[:87] + "…"
                self.findings.append(Finding(para.first_line, "không hiểu", excerpt))


def _type_name(code: str) -> str:
    """'TB' → 'Thông báo' (the first way of writing it)."""
    word = next((w for w, c in TYPE_WORDS.items() if c == code), code)
    return word[:1].upper() + word[1:]


def _is_objectives(section: Node) -> bool:
    return bool(
        re.search(r"mục đích|yêu cầu|mục tiêu", section.text, re.IGNORECASE)
    ) and not re.search(r"nội dung|nhiệm vụ|tổ chức", section.text, re.IGNORECASE)
