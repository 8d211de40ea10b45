"""The head of a plan: issuing and parent body, Số/ký hiệu, place and date, type, trích yếu.

ỦY BAN NHÂN DÂN            CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM
TỈNH CAO BẰNG                  Độc lập - Tự do - Hạnh phúc
Số: 134 /KH-UBND            Cao Bằng, ngày 15 tháng 8 năm 2025
                    KẾ HOẠCH
        Triển khai … (trích yếu)
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field

from engine.importer.normalise import Paragraph, is_caps
from engine.importer.refs import TYPE_WORDS

_MOTTO = re.compile(
    r"CỘNG\s*HÒA\s*XÃ\s*HỘI\s*CHỦ\s*NGHĨA(?:\s*VIỆT\s*NAM)?|^VIỆT\s*NAM$|Độc\s*lập\s*[-–]\s*Tự\s*do\s*[-–]\s*Hạnh\s*phúc"
    r"|ĐẢNG\s+CỘNG\s+SẢN\s+VIỆT\s+NAM|[_=\-–]{3,}|\*{3,}",
    re.IGNORECASE,
)
_NUMBER = re.compile(
    r"Số\s*:?\s*(?P<n>\d*)\s*(?P<sep>[/-])\s*(?P<sym>[A-ZĐa-zđ][A-Za-zĐđ0-9\-/.&]*)"
)
_PLACE_DATE = re.compile(
    r"(?P<place>[A-ZĐÀ-Ỹ][^,\d]{1,40}),\s*ngày\s*(?P<d>\d{1,2}|[.…]*)\s*tháng\s*(?P<m>\d{1,2}|[.…]*)\s*năm\s+(?P<y>\d{4})"
)
_TYPE_LINE = re.compile(
    r"^(?P<type>"
    + "|".join(sorted((w.upper() for w in TYPE_WORDS), key=len, reverse=True))
    + r")\b\s*(?P<rest>.*)$"
)
# A first line that names only the kind of body: the place is on the next line
# ("ỦY BAN NHÂN DÂN" / "HUYỆN HẠ LANG" is one name, not a parent and a child).
_KIND_ONLY = re.compile(r"^(?:ỦY BAN NHÂN DÂN|UỶ BAN NHÂN DÂN|HỘI ĐỒNG NHÂN DÂN|UBND|HĐND)$")
_PLACE_LINE = re.compile(r"^(?:TỈNH|HUYỆN|XÃ|PHƯỜNG|THÀNH PHỐ|THỊ XÃ|THỊ TRẤN|QUẬN|TP\.)\s")
_BASIS_START = re.compile(r"^(?:Căn cứ|Thực hiện|[IVX]+\s*[.\-–])")
_BODY_START = re.compile(r"^(?:Căn cứ|Thực hiện|Triển khai|Nhằm|Để|[IVX]+\s*[.\-–])")


@dataclass
class Header:
    type: str | None = None
    number: str | None = None
    number_blank: bool = False  # "Số:     /KH-SCT" of a draft
    symbol: str | None = None
    date: dt.date | None = None
    date_blank: bool = False
    place: str | None = None
    issuer: str | None = None
    parent_body: str | None = None
    summary: str | None = None
    lines: dict[str, int] = field(default_factory=dict)
    end: int = 0  # index of the first paragraph after the head


_KEEP = {"UBND", "HĐND", "MTTQ", "BQL", "KCN", "CCN", "TP.", "TW", "PCCC", "CNCH"}
_PLACE_WORD = {"tỉnh", "huyện", "xã", "phường", "thị", "trấn", "thành", "phố", "quận"}


def sentence_case(text: str) -> str:
    """'ỦY BAN NHÂN DÂN HUYỆN HẠ LANG' → 'Ủy ban nhân dân huyện Hạ Lang': a name printed
    in capitals, with the place's name and the first word after Sở/Bộ capitalised."""
    if not is_caps(text):
        return text
    words: list[str] = []
    proper = False
    for index, word in enumerate(text.split()):
        lower = word.lower()
        if word in _KEEP:
            words.append(word)
            continue
        capital = index == 0 or proper or (index == 1 and words[0] in {"Sở", "Bộ", "Cục", "Vụ"})
        if lower in _PLACE_WORD and index > 0:
            capital = False
            proper = lower not in {"thị", "thành"}
        words.append(lower[:1].upper() + lower[1:] if capital else lower)
    return " ".join(words)


