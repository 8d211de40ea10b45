"""Viet Nam's public holidays (names in Vietnamese), from a table made by the
``holidays`` package, so that a process need not import the package.

Importing ``holidays`` loads the module of every country it knows (about 250): a
quarter of the time of `kehoach validate`. ``vn_holidays.json`` holds what
``holidays.country_holidays("VN", language="vi")`` gives for every year the checks
allow (engine.checks.YEARS), with the version of the package that made it. A year's
:func:`table` is read from it while the installed package has that version, and is
None otherwise (another version may know of a new holiday) or for a year outside it:
the caller then asks the package (engine.calendar.WorkCalendar).

After upgrading ``holidays``, regenerate it: ``scripts/regen-vn-holidays``.
"""

from __future__ import annotations

import datetime as dt
import importlib.util
import json
from functools import cache
from pathlib import Path
from typing import Any

TABLE = Path(__file__).with_name("vn_holidays.json")
PACKAGE = "holidays"


def installed_version() -> str | None:
    """The version of the installed ``holidays``, from the name of its
    ``holidays-<version>.dist-info`` folder beside it, without importing it
    (importlib.metadata parses the package's whole METADATA file: slower); None when
    there is no such folder."""
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        return None
    folder = Path(spec.submodule_search_locations[0]).parent
    found = [p.name for p in folder.glob(f"{PACKAGE}-*.dist-info")]
    if len(found) != 1:
        return None
    return found[0].removeprefix(f"{PACKAGE}-").removesuffix(".dist-info")


@cache
def _years() -> dict[str, dict[str, str]]:
    """Each year of the table ("2026") -> its holidays ("01-01" -> name); empty when the
    table was made by another version of the package than the installed one, or
    cannot be read."""
    try:
        data = json.loads(TABLE.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    if data.get("holidays_version") != installed_version():
        return {}
    years: dict[str, dict[str, str]] = data["years"]
    return years


@cache
def table(year: int) -> dict[dt.date, str] | None:
    """The holidays of ``year`` (day -> name), or None when the table cannot answer."""
    days = _years().get(str(year))
    if days is None:
        return None
    return {dt.date.fromisoformat(f"{year:04d}-{md}"): name for md, name in days.items()}


def from_package(first_year: int, last_year: int) -> dict[str, Any]:
    """The table's content, computed by the installed ``holidays`` package."""
    import holidays

    found = holidays.country_holidays("VN", language="vi", years=range(first_year, last_year + 1))
    years: dict[str, dict[str, str]] = {str(y): {} for y in range(first_year, last_year + 1)}
    for day, name in sorted(found.items()):
        years[str(day.year)][day.strftime("%m-%d")] = str(name)
    return {"holidays_version": holidays.__version__, "years": years}
