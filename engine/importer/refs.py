"""Documents cited in a plan: "Kế hoạch số 2720/KH-UBND ngày 21/10/2022 của Ủy ban nhân dân
tỉnh Cao Bằng về …", in the state, legal and Party forms of Nghị định 30/2020."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field

# The codes of engine.schema.DocumentType (tests/test_import_seed.py checks they are the
# same; the schema is not imported here, it costs the command most of its time).
SCHEMA_TYPES = frozenset(
    {
        "KH",
        "BC",
        "QĐ",
        "CT",
        "KL",
        "NQ",
        "NĐ",
        "TB",
        "HD",
        "CTr",
        "TTr",
        "QyĐ",
        "ĐA",
        "PA",
        "CV",
        "Luật",
    }
)

# The type as written → the code plans use.
TYPE_WORDS: dict[str, str] = {
    "kế hoạch": "KH",
    "quyết định": "QĐ",
    "chỉ thị": "CT",
    "kết luận": "KL",
    "nghị quyết": "NQ",
    "nghị định": "NĐ",
    "thông báo": "TB",
    "hướng dẫn": "HD",
    "chương trình": "CTr",
    "tờ trình": "TTr",
    "quy định": "QyĐ",
    "đề án": "ĐA",
    "phương án": "PA",
    "công văn": "CV",
    "văn bản": "CV",
    "báo cáo": "BC",
    "luật": "Luật",
    "thông tư": "TT",  # not a DocumentType yet: the draft marks it
}
_TYPES = "|".join(sorted((re.escape(w) for w in TYPE_WORDS), key=len, reverse=True))
_SYMBOL = r"[A-ZĐ][A-Za-zĐđ0-9&]*(?:[-.][A-Za-zĐđ0-9&]+)*"
# 2720/KH-UBND · 136/2020/NĐ-CP · 99/2019/QH14 · 02-KL/TW · 47 CT/TW (a broken dash)
NUMBER = (
    rf"\d{{1,5}}\s?/\s?\d{{4}}\s?/\s?{_SYMBOL}"
    rf"|\d{{1,5}}\s?/\s?{_SYMBOL}(?:/{_SYMBOL})?"
    rf"|\d{{1,5}}\s?[-–\s]\s?{_SYMBOL}/{_SYMBOL}"
)
_DATE = r"(?:,?\s*ngày\s+(?P<d>\d{1,2})\s*/\s*(?P<m>\d{1,2})\s*/\s*(?P<y>\d{4})|,?\s*ngày\s+(?P<d2>\d{1,2})\s+tháng\s+(?P<m2>\d{1,2})\s+năm\s+(?P<y2>\d{4}))"
REF = re.compile(
    rf"(?P<type>{_TYPES})\s+(?:(?:liên tịch\s+)?số\s*:?\s*)?(?P<number>{NUMBER})(?:{_DATE})?",
    re.IGNORECASE,
)
TITLED = re.compile(r"(?P<type>Đề án|Chương trình|Phương án)\s+“(?P<title>[^”]{5,300})”")
_ISSUER = re.compile(
    r"^\s*,?\s*của\s+(?P<issuer>.+?)(?=\s+(?:về|ban hành|và|trên|tại|thực hiện|quy định|hướng dẫn)(?:\s|$)|\s*[(),;.:]|$)"
)
_JOINED = re.compile(r"^(?:\s*,?\s*của\s+[^,;()]+?)?\s*(?:,|và|;)\s*$")
_TITLE = re.compile(r"^\s*(?:về\s+|ban hành\s+|quy định\s+)(?P<title>.+?)(?=\s*\(|;|\.\s|\.$|$)")


@dataclass
class Ref:
    type: str
    number: str | None
    date: dt.date | None
    issuer: str | None
    title: str | None
    start: int
    end: int
    implements: list[str] = field(default_factory=list)  # numbers of refs in its title

    @property
    def key(self) -> str:
        return self.number or f"{self.type}:{self.title}"


def normal_number(raw: str) -> str:
    """'1492/ QĐ-TTg' → '1492/QĐ-TTg'; '47 CT/TW' → '47-CT/TW' (the Party form has a dash)."""
    text = re.sub(r"\s*/\s*", "/", raw.strip())
    text = re.sub(r"^(\d+)\s*[–\s]\s*", r"\1-", text) if re.match(r"^\d+\s*[–\s]", text) else text
    return text.replace("–", "-")


def _date(match: re.Match[str]) -> dt.date | None:
    day, month, year = (
        match.group("d") or match.group("d2"),
        match.group("m") or match.group("m2"),
        match.group("y") or match.group("y2"),
    )
    if not day:
        return None
    try:
        return dt.date(int(year), int(month), int(day))
    except ValueError:
        return None


def find_refs(text: str) -> list[Ref]:
    """Every document cited in ``text``, in order, with what follows it (issuer, title)."""
    found: list[Ref] = []
    for match in REF.finditer(text):
        word = match.group("type").lower()
        rest = text[match.end() :]
        issuer = None
        title = None
        issued = _ISSUER.match(rest)
        offset = 0
        if issued:
            issuer = issued.group("issuer").strip()
            offset = issued.end()
        titled = _TITLE.match(rest[offset:])
        if titled:
            title = titled.group("title").strip()
        found.append(
            Ref(
                type=TYPE_WORDS[word],
                number=normal_number(match.group("number")),
                date=_date(match),
                issuer=issuer,
                title=title,
                start=match.start(),
                end=match.end(),
            )
        )
    for match in TITLED.finditer(text):
        if any(r.start <= match.start() < r.end for r in found):
            continue
        found.append(
            Ref(
                TYPE_WORDS[match.group("type").lower()],
                None,
                None,
                None,
                match.group("title").strip(),
                match.start(),
                match.end(),
            )
        )
    found.sort(key=lambda r: r.start)
    for ref in found:
        if ref.title:
            ref.implements = [n for n in _top_level(ref.title) if n != ref.number]
    return found


def find_refs_in_title(title: str) -> list[Ref]:
    """The documents a title names ("về thực hiện Kết luận số 02-KL/TW …")."""
    return [
        Ref(
            TYPE_WORDS[m.group("type").lower()],
            normal_number(m.group("number")),
            _date(m),
            None,
            None,
            m.start(),
            m.end(),
        )
        for m in REF.finditer(title)
    ]


def _top_level(title: str) -> list[str]:
    """The numbers a title names at its own level: "thực hiện A của X và B" names A and B;
    "thực hiện A về thực hiện C" names A only (C is what A implements)."""
    inner = find_refs_in_title(title)
    chosen: list[str] = []
    for index, ref in enumerate(inner):
        if ref.number is None:
            continue
        if index == 0 or _JOINED.match(title[inner[index - 1].end : ref.start]):
            if ref.number not in chosen:
                chosen.append(ref.number)
        else:
            break
    return chosen