def read_header(paragraphs: list[Paragraph]) -> Header:
    head = Header()
    bodies: list[Paragraph] = []
    for index, para in enumerate(paragraphs):
        text = _MOTTO.sub(" ", para.text).strip()
        numbered = _NUMBER.search(text)
        if numbered and head.symbol is None and index < 12:
            head.symbol = numbered["sym"].rstrip(".")
            head.number_blank = not numbered["n"]
            if numbered["n"]:
                head.number = f"{numbered['n']}{numbered['sep']}{head.symbol}"
            head.lines["number"] = para.first_line
            text = (text[: numbered.start()] + " " + text[numbered.end() :]).strip()
            para.used = True
        dated = _PLACE_DATE.search(text)
        if dated and head.place is None and index < 14:
            head.place = dated["place"].strip()
            if dated["d"].strip(" .…") and dated["m"].strip(" .…"):
                try:
                    head.date = dt.date(int(dated["y"]), int(dated["m"]), int(dated["d"]))
                except ValueError:
                    head.date = None
            else:
                head.date_blank = True
            head.lines["date"] = para.first_line
            text = (text[: dated.start()] + " " + text[dated.end() :]).strip()
            para.used = True
        typed = _TYPE_LINE.match(text) if is_caps(text.split(" ")[0] + " x".upper()) else None
        if typed and (is_caps(text) or not typed["rest"] or not is_caps(typed["rest"])):
            head.type = TYPE_WORDS[typed["type"].lower()]
            head.lines["type"] = para.first_line
            para.used = True
            rest = typed["rest"].strip()
            summary_parts = [rest] if rest else []
            end = index + 1
            while end < len(paragraphs) and not summary_parts:
                candidate = paragraphs[end]
                if _BASIS_START.match(candidate.text) or candidate.is_table_row:
                    break
                summary_parts.append(candidate.text)
                candidate.used = True
                head.lines["summary"] = candidate.first_line
                end += 1
            # A trích yếu a PDF broke over lines that start in capitals ("Chính phủ …").
            while (
                end < len(paragraphs)
                and summary_parts
                and not _BODY_START.match(paragraphs[end].text)
                and not paragraphs[end].is_table_row
                and not summary_parts[-1].endswith((".", ":"))
                and len(paragraphs[end].text) < 160
                and not re.match(r"^(?:\d+\.|[a-z]\)|[-+])", paragraphs[end].text)
            ):
                summary_parts.append(paragraphs[end].text)
                paragraphs[end].used = True
                end += 1
            head.summary = " ".join(summary_parts).strip(" -–") or None
            head.end = end
            break
        if text and is_caps(text) and index < 10:
            para.used = True
            bodies.append(Paragraph(text, para.first_line, para.last_line))
    _bodies(head, bodies)
    return head


def _bodies(head: Header, bodies: list[Paragraph]) -> None:
    names = [b.text for b in bodies]
    if not names:
        return
    merged: list[str] = []
    for name in names:
        if merged and (_KIND_ONLY.match(merged[-1]) or _PLACE_LINE.match(name)):
            merged[-1] = f"{merged[-1]} {name}"
        else:
            merged.append(name)
    head.issuer = sentence_case(merged[-1])
    head.lines["issuer"] = bodies[-1].first_line
    if len(merged) > 1:
        head.parent_body = sentence_case(merged[-2])
        head.lines["parent_body"] = bodies[0].first_line
