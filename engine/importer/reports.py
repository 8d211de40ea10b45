"""What units must send, read from sentences: their own plan ("xây dựng Kế hoạch cụ thể"),
reports with their period and deadline ("báo cáo UBND huyện qua Công an huyện trước ngày
10/9/ hằng năm"), and the consolidation of those reports upward ("Giao Công an huyện …
tổng hợp …, tham mưu UBND huyện báo cáo UBND tỉnh (qua Công an tỉnh) … (lồng ghép với …)")."""

from __future__ import annotations

import re
from dataclasses import dataclass

from engine.importer.assignments import lead_name
from engine.importer.phrases import Timing, deadline_of

_UNIT = (
    r"(?:UBND|Ủy ban|Uỷ ban|Sở|Bộ|Công an|Ban|Văn phòng|Thanh tra|Chủ tịch|Cục|Tổng cục|Trung tâm|"
    r"Phòng|Đoàn|Trưởng đoàn|Thủ tướng|Chính phủ|Tỉnh ủy|Huyện ủy|HĐND|Hội đồng|Giám đốc|Bộ trưởng)"
)
_END = (
    r"(?=\s+(?:trước|chậm nhất|định kỳ|hằng|hàng|trong (?:thời hạn|vòng|ngày|tháng|năm|quý)|để|theo|khi|"
    r"đột xuất|vào|và|kết quả|tình hình)\b|\s*[,;.(:]|$)"
)
# "(qua Phòng Công chức, viên chức)" may hold a comma; "qua Công an huyện" ends at one.
_VIA = r"(?:\s*\(\s*qua\s+(?P<via>[^()]+?)\s*\)|\s+qua\s+(?P<via2>[^,;.()]+?))?"
ROUTE = re.compile(
    rf"báo cáo\s+(?:kết quả\s+(?:thực hiện\s+)?|tình hình\s+)?(?:(?:gửi\s+)?về\s+|cho\s+|gửi\s+|lên\s+)?"
    rf"(?P<to>{_UNIT}[^,;.():]*?){_VIA}{_END}"
)
SEND = re.compile(rf"(?:gửi|gửi về|về)\s+(?P<to>{_UNIT}[^,;.():]*?){_VIA}{_END}")
_COMBINED = re.compile(r"lồng ghép (?:với|trong|vào)\s+(?P<what>[^)]+)")
_SUB_PLAN = re.compile(
    r"xây dựng\s+(?:và ban hành\s+)?[Kk]ế hoạch\s+(?:cụ thể|triển khai|thực hiện|của)",
    re.IGNORECASE,
)
_ON_BEHALF = re.compile(rf"tham mưu\s+(?:cho\s+)?(?P<who>{_UNIT}[^,;.()]*?)\s+báo cáo")
_SENDS = re.compile(r"gửi\s+(?:danh sách|kết quả|văn bản|kế hoạch|đăng ký)", re.IGNORECASE)
_SENTENCE = re.compile(r"(?<=[.;])\s+(?=[A-ZĐÀ-Ỹ])")


@dataclass
class Clause:
    kind: str  # sub_plan, report, consolidation
    text: str
    line: int
    timing: Timing | None
    to: str | None = None
    via: str | None = None
    by: str | None = None  # consolidation: who gathers ("Giao Công an huyện …")
    on_behalf_of: str | None = None
    combined_with: str | None = None
    routed_like: str | None = None  # a sub-plan routed like the report beside it


def sentences(text: str) -> list[str]:
    return [s.strip() for s in _SENTENCE.split(text) if s.strip()]


def _route(sentence: str) -> tuple[str | None, str | None]:
    for pattern in (ROUTE, SEND):
        for match in pattern.finditer(sentence):
            before = sentence[max(0, match.start() - 12) : match.start()]
            if re.search(r"với\s*$", before):  # "lồng ghép với báo cáo …" is not a route
                continue
            return match["to"].strip(), (match["via"] or match["via2"] or "").strip() or None
    return None, None


def read_clause(sentence: str, line: int) -> Clause | None:
    """One sentence → a sub-plan, report or consolidation clause, or None."""
    lowered = sentence.lower()
    if _SUB_PLAN.search(sentence) and "báo cáo" not in lowered:
        return Clause("sub_plan", sentence, line, deadline_of(sentence))
    sends = _SENDS.search(sentence)
    if "báo cáo" not in lowered and not sends:
        return None
    timing = deadline_of(sentence)
    to, via = _route(sentence)
    if timing is None and to is None:
        return None
    combined = _COMBINED.search(sentence)
    gathers = lowered.find("tổng hợp")
    reports = lowered.find("báo cáo") if "báo cáo" in lowered else (sends.start() if sends else -1)
    if 0 <= gathers < reports:
        behalf = _ON_BEHALF.search(sentence)
        return Clause(
            "consolidation",
            sentence,
            line,
            timing,
            to,
            via,
            by=lead_name(sentence),
            on_behalf_of=behalf["who"].strip() if behalf else None,
            combined_with=combined["what"].strip() if combined else None,
        )
    return Clause(
        "report",
        sentence,
        line,
        timing,
        to,
        via,
        combined_with=combined["what"].strip() if combined else None,
    )
