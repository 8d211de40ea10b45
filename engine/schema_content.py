"""Parts of a plan that assign no task, kept as content: giải pháp, kinh phí, phụ lục.

``sections`` hold them as written (a heading, paragraphs, items and, for kinh phí, the
amounts with their source of funds); `kehoach show`, the portal and the email and
document templates (``plan.sections``) show them. Nothing here creates an obligation.
Re-exported by ``engine.schema``.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Literal

from pydantic import Field, model_validator

from engine.schema_base import Model, Slug

SECTION_ROLE_VI = {
    "solutions": "giải pháp",
    "funding": "kinh phí",
    "appendix": "phụ lục",
    "other": "nội dung khác",
}
MONEY_UNIT_VI = {"dong": "đồng", "million": "triệu đồng", "billion": "tỷ đồng"}


class Amount(Model):
    """One amount of a kinh phí section."""

    label: str = Field(description="What it pays for, as written.")
    amount: Decimal = Field(ge=0, max_digits=18, decimal_places=3)
    unit: Literal["dong", "million", "billion"] = Field(
        "dong", description="dong = đồng; million = triệu đồng; billion = tỷ đồng."
    )
    source: str | None = Field(None, description="Nguồn kinh phí, e.g. 'ngân sách tỉnh'.")


class ContentSection(Model):
    """A section of the plan kept as its text: it assigns nothing."""

    id: Slug
    section: str | None = Field(None, description="Where it stands, e.g. 'IV' or 'Phụ lục II'.")
    title: str = Field(description="The heading as written, e.g. 'Kinh phí thực hiện'.")
    role: Literal["solutions", "funding", "appendix", "other"] = Field(
        description="solutions = giải pháp; funding = kinh phí; appendix = phụ lục; other."
    )
    text: str | None = None
    items: list[str] = Field(default_factory=list, description="Its points, in order.")
    amounts: list[Amount] = Field(
        default_factory=list, description="Kinh phí: the amounts (role: funding only)."
    )

    @model_validator(mode="after")
    def _has_content(self) -> ContentSection:
        if not (self.text or self.items or self.amounts):
            raise ValueError("mục nội dung cần 'text', 'items' hoặc 'amounts'; thêm nội dung")
        if self.amounts and self.role != "funding":
            raise ValueError(
                f"'amounts' chỉ dùng cho mục kinh phí (role: funding), không phải "
                f"'{self.role}'; đổi 'role' hoặc chuyển số tiền vào 'text'"
            )
        return self
