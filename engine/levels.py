"""Administrative levels (cấp) of the registry's units, and the rule that ties them to
the hierarchy: a unit's parent is at its level or above (a department of the province
under the provincial People's Committee, a commune under a district or, since 1/7/2025,
under the province), never below it. ``none`` is a unit with no level of its own
(a party or mass organisation's office): the rule does not apply to it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, Literal

from engine.errors import Location, Problem

Level = Literal["central", "province", "district", "commune", "none"]
LEVEL_HELP = (
    "Administrative level (cấp). A unit's parent must be at its level or above: a commune "
    "under a district or the province, never a province under a district (checked by "
    "`kehoach validate`, and in change sets). 'none' (party and mass organisations' "
    "offices) is not checked."
)

# Higher rank = higher level.
RANK = {"central": 4, "province": 3, "district": 2, "commune": 1}
WORDS = {
    "central": "cấp trung ương",
    "province": "cấp tỉnh",
    "district": "cấp huyện",
    "commune": "cấp xã",
    "none": "không ghi cấp",
}


def parent_below(unit_level: str, parent_level: str) -> bool:
    """Whether a parent of ``parent_level`` is below a unit of ``unit_level``."""
    if unit_level not in RANK or parent_level not in RANK:
        return False
    return RANK[parent_level] < RANK[unit_level]


def parent_below_message(
    unit_name: str, unit_level: str, parent_name: str, parent_level: str
) -> str:
    """Why a parent below its unit is refused, and what to do."""
    return (
        f"{unit_name} ({WORDS[unit_level]}) không thể trực thuộc {parent_name} "
        f"({WORDS[parent_level]}): cấp trên phải cùng cấp hoặc cao hơn; sửa 'level' của "
        "một trong hai đơn vị hoặc 'parent'"
    )


def level_problems(
    where: Callable[..., Location], index: int, unit: Any, by_id: dict[str, Any]
) -> Iterator[Problem]:
    """``units[index]`` of a registry, when its parent's level is below its own."""
    parent = by_id.get(unit.parent)
    if parent is not None and parent_below(unit.level, parent.level):
        yield Problem(
            where(("units", index, "level")),
            f"units[{index}].level: "
            + parent_below_message(unit.name, unit.level, parent.name, parent.level),
            "level",
        )
