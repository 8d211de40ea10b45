"""The draft's document block (number, date, issuer, signer) and its recipients."""

from __future__ import annotations

import re

from engine.importer.assignments import Found
from engine.importer.closing import Closing
from engine.importer.context import Context
from engine.importer.header import Header
from engine.importer.yamlout import Map


class DocumentParts(Context):
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
        if len(block.chain) > 1:
            # TM. ỦY BAN NHÂN DÂN / KT. CHỦ TỊCH: the chain form (engine.schema_authority)
            signer.put("chain", [f"{a} {o}" for a, o in block.chain])
        elif block.chain:
            authority, on_behalf = block.chain[0]
            signer.put("authority", authority)
            signer.put("on_behalf_of", on_behalf)
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

    def _recipients(self, closing: Closing, found: list[Found]) -> list[Map]:
        assigned = {m.best.id for f in found for m in [f.match] if m.sure and m.best}
        out: list[Map] = []
        for line in closing.recipients:
            entry = Map()
            entry.put("name", line.name)
            units: list[str] = []
            groups: list[str] = []
            notes: list[str] = []
            for part in _recipient_parts(line.name):
                match = self.matcher.match(part)
                if match.dated is not None:
                    notes.append(self.check(line.line, match.dated.why(part, self.as_of)))
                    if match.best is None:
                        continue
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
