"""Administrative levels (cấp) of the registry's units, and the rule that ties them to
the hierarchy: a unit's parent is at its level or above (a department of the province
under the provincial People's Committee, a commune under a district or, since 1/7/2025,
under the province), never below it. ``none`` is a unit with no level of its own
(a party or mass organisation's office): the rule does not apply to it.
"""

from __future__ import annotations

from typing import Literal

Level = Literal["central", "province", "district", "commune", "none"]

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
