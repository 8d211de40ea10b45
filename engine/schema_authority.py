"""Who signs and whom a report is for, as the YAML states it (engine.schema).

A signer block (Nghị định 30/2020/NĐ-CP, Điều 13 and Phụ lục I) is a chain of
authority lines above the signer's title and name:

    TM. ỦY BAN NHÂN DÂN      chain[0]  (thay mặt: a collective body)
    KT. CHỦ TỊCH             chain[1]  (ký thay: a deputy for the head)
    PHÓ CHỦ TỊCH             title
    Nguyễn Văn A             name

The rules the chain must follow are checked in ``engine.authority``.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from engine.schema_base import Model, Slug

AuthorityPrefix = Literal["TM.", "KT.", "Q.", "TL.", "TUQ."]


class Signer(Model):
    """The signer block: authority lines (``chain``), then the title and the name.

    The one-line form of earlier plans (``authority`` + ``on_behalf_of``: 'TM.' +
    'ỦY BAN NHÂN DÂN') is the same as a chain of one line; write one form, not both.
    """

    name: str | None = Field(
        None, description="The signer's name; blank: '(Ký, ghi rõ họ tên)' is printed."
    )
    title: str = Field(
        description="The signer's own title: CHỦ TỊCH, PHÓ CHỦ TỊCH, GIÁM ĐỐC, 'Q. GIÁM ĐỐC'."
    )
    chain: list[str] = Field(
        default_factory=list,
        max_length=4,
        description="Authority lines above the title, top to bottom, each a prefix (TM., "
        "KT., TL., TUQ.) and what it stands before: ['TM. ỦY BAN NHÂN DÂN', 'KT. CHỦ TỊCH'].",
    )
    authority: AuthorityPrefix | None = Field(
        None, description="One-line form: the prefix of the single authority line."
    )
    on_behalf_of: str | None = Field(
        None,
        description="One-line form: what follows the prefix, e.g. ỦY BAN NHÂN DÂN after 'TM.'.",
    )

    def lines(self) -> list[str]:
        """The authority lines as printed, top to bottom (either form)."""
        if self.chain:
            return [" ".join(line.split()) for line in self.chain]
        if self.authority and self.on_behalf_of:
            return [f"{self.authority} {' '.join(self.on_behalf_of.split()).upper()}"]
        return [self.authority] if self.authority else []


class Routing(Model):
    """Whom a report is for and the channel it goes through."""

    to: Slug = Field(description="Registry id of the body the report is for.")
    via: Slug | None = Field(None, description="Registry id of the channel unit (qua ...).")
    person: str | None = Field(
        None,
        min_length=1,
        max_length=120,
        description="The office holder of 'to' the report is addressed to, as written: "
        "'Chủ tịch UBND tỉnh', 'Bộ trưởng' (báo cáo Bộ trưởng qua Vụ Kế hoạch - Tài chính).",
    )
