"""Party bodies (cơ quan của Đảng) and the layout of their documents.

A Party committee (Tỉnh ủy, Huyện ủy, Đảng ủy xã), a board of a committee (Ban Tuyên
giáo, Ban Dân vận, Ủy ban Kiểm tra) or its office (Văn phòng Huyện ủy) issues documents
in the layout of Hướng dẫn 36-HD/VPTW, not that of Nghị định 30/2020/NĐ-CP: the title
"ĐẢNG CỘNG SẢN VIỆT NAM" on the right with a rule under it and no quốc hiệu or tiêu
ngữ; on the left the body above (ĐẢNG BỘ TỈNH …, HUYỆN ỦY …), the issuing body and a
"*" under it; the number written "Số 12-BC/HU" (number, hyphen, type, slash, body);
authority lines "T/M", "K/T", "T/L".

The registry says which units are Party bodies by their ``kind``: any kind starting
with ``party-`` (``party-committee``, ``party-board``, ``party-office``). A unit whose
name reads as a Party body but whose kind does not is refused (:func:`kind_problem`):
its report would otherwise be headed as a state document, wrong and plausible.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Protocol


class Kinded(Protocol):
    """What :func:`is_party` reads of a unit (engine.schema.Unit, not imported: the schema
    imports this module for its help text)."""

    @property
    def kind(self) -> str: ...


PARTY_PREFIX = "party-"
KIND_HELP = (  # the registry's ``kind`` (engine.schema.Unit)
    "e.g. people-committee, police, department, commune-committee. A kind starting with "
    "'party-' (party-committee: Tỉnh ủy, Huyện ủy, Đảng ủy xã; party-board: Ban Tuyên giáo, "
    "Ủy ban Kiểm tra; party-office: Văn phòng Huyện ủy) is a Party body: its reports are "
    "laid out as Hướng dẫn 36-HD/VPTW says (ĐẢNG CỘNG SẢN VIỆT NAM, 'Số 12-BC/HU', T/M); a "
    "unit named as a Party body with another kind is refused."
)
PARTY_TITLE = "ĐẢNG CỘNG SẢN VIỆT NAM"
STAR = "*"
# The signer's authority lines as Party documents write them (YAML keeps TM., KT., TL.).
AUTHORITY = {"TM.": "T/M", "KT.": "K/T", "TL.": "T/L"}
# After "T/M" a Party committee names its collective leadership, not its own name.
LEADERSHIP = ("BAN THƯỜNG VỤ", "BAN CHẤP HÀNH", "THƯỜNG TRỰC", "ĐẢNG ĐOÀN", "BAN CÁN SỰ")

# "Tỉnh ủy", "Huyện ủy", "Thành ủy", "Quận ủy", "Thị ủy", "Đảng ủy" (either accent place),
# "Chi bộ", "Đảng bộ", "Ban Chấp hành Trung ương": names only a Party body carries.
_PARTY_NAME = re.compile(
    r"\b(?:(?:tỉnh|huyện|thành|quận|thị|đảng)\s+(?:ủy|uỷ)|chi\s+bộ|đảng\s+bộ"
    r"|ban\s+chấp\s+hành\s+trung\s+ương)\b",
    re.IGNORECASE,
)


def is_party(unit: Kinded | None) -> bool:
    """Whether ``unit`` is a Party body (its kind starts with ``party-``)."""
    return unit is not None and unit.kind.startswith(PARTY_PREFIX)


def reads_as_party(name: str) -> bool:
    """Whether a unit's name is that of a Party body ('Ban Tuyên giáo Huyện ủy Hạ Lang')."""
    return bool(_PARTY_NAME.search(unicodedata.normalize("NFC", name)))


def kind_problem(name: str, kind: str) -> str | None:
    """The refusal when ``name`` reads as a Party body's and ``kind`` is not a Party kind."""
    if kind.startswith(PARTY_PREFIX) or not reads_as_party(name):
        return None
    return (
        f"'{name}' là tên một cơ quan của Đảng nhưng kind là '{kind}': văn bản của cơ quan "
        "Đảng trình bày theo Hướng dẫn 36-HD/VPTW (tiêu đề 'ĐẢNG CỘNG SẢN VIỆT NAM'), không "
        "theo Nghị định 30; ghi kind: party-committee (cấp ủy), party-board (ban, ủy ban kiểm "
        "tra của cấp ủy) hoặc party-office (văn phòng cấp ủy)"
    )


# A committee's name -> the Party organisation it leads: 'Tỉnh ủy Cao Bằng' -> 'Đảng bộ
# tỉnh Cao Bằng' (Hướng dẫn 36 prints it above a committee of the level below).
_COMMITTEE = re.compile(r"^(tỉnh|huyện|thành|quận|thị|đảng)\s+(?:ủy|uỷ)\s+(\S.*)$", re.IGNORECASE)
_LEVEL = {
    "tỉnh": "tỉnh ",
    "huyện": "huyện ",
    "thành": "thành phố ",
    "quận": "quận ",
    "thị": "thị xã ",
}


def organisation(committee: str) -> str | None:
    """'Đảng bộ tỉnh Cao Bằng' for 'Tỉnh ủy Cao Bằng', 'Đảng bộ xã X' for 'Đảng ủy xã X';
    None for a name that is not a committee's."""
    found = _COMMITTEE.match(" ".join(unicodedata.normalize("NFC", committee).split()))
    if found is None:
        return None
    level, rest = found.group(1).lower(), found.group(2)
    return f"Đảng bộ {_LEVEL.get(level, '')}{rest}"


def authority_line(line: str) -> str:
    """'TM. BAN THƯỜNG VỤ' -> 'T/M BAN THƯỜNG VỤ' (other lines as they are)."""
    head, _, rest = " ".join(line.split()).partition(" ")
    party = AUTHORITY.get(head.upper())
    return f"{party} {rest}".strip() if party else line


def names_leadership(text: str) -> bool:
    """Whether the text after 'TM.' names a Party committee's collective leadership."""
    return " ".join(text.upper().split()).startswith(LEADERSHIP)


def number_symbol(type_code: str, code: str | None) -> str:
    """'BC/HU': the part after the number of 'Số 12-BC/HU' ('BC' without a code)."""
    return f"{type_code}/{code}" if code else type_code


def header_name(issuer: str, parent_body: str | None) -> str:
    """The issuer as the header prints it under its parent: 'Ban Tuyên giáo' under
    'Huyện ủy Hạ Lang' for 'Ban Tuyên giáo Huyện ủy Hạ Lang' (the parent's name, where
    the issuer's name repeats it, is printed once, above)."""
    if not parent_body:
        return issuer
    pattern = re.compile(r"\s+" + re.escape(" ".join(parent_body.split())) + r"\b", re.IGNORECASE)
    shorter = pattern.sub("", " ".join(issuer.split())).strip()
    return shorter or issuer
