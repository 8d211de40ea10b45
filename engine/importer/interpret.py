"""The parts of a plan document → the draft plan (a commented :class:`Map`) and the list
of what to check.  Each unsure value gets a ``# KIỂM TRA:`` comment in the draft and a
line, with its line number in the document, in the report."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from engine.importer.assignments import Found, find_assignments, table_assignments
from engine.importer.closing import Closing, read_closing
from engine.importer.header import Header, read_header
from engine.importer.normalise import Paragraph, paragraphs
from engine.importer.phrases import Timing
from engine.importer.refs import SCHEMA_TYPES, TYPE_WORDS, Ref, find_refs
from engine.importer.reports import Clause, read_clause, sentences
from engine.importer.sections import Node, build_tree
from engine.importer.sources import ImportInputError, SourceText
from engine.importer.units import Match, UnitMatcher, fold
from engine.importer.yamlout import Map

if TYPE_CHECKING:
    from engine.importer.directory import Directory
    from engine.schema import Registry

CHECK = "KIỂM TRA"
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


@dataclass
class Finding:
    line: int
    kind: str  # "chưa chắc" (a value to check) or "không hiểu" (a line not used)
    text: str


@dataclass
class Draft:
    plan: Map
    registry_draft: Map | None
    findings: list[Finding] = field(default_factory=list)
    source: SourceText | None = None


def slug(text: str, limit: int = 48) -> str:
    words = re.findall(r"[a-z0-9]+", fold(text, expand=False).replace(",", " "))
    out = ""
    for word in words:
        if len(out) + len(word) + 1 > limit:
            break
        out = f"{out}-{word}" if out else word
    return out or "muc"


class _Ids:
    def __init__(self) -> None:
        self.seen: set[str] = set()

    def make(self, text: str, limit: int = 48) -> str:
        base = slug(text, limit)
        ident, n = base, 2
        while ident in self.seen:
            ident, n = f"{base}-{n}", n + 1
        self.seen.add(ident)
        return ident


class Interpreter:
    def __init__(self, source: SourceText, registry: Registry | Directory | None) -> None:
        self.source = source
        self.registry = registry
        self.findings: list[Finding] = []
        self.missing: dict[str, tuple[str, int]] = {}  # slug → (name, line)
        self.ids = _Ids()

    # ------------------------------------------------------------ reporting

    def check(self, line: int, text: str) -> str:
        """Record a point to check; the comment the draft writes above the value."""
        self.findings.append(Finding(line, "chưa chắc", text))
        where = f"{self.source.unit} {line}" if line else "toàn văn bản"
        return f"{CHECK} ({where}): {text}"

    def target(self, match: Match, line: int, notes: list[str]) -> Map:
        """A unit or group reference, with a note where the match is not sure."""
        if match.found and match.best is not None:
            if not match.sure:
                notes.append(
                    self.check(
                        line,
                        f"“{match.text}” khớp chưa chắc với danh bạ; các lựa chọn: {match.suggestions()}",
                    )
                )
            return Map(flow=True).put(match.best.kind, match.best.id)
        ident = "moi-" + slug(match.text, 40)
        self.missing.setdefault(ident, (match.text, line))
        hint = f"; gần nhất: {match.suggestions()}" if match.best is not None else ""
        notes.append(
            self.check(
                line,
                f"“{match.text}” không có trong danh bạ{hint}. Đã ghi tạm mã {ident} (xem bản nháp danh bạ)",
            )
        )
        return Map(flow=True).put("unit", ident)

    # ------------------------------------------------------------ the whole

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
            None
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
        return Draft(plan, self._registry_draft(), self.findings, self.source)

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

    def _document(
        self, header: Header, issuer: str | None, issuer_note: str | None, closing: Closing
    ) -> tuple[Map, str | None]:
        doc = Map()
        doc.put("type", header.type or "KH")
        line = header.lines.get("number", 0)
        if header.number_blank:
            doc.put(
                "number",
                None,
                self.check(
                    line,
                    f"số văn bản để trống (“Số: /{header.symbol}”, bản dự thảo); ghi số khi ban hành",
                ),
            )
        elif header.number:
            doc.put("number", header.number.replace(" ", ""))
        else:
            doc.put("number", None, self.check(line, "không thấy số, ký hiệu văn bản; ghi nếu có"))
        if header.date_blank:
            doc.put(
                "date",
                None,
                self.check(header.lines.get("date", 0), "ngày ban hành để trống (bản dự thảo)"),
            )
        else:
            doc.put(
                "date",
                header.date,
                None if header.date else self.check(0, "không thấy ngày ban hành"),
            )
        doc.put("place", header.place)
        issuer_unit: str | None = None
        notes: list[str] = [n for n in [issuer_note] if n]
        if issuer:
            match = self.matcher.match(issuer, prefer_group=False)
            target = self.target(match, header.lines.get("issuer", 0), notes)
            issuer_unit = target.get("unit") or target.get("group")
            if match.sure and match.best is not None:
                issuer = match.best.name
        doc.put("issuer", issuer, *notes)
        doc.put("issuer_unit", issuer_unit or "chua-ro")
        doc.put("parent_body", header.parent_body)
        if header.summary:
            doc.put("summary", header.summary)
        else:
            doc.put(
                "summary",
                "",
                self.check(
                    header.lines.get("type", 0), "không thấy trích yếu; ghi trích yếu của văn bản"
                ),
            )
        doc.put("signer", self._signer(closing))
        self.issuer_unit = issuer_unit
        return doc, issuer_unit

    def _signer(self, closing: Closing) -> Map:
        block = closing.signer
        line = block.lines[0] if block.lines else 0
        signer = Map()
        notes: list[str] = []
        if not block.name:
            notes.append(self.check(line, "không thấy tên người ký; ghi signer.name"))
        signer.put("name", block.name or "", *notes)
        signer.put("title", block.title or (block.chain[-1][1] if block.chain else ""))
        if block.chain:
            authority, on_behalf = block.chain[0]
            signer.put("authority", authority)
            signer.put("on_behalf_of", on_behalf)
            if len(block.chain) > 1:
                chain = [Map(flow=True).put("authority", a).put("of", o) for a, o in block.chain]
                signer.put(
                    "chain",
                    chain,
                    self.check(
                        line,
                        "người ký theo chuỗi thẩm quyền "
                        + " / ".join(f"{a} {o}" for a, o in block.chain)
                        + "; lược đồ hiện chỉ ghi một cấp (authority, on_behalf_of), chuỗi để ở dạng chú thích",
                    ),
                    off=True,
                )
        elif block.title:
            signer.put(
                "authority",
                None,
                self.check(
                    line,
                    f"chỉ thấy “{block.title}”, không thấy dòng TM./KT./Q./TL. phía trên; ghi nếu bản gốc có",
                ),
            )
        return signer

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
                if task.timing is not None and (task.timing.due or task.timing.until):
                    when = task.timing.due or task.timing.until
                    one.put(
                        "due",
                        when,
                        self.check(
                            task.line,
                            f"thời hạn “{task.timing.phrase}” của nhiệm vụ; lược đồ hiện chưa theo dõi hạn từng nhiệm vụ, để ở dạng chú thích",
                        ),
                        off=True,
                    )
                tasks.append(one)
            entry.put("tasks", tasks)
            out.append(entry)
        return out

    # ------------------------------------------------------------ reports

    def _deliverables(
        self,
        body: list[Node],
        found: list[Found],
        assignment_ids: list[str],
        issuer_unit: str | None,
    ) -> tuple[list[Map], list[Map], list[Map], list[Map]]:
        owner: dict[int, str] = {}
        for index, item in enumerate(found):
            if item.node is not None and index < len(assignment_ids):
                for node in item.node.walk():
                    if (
                        node.para is not None and node.para.used
                    ):  # its own text, not a sentence after it
                        owner[id(node)] = assignment_ids[index]
        clauses: list[tuple[Clause, str | None, Node]] = []
        for section in body:
            for node in section.walk():
                if node.para is None or node.kind == "row":
                    continue
                for sentence in sentences(node.text):
                    clause = read_clause(sentence, node.line)
                    if clause is not None:
                        clauses.append((clause, owner.get(id(node)), node))
        deliverables: list[Map] = []
        consolidations: list[Map] = []
        on_request: list[Map] = []
        reports: list[str] = []
        need_template = False
        # Reports first, so a consolidation written before the report it gathers finds it.
        has_report = any(c.kind == "report" for c, _, _ in clauses)
        clauses.sort(key=lambda c: has_report and c[0].kind == "consolidation")
        for index, (clause, assignment, node) in enumerate(clauses):
            if clause.kind == "sub_plan" and clause.to is None:
                # A unit's own plan goes where the same item sends its reports.
                sibling = next((c for c, _, n in clauses[index + 1 :] if n is node and c.to), None)
                if sibling is not None:
                    clause.to, clause.via = sibling.to, sibling.via
                    clause.routed_like = sibling.text
            if node.para is not None:
                node.para.used = True
            if clause.timing is not None and clause.timing.frequency == "on_request":
                on_request.append(self._on_request(clause, assignment))
                continue
            if clause.kind == "consolidation" and reports:
                gathered = self._gathered(clause, deliverables, reports)
                consolidations.append(self._consolidation(clause, gathered, issuer_unit))
                continue
            entry = self._deliverable(clause, assignment, node, issuer_unit)
            deliverables.append(entry)
            if clause.kind != "sub_plan":
                reports.append(entry.get("id"))
                need_template = True
        templates = [self._template()] if need_template else []
        return deliverables, consolidations, templates, on_request

    def _gathered(self, clause: Clause, deliverables: list[Map], reports: list[str]) -> str:
        """The report a consolidation gathers: the one sent to its unit, else the last."""
        if clause.by:
            by = self.matcher.match(clause.by, prefer_group=False)
            if by.found and by.best is not None:
                for entry in deliverables:
                    routing = entry.get("routing")
                    if (
                        entry.get("id") in reports
                        and routing is not None
                        and by.best.id in (routing.get("to"), routing.get("via"))
                    ):
                        return str(entry.get("id"))
        return reports[-1]

    def _routing(self, clause: Clause, issuer_unit: str | None, notes: list[str]) -> Map:
        routing = Map(flow=True)
        if clause.to:
            target = self.target(
                self.matcher.match(clause.to, prefer_group=False), clause.line, notes
            )
            routing.put("to", target.get("unit") or target.get("group"))
            if clause.routed_like:
                notes.append(
                    self.check(
                        clause.line,
                        f"câu không nói gửi kế hoạch cho ai; lấy theo câu báo cáo cùng mục: “{clause.routed_like[:80]}”",
                    )
                )
        else:
            routing.put("to", issuer_unit or "chua-ro")
            notes.append(
                self.check(clause.line, "câu không nói gửi cho ai; tạm ghi cơ quan ban hành")
            )
        if clause.via:
            target = self.target(
                self.matcher.match(clause.via, prefer_group=False), clause.line, notes
            )
            routing.put("via", target.get("unit") or target.get("group"))
        return routing

    def _rule(self, timing: Timing | None, frequency: str, line: int, notes: list[str]) -> Map:
        rule = Map()
        if timing is not None and timing.rule is not None:
            for key, value in timing.rule.items():
                rule.put(key, value)
            if timing.rule["rule"] == "yearly" and frequency == "once":
                notes.append(
                    self.check(
                        line,
                        f"“{timing.phrase}” không ghi năm; đã hiểu là hằng năm hoặc ghi rule: fixed với năm",
                    )
                )
            rule.put("phrase", timing.phrase)
            rule.put("policy", "next_working_day")
            doubt = timing.doubt()
            if doubt:
                notes.append(self.check(line, doubt))
            return rule
        assumed = {
            "monthly": Map().put("rule", "monthly").put("day", 31),
            "quarterly": Map().put("rule", "quarter_end").put("offset_days", 0),
            "half_yearly": Map().put("rule", "half_year_end").put("offset_days", 0),
            "yearly": Map().put("rule", "yearly").put("day", 31).put("month", 12),
        }.get(frequency, Map().put("rule", "after_activation").put("days", 30))
        if timing is not None:
            assumed.put("phrase", timing.phrase)
        assumed.put("policy", "next_working_day")
        assumed.put("assumed", True)
        assumed.put("note", "Kế hoạch không nêu thời hạn; hạn tạm định khi nhập văn bản")
        what = (
            f"“{timing.phrase}” không nêu ngày" if timing is not None else "câu không nêu thời hạn"
        )
        notes.append(
            self.check(line, f"{what}; hạn dưới đây là tạm định (assumed: true), sửa theo thực tế")
        )
        return assumed

    def _deliverable(
        self, clause: Clause, assignment: str | None, node: Node, issuer_unit: str | None
    ) -> Map:
        entry = Map()
        notes: list[str] = []
        sub_plan = clause.kind == "sub_plan"
        frequency = "once" if sub_plan else (clause.timing.frequency if clause.timing else "once")
        if frequency in {"ongoing", "on_request"}:
            frequency = "once"
        title = (
            "Kế hoạch cụ thể triển khai thực hiện Kế hoạch"
            if sub_plan
            else _report_title(frequency)
        )
        entry.put("id", self.ids.make("ke hoach cu the" if sub_plan else title, 30))
        entry.put("kind", "sub_plan" if sub_plan else "report")
        entry.put("title", title)
        entry.put("section", node.path() or None)
        entry.put("text", clause.text)
        entry.put("from_assignments", [assignment] if assignment else "all")
        entry.put("routing", self._routing(clause, issuer_unit, notes), *notes)
        entry.put("frequency", frequency)
        rule_notes: list[str] = []
        entry.put(
            "deadline", self._rule(clause.timing, frequency, clause.line, rule_notes), *rule_notes
        )
        if not sub_plan:
            entry.put("template", "mau-bao-cao")
        if clause.combined_with:
            entry.entries[-1].notes.append(
                self.check(clause.line, f"lồng ghép với {clause.combined_with}")
            )
        return entry

    def _consolidation(self, clause: Clause, report: str, issuer_unit: str | None) -> Map:
        entry = Map()
        entry.put("id", self.ids.make(f"tong hop {report}", 40))
        entry.put("text", clause.text)
        entry.put("consolidates", report)
        notes: list[str] = []
        by = self.matcher.match(clause.by, prefer_group=False) if clause.by else None
        if by is not None:
            entry.put("by", self.target(by, clause.line, notes).get("unit"), *notes)
        else:
            entry.put(
                "by", issuer_unit or "chua-ro", self.check(clause.line, "không rõ đơn vị tổng hợp")
            )
        notes = []
        entry.put("routing", self._routing(clause, issuer_unit, notes), *notes)
        notes = []
        entry.put(
            "deadline",
            self._rule(
                clause.timing,
                clause.timing.frequency if clause.timing else "once",
                clause.line,
                notes,
            ),
            *notes,
        )
        if clause.combined_with:
            entry.put("combined_with", _capital(clause.combined_with))
        if clause.on_behalf_of:
            notes = []
            target = self.target(
                self.matcher.match(clause.on_behalf_of, prefer_group=False), clause.line, notes
            )
            entry.put("on_behalf_of", target.get("unit"), *notes)
        return entry

    def _on_request(self, clause: Clause, assignment: str | None) -> Map:
        entry = Map()
        entry.put("text", clause.text)
        entry.put("when", clause.timing.phrase if clause.timing else None)
        entry.put("from_assignments", [assignment] if assignment else "all")
        if clause.to:
            match = self.matcher.match(clause.to, prefer_group=False)
            entry.put("to", match.best.id if match.found and match.best else clause.to)
        entry.put("line", clause.line)
        return entry

    def _on_request_notes(self, items: list[Map]) -> list[str]:
        return [
            self.check(
                int(item.get("line") or 0),
                f"báo cáo “{item.get('when')}”: lược đồ hiện chưa có báo cáo theo yêu cầu; để ở dạng chú thích",
            )
            for item in items
        ]

    def _template(self) -> Map:
        template = Map()
        template.put("id", "mau-bao-cao")
        template.put("title", "Báo cáo kết quả thực hiện Kế hoạch")
        fields = [
            Map()
            .put("id", "ket-qua-thuc-hien")
            .put("label", "Kết quả thực hiện các nhiệm vụ được giao")
            .put("type", "text"),
            Map()
            .put("id", "kho-khan-kien-nghi")
            .put("label", "Khó khăn, vướng mắc và kiến nghị, đề xuất")
            .put("type", "text")
            .put("required", False),
        ]
        template.put(
            "fields",
            fields,
            self.check(
                0,
                "mẫu báo cáo do máy đặt (hai trường chữ); thêm các chỉ tiêu số liệu kế hoạch yêu cầu",
            ),
        )
        return template

    # ------------------------------------------------------------ closing

    def _recipients(self, closing: Closing, found: list[Found]) -> list[Map]:
        assigned = {m.best.id for f in found for m in [f.match] if m.found and m.best}
        out: list[Map] = []
        for line in closing.recipients:
            entry = Map()
            entry.put("name", line.name)
            units: list[str] = []
            groups: list[str] = []
            notes: list[str] = []
            for part in _recipient_parts(line.name):
                match = self.matcher.match(part)
                if _short_code(part) and not (
                    match.sure and match.best and match.best.score >= 100
                ):
                    notes.append(
                        self.check(
                            line.line,
                            f"mã “{part}” không có trong danh bạ (trường short của đơn vị)",
                        )
                    )
                    continue
                if match.sure and match.best is not None:
                    (units if match.best.kind == "unit" else groups).append(match.best.id)
                elif match.found and match.best is not None:
                    notes.append(
                        self.check(
                            line.line,
                            f"“{part}” có thể là một đơn vị trong danh bạ (chưa ghi vào units/groups); "
                            f"các lựa chọn: {match.suggestions()}",
                        )
                    )
            purpose = line.purpose
            if purpose is None:
                purpose = "action" if assigned & set(units + groups) else "information"
            entry.put("purpose", purpose)
            if units:
                entry.put("units", list(dict.fromkeys(units)), *notes)
                notes = []
            if groups:
                entry.put("groups", list(dict.fromkeys(groups)), *notes)
                notes = []
            if notes:
                entry.entries[0].notes.extend(notes)
            out.append(entry)
        return out

    def _unread(self, paras: list[Paragraph]) -> None:
        for para in paras:
            if not para.used:
                excerpt = para.text if len(para.text) <= 90 else para.text[:87] + "…"
                self.findings.append(Finding(para.first_line, "không hiểu", excerpt))

    def _registry_draft(self) -> Map | None:
        if not self.missing:
            return None
        draft = Map()
        draft.put("kind", "registry")
        draft.put("id", (self.registry.id if self.registry else "danh-ba") + "-bo-sung")
        draft.put("name", "Các đơn vị có trong kế hoạch nhưng chưa có trong danh bạ")
        units = []
        for ident, (name, line) in self.missing.items():
            unit = Map()
            unit.put(
                "id",
                ident,
                f"{CHECK} ({self.source.unit} {line}): “{name}”; ghi tên đầy đủ, loại, cấp, cơ quan cấp trên, email",
            )
            unit.put("name", name)
            unit.put("kind", "chua-ro")
            unit.put("emails", [])
            units.append(unit)
        draft.put("units", units)
        return draft


def _type_name(code: str) -> str:
    """'TB' → 'Thông báo' (the first way of writing it)."""
    word = next((w for w, c in TYPE_WORDS.items() if c == code), code)
    return word[:1].upper() + word[1:]


def _report_title(frequency: str) -> str:
    words = {
        "yearly": "hằng năm",
        "half_yearly": "6 tháng",
        "quarterly": "hằng quý",
        "monthly": "hằng tháng",
    }
    suffix = words.get(frequency)
    return "Báo cáo kết quả thực hiện Kế hoạch" + (f" {suffix}" if suffix else "")


def _capital(text: str) -> str:
    return text[:1].upper() + text[1:] if text else text


def _is_objectives(section: Node) -> bool:
    return bool(
        re.search(r"mục đích|yêu cầu|mục tiêu", section.text, re.IGNORECASE)
    ) and not re.search(r"nội dung|nhiệm vụ|tổ chức", section.text, re.IGNORECASE)


_CODES = re.compile(r"^[A-ZĐ&.\-]{2,8}$")


def _short_code(part: str) -> bool:
    return bool(_CODES.match(part.strip()))


def _recipient_parts(name: str) -> list[str]:
    """'TT. HU, HĐND, UBND, MTTQ huyện' → ['HU huyện', 'HĐND huyện', 'UBND huyện', 'MTTQ
    huyện']; 'Lưu: VT, CAH' → ['VT', 'CAH']; a plain name → itself, purpose words off."""
    text = re.sub(r"\((?:[^)]*)\)", "", name).strip()
    if text.startswith("Lưu"):
        return [p.strip() for p in text.split(":", 1)[-1].split(",") if p.strip()]
    text = re.sub(r"^(?:TT\.|Thường trực)\s*", "", text)
    parts = [p.strip() for p in text.split(",")]
    codes = [p.split()[0] for p in parts if p]
    if len(parts) > 1 and all(_short_code(c) for c in codes):
        tail = " ".join(parts[-1].split()[1:])
        return [f"{p.split()[0]} {tail}".strip() for p in parts]
    return [text]
