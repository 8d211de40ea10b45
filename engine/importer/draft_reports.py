"""The draft's deliverables, consolidations, report template and what the schema cannot
hold yet (on-request reports), from the clauses :mod:`engine.importer.reports` reads."""

from __future__ import annotations

import datetime as dt

from engine.importer.assignments import Found
from engine.importer.context import Context
from engine.importer.phrases import Timing
from engine.importer.reports import Clause, read_clause, sentences
from engine.importer.sections import Node
from engine.importer.yamlout import Map


class ReportParts(Context):
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
            if by.sure and by.best is not None:
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
            if timing.rule["rule"] == "yearly" and frequency == "once":
                # "trước ngày 15/10" with no year, for a one-off: the first 15/10 from the
                # plan's date on.
                day = dt.date(self.as_of.year, timing.rule["month"], timing.rule["day"])
                if day < self.as_of:
                    day = dt.date(self.as_of.year + 1, day.month, day.day)
                rule.put("rule", "fixed").put("date", day)
                notes.append(
                    self.check(
                        line,
                        f"“{timing.phrase}” không ghi năm; đã hiểu là ngày {day.day}/{day.month}/{day.year} "
                        "(lần đầu tiên kể từ ngày của kế hoạch)",
                    )
                )
            else:
                for key, value in timing.rule.items():
                    rule.put(key, value)
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
        routing = self._routing(clause, issuer_unit, notes)
        entry.put("routing", routing, *notes)
        by_unit = entry.get("by")
        if routing.get("to") == issuer_unit and by_unit and by_unit != issuer_unit:
            # a department gathering for the body that issued the plan reports in its own
            # name (the report cannot go out as the issuer to the issuer itself)
            entry.put(
                "on_behalf_of",
                by_unit,
                self.check(
                    clause.line,
                    f"báo cáo gửi {issuer_unit} nên đứng tên {by_unit}; "
                    "ghi đơn vị khác nếu văn bản nói báo cáo đứng tên ai",
                ),
            )
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
            entry.put("to", match.best.id if match.sure and match.best else clause.to)
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
