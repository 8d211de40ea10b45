"""Units that ended: the plain data activation, the sweep, authority and the CLI share.

Which assigned units a duty found ended (:class:`Ended`), the Vietnamese lines that say
who took over from whom or whose work is held (:func:`ended_notes`), the CLI's refusal
when work is left with nobody (:func:`refuse_if_held`), and how an heir is named
(:func:`heir_label`). Reads only the registry view; moving obligations and the heir's
email are engine.successors.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field

from engine.errors import KehoachError
from engine.registry import RegistryView
from engine.vntext import brief_name, short_date

# Exit code of a command that would leave work with nobody (CLI; documented in README).
EXIT_HELD = 5


class WorkHeld(KehoachError):
    """Work of a unit that ended would be left with nobody (no successor recorded)."""

    exit_code = EXIT_HELD


@dataclass
class Ended:
    """An assigned unit no longer valid when one of its duties falls due."""

    first_day: dt.date  # the first deadline it misses
    heirs: list[str]
    deliverables: set[str] = field(default_factory=set)


def note_ended(
    ended: dict[str, Ended], unit_id: str, day: dt.date, heirs: list[str], deliverable_id: str
) -> None:
    found = ended.setdefault(unit_id, Ended(day, list(heirs)))
    found.first_day = min(found.first_day, day)
    found.heirs += [h for h in heirs if h not in found.heirs]
    found.deliverables.add(deliverable_id)


def held_units(ended: dict[str, Ended]) -> list[str]:
    return sorted(unit_id for unit_id, e in ended.items() if not e.heirs)


def _name(view: RegistryView, unit_id: str) -> str:
    unit = view.unit(unit_id)
    return unit.name if unit is not None else unit_id


def _since(view: RegistryView, unit_id: str) -> str:
    unit = view.unit(unit_id)
    if unit is None or unit.valid_to is None:
        return "không có trong danh bạ"
    return f"không còn từ {short_date(unit.valid_to + dt.timedelta(days=1))}"


def ended_notes(view: RegistryView, ended: dict[str, Ended]) -> list[str]:
    """One Vietnamese line per heir (who took over from whom) and one for the units whose
    work is held because the registry names no successor."""
    by_heirs: dict[tuple[str, ...], list[str]] = {}
    for unit_id, info in ended.items():
        by_heirs.setdefault(tuple(info.heirs), []).append(unit_id)
    lines = []
    for heirs, units in sorted(by_heirs.items(), key=lambda kv: (not kv[0], kv[0])):
        names = "; ".join(f"{_name(view, u)} ({_since(view, u)})" for u in sorted(units))
        if heirs:
            lines.append(f"việc chuyển cho {', '.join(_name(view, h) for h in heirs)}: {names}")
        else:
            lines.append(
                f"{len(units)} đơn vị đã không còn mà danh bạ chưa nêu đơn vị kế thừa — việc "
                f"của họ được giữ lại chờ quản trị (không tạo nghĩa vụ, không gửi email): "
                f"{names}. Ghi đơn vị kế thừa bằng `kehoach registry apply TỆP`, rồi kích "
                "hoạt lại kế hoạch"
            )
    return lines


def refuse_if_held(held: Sequence[str], what: str) -> None:
    """The CLI's exit: work left with nobody is an error the administrator must act on."""
    if held:
        raise WorkHeld(
            f"{what}: việc của {len(held)} đơn vị đã không còn không có ai nhận (xem dòng "
            "lưu ý ở trên); mã thoát khác 0"
        )


def heir_label(view: RegistryView, heir_id: str, old_id: str, day: dt.date) -> str:
    """'Ủy ban nhân dân xã Hạ Lang (kế thừa UBND huyện Hạ Lang)'."""
    heir, old = view.unit_on(heir_id, day), view.unit_on(old_id, day)
    heir_name = heir.name if heir is not None else heir_id
    return f"{heir_name} (kế thừa {brief_name(old.name) if old is not None else old_id})"
