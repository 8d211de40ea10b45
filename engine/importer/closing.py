"""The end of a plan: "Trên đây …" (the closing), Nơi nhận and the signer block.

A two-column PDF interleaves Nơi nhận with the signer block ("- Công an tỉnh (B/c); KT.
CHỦ TỊCH"), so signer words are taken off the end of a recipient line first.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from engine.importer.normalise import Paragraph, is_caps

AUTHORITY = re.compile(r"^(?P<auth>TM|KT|TL|TUQ|Q)\.\s*(?P<rest>.+)$")
_TITLES = re.compile(
    r"^(?:PHÓ\s+)?(?:CHỦ TỊCH|GIÁM ĐỐC|TRƯỞNG ĐOÀN|TRƯỞNG BAN|BỘ TRƯỞNG|THỨ TRƯỞNG|CHÁNH VĂN PHÒNG|"
    r"CHÁNH THANH TRA|TRƯỞNG PHÒNG|HIỆU TRƯỞNG|BÍ THƯ|TỔNG CỤC TRƯỞNG|CỤC TRƯỞNG|VỤ TRƯỞNG|TRƯỞNG CÔNG AN)\b"
)
_SIGNER_TAIL = re.compile(
    r"\s+((?:TM|KT|TL|TUQ|Q)\.\s*[A-ZĐÀ-Ỹ .]+|(?:PHÓ\s+)?(?:CHỦ TỊCH|GIÁM ĐỐC|TRƯỞNG ĐOÀN|BỘ TRƯỞNG|THỨ TRƯỞNG))$"
)
_NAME = re.compile(r"^(?:[A-ZĐÀ-Ỹ][a-zđà-ỹ]+\s){1,5}[A-ZĐÀ-Ỹ][a-zđà-ỹ]+$")
_PURPOSE = (
    (re.compile(r"\((?:để\s+)?(?:b/c|bc|báo cáo)\)", re.IGNORECASE), "report"),
    (re.compile(r"\((?:t/h|th/h|thực hiện|để thực hiện|thi hành)\)", re.IGNORECASE), "action"),
    (re.compile(r"\((?:để biết|đ/b|p/h|phối hợp|biết)\)", re.IGNORECASE), "information"),
)


@dataclass
class RecipientLine:
    name: str
    purpose: str | None  # None: the line does not say (action or information, by the units)
    line: int


@dataclass
class SignerBlock:
    chain: list[tuple[str, str]] = field(default_factory=list)  # ("TM.", "ỦY BAN NHÂN DÂN")
    title: str | None = None
    name: str | None = None
    lines: list[int] = field(default_factory=list)


@dataclass
class Closing:
    text: str | None = None
    text_line: int = 0
    recipients: list[RecipientLine] = field(default_factory=list)
    signer: SignerBlock = field(default_factory=SignerBlock)


def read_closing(paragraphs: list[Paragraph]) -> Closing:
    closing = Closing()
    in_recipients = False
    for para in paragraphs:
        text = para.text
        if text.startswith("Trên đây") and closing.text is None:
            closing.text, closing.text_line = text, para.first_line
            para.used = True
            continue
        if text.startswith("Nơi nhận"):
            in_recipients = True
            para.used = True
            text = text.split(":", 1)[1].strip() if ":" in text else ""
            if not text:
                continue
        tail = _SIGNER_TAIL.search(text) if not is_caps(text) else None
        if tail:
            _signer_line(closing.signer, tail.group(1), para.first_line)
            text = text[: tail.start()].strip()
        if in_recipients and (text.startswith(("-", "+", "•")) or text.startswith("Lưu")):
            name = text.lstrip("-+• ").rstrip(" ;.,")
            purpose = "archive" if name.startswith("Lưu") else None
            for pattern, meaning in _PURPOSE:
                if pattern.search(name):
                    purpose = meaning
            closing.recipients.append(RecipientLine(name, purpose, para.first_line))
            para.used = True
            continue
        if _signer_line(closing.signer, text, para.first_line):
            para.used = True
            in_recipients = False
    return closing


def _signer_line(signer: SignerBlock, text: str, line: int) -> bool:
    """Take one line of the signer block; False when it is not one."""
    text = text.strip()
    authority = AUTHORITY.match(text)
    if authority and is_caps(authority["rest"]):
        signer.chain.append((f"{authority['auth']}.", authority["rest"].strip()))
        signer.lines.append(line)
        return True
    if is_caps(text) and _TITLES.match(text):
        signer.title = text
        signer.lines.append(line)
        return True
    if _NAME.match(text) and signer.name is None and (signer.title or signer.chain):
        signer.name = text
        signer.lines.append(line)
        return True
    return False
