"""A plan's content sections (giải pháp, kinh phí, phụ lục) as templates and `show` read
them: the same dicts for the email context, the portal and the terminal."""

from __future__ import annotations

import textwrap
from decimal import Decimal
from typing import Any

from engine.schema import Plan
from engine.schema_content import MONEY_UNIT_VI, SECTION_ROLE_VI, Amount


def money(value: Decimal) -> str:
    """Vietnamese figures: 1.250.000 and 2,5 (dots between thousands, comma decimal)."""
    whole, _, fraction = f"{value.normalize():f}".partition(".")
    grouped = f"{int(whole):,}".replace(",", ".")
    return f"{grouped},{fraction}" if fraction else grouped


def amount_text(amount: Amount) -> str:
    text = f"{amount.label}: {money(amount.amount)} {MONEY_UNIT_VI[amount.unit]}"
    return text + (f" ({amount.source})" if amount.source else "")


def sections_of(plan: Plan) -> list[dict[str, Any]]:
    """Every content section, ready for a template (``plan.sections`` in emails)."""
    return [
        {
            "id": s.id,
            "section": s.section,
            "title": s.title,
            "role": s.role,
            "role_label": SECTION_ROLE_VI[s.role],
            "text": " ".join(s.text.split()) if s.text else None,
            "points": [" ".join(i.split()) for i in s.items],
            "amounts": [amount_text(a) for a in s.amounts],
        }
        for s in plan.sections
    ]


def content_lines(plan: Plan, width: int = 100) -> list[str]:
    """`kehoach show`: each section with its text, items and amounts."""
    lines: list[str] = []
    for s in sections_of(plan):
        lines += [
            "",
            f"{s['section'] + '. ' if s['section'] else ''}{s['title']} ({s['role_label']}):",
        ]
        for paragraph in ([s["text"]] if s["text"] else []) + [f"- {i}" for i in s["points"]]:
            lines.append(
                textwrap.fill(paragraph, width, initial_indent="  ", subsequent_indent="    ")
            )
        lines += [f"  - {a}" for a in s["amounts"]]
    return lines
