"""A draft against a stored plan: what the import read differently, part by part.

Both sides are plain data (the draft's YAML as loaded, the stored plan's
``model_dump(mode="json")``), so a draft that does not validate yet can still be compared.
Each difference names its part: ``basis``, ``assignments``, ``deliverables``,
``consolidations``, ``recipients``; ``detail`` differences (supporting units, roles,
titles) are listed but are not what the import promises.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Difference:
    part: str
    text: str

    def __str__(self) -> str:
        # The parts are the YAML's keys; "detail" is said in words.
        return f"{'chi tiết' if self.part == 'detail' else self.part}: {self.text}"


def _words(text: Any) -> str:
    return " ".join(str(text or "").split())


def _day(value: Any) -> str | None:
    if value is None:
        return None
    return value.isoformat() if isinstance(value, dt.date) else str(value)


def _target(value: Any) -> str:
    if not isinstance(value, dict):
        return str(value)
    return ", ".join(f"{k}={v}" for k, v in sorted(value.items()) if v is not None)


def _rule(rule: Any) -> dict[str, Any]:
    rule = rule or {}
    keys = ("rule", "day", "month", "date", "days", "offset_days", "phrase", "assumed")
    return {
        k: _day(rule.get(k)) if k == "date" else rule.get(k)
        for k in keys
        if rule.get(k) not in (None, False)
    }


def _routing(routing: Any) -> str:
    routing = routing or {}
    return f"{routing.get('to')}" + (f" qua {routing['via']}" if routing.get("via") else "")


def compare(draft: dict[str, Any], stored: dict[str, Any]) -> list[Difference]:
    """Every difference between the draft and the stored plan."""
    found: list[Difference] = []
    found.extend(_basis(draft.get("basis") or [], stored.get("basis") or []))
    found.extend(_assignments(draft.get("assignments") or [], stored.get("assignments") or []))
    found.extend(_deliverables(draft, stored))
    found.extend(_recipients(draft.get("recipients") or [], stored.get("recipients") or []))
    return found


def _basis(draft: list[dict[str, Any]], stored: list[dict[str, Any]]) -> list[Difference]:
    def keyed(items: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
        return {
            str(i.get("number") or f"{i.get('type')}: {_words(i.get('title'))[:40]}"): i
            for i in items
        }

    mine, theirs = keyed(draft), keyed(stored)
    out = [Difference("basis", f"thiếu văn bản {k}") for k in theirs if k not in mine]
    out += [Difference("basis", f"thừa văn bản {k}") for k in mine if k not in theirs]
    for key in theirs.keys() & mine.keys():
        for name in ("type", "date"):
            a, b = _day(mine[key].get(name)), _day(theirs[key].get(name))
            if a != b:
                out.append(Difference("basis", f"{key}: {name} là {a}, kế hoạch lưu ghi {b}"))
        if mine[key].get("role") != theirs[key].get("role"):
            out.append(
                Difference(
                    "detail",
                    f"basis {key}: role {mine[key].get('role')} / {theirs[key].get('role')}",
                )
            )
    return out


def _assignments(draft: list[dict[str, Any]], stored: list[dict[str, Any]]) -> list[Difference]:
    out: list[Difference] = []
    if len(draft) != len(stored):
        out.append(
            Difference("assignments", f"{len(draft)} phần giao việc, kế hoạch lưu có {len(stored)}")
        )
    by_section = {a.get("section"): a for a in draft}
    for theirs in stored:
        label = f"{theirs.get('section')} {theirs.get('heading')}"
        mine = by_section.get(theirs.get("section"))
        if mine is None:
            out.append(Difference("assignments", f"thiếu {label}"))
            continue
        if _words(mine.get("heading")) != _words(theirs.get("heading")):
            out.append(Difference("assignments", f"{label}: tiêu đề “{mine.get('heading')}”"))
        if _target(mine.get("to")) != _target(theirs.get("to")):
            out.append(
                Difference(
                    "assignments",
                    f"{label}: giao cho {_target(mine.get('to'))}, kế hoạch lưu: {_target(theirs.get('to'))}",
                )
            )
        if (mine.get("mode") or "order") != (theirs.get("mode") or "order"):
            out.append(
                Difference(
                    "assignments", f"{label}: mode {mine.get('mode')} / {theirs.get('mode')}"
                )
            )
        tasks_a, tasks_b = mine.get("tasks") or [], theirs.get("tasks") or []
        if len(tasks_a) != len(tasks_b):
            out.append(
                Difference(
                    "assignments",
                    f"{label}: {len(tasks_a)} nhiệm vụ, kế hoạch lưu có {len(tasks_b)}",
                )
            )
        for index, (a, b) in enumerate(zip(tasks_a, tasks_b, strict=False), 1):
            if _words(a.get("text")) != _words(b.get("text")):
                out.append(
                    Difference(
                        "assignments",
                        f"{label}, nhiệm vụ {index}: “{_words(a.get('text'))[:70]}…” khác “{_words(b.get('text'))[:70]}…”",
                    )
                )
            if (a.get("recurrence") or "ongoing") != (b.get("recurrence") or "ongoing"):
                out.append(
                    Difference(
                        "assignments",
                        f"{label}, nhiệm vụ {index}: recurrence {a.get('recurrence')} / {b.get('recurrence')}",
                    )
                )
        mine_support = [_target(s) for s in mine.get("supporting") or []]
        their_support = [_target(s) for s in theirs.get("supporting") or []]
        if mine_support != their_support:
            out.append(
                Difference("detail", f"{label}: supporting {mine_support} / {their_support}")
            )
    return out


def _deliverables(draft: dict[str, Any], stored: dict[str, Any]) -> list[Difference]:
    out: list[Difference] = []
    for part, fields in (
        ("deliverables", ("kind", "frequency")),
        ("consolidations", ("by", "on_behalf_of")),
    ):
        mine, theirs = draft.get(part) or [], stored.get(part) or []
        if len(mine) != len(theirs):
            out.append(Difference(part, f"{len(mine)} mục, kế hoạch lưu có {len(theirs)}"))
        for index, (a, b) in enumerate(zip(mine, theirs, strict=False), 1):
            label = f"mục {index} ({b.get('id')})"
            for name in fields:
                if a.get(name) != b.get(name):
                    out.append(
                        Difference(
                            part,
                            f"{label}: {name} là {a.get(name)}, kế hoạch lưu ghi {b.get(name)}",
                        )
                    )
            if _routing(a.get("routing")) != _routing(b.get("routing")):
                out.append(
                    Difference(
                        part,
                        f"{label}: gửi {_routing(a.get('routing'))}, kế hoạch lưu: {_routing(b.get('routing'))}",
                    )
                )
            if _rule(a.get("deadline")) != _rule(b.get("deadline")):
                out.append(
                    Difference(
                        part,
                        f"{label}: hạn {_rule(a.get('deadline'))}, kế hoạch lưu: {_rule(b.get('deadline'))}",
                    )
                )
            if bool(a.get("combined_with")) != bool(b.get("combined_with")):
                out.append(
                    Difference(
                        part,
                        f"{label}: lồng ghép “{a.get('combined_with')}” / “{b.get('combined_with')}”",
                    )
                )
    return out


def _recipients(draft: list[dict[str, Any]], stored: list[dict[str, Any]]) -> list[Difference]:
    out: list[Difference] = []
    if len(draft) != len(stored):
        out.append(
            Difference("recipients", f"{len(draft)} nơi nhận, kế hoạch lưu có {len(stored)}")
        )
    for a, b in zip(draft, stored, strict=False):
        if _words(a.get("name")) != _words(b.get("name")):
            out.append(Difference("recipients", f"“{a.get('name')}” thay vì “{b.get('name')}”"))
            continue
        if a.get("purpose") != b.get("purpose"):
            out.append(
                Difference(
                    "recipients",
                    f"“{b.get('name')}”: purpose {a.get('purpose')}, kế hoạch lưu: {b.get('purpose')}",
                )
            )
        for name in ("units", "groups"):
            if sorted(a.get(name) or []) != sorted(b.get(name) or []):
                out.append(
                    Difference(
                        "detail",
                        f"nơi nhận “{b.get('name')}”: {name} {a.get(name) or []} / {b.get(name) or []}",
                    )
                )
    return out
