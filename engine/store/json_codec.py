"""How JSON columns are written and read: nothing non-finite is written, and every row
can be read back.

Python's ``json`` refuses to read an integer of more than 4,300 digits (its limit on
int/str conversion), so one such number in a row edited in the database would make the
row, and every page or consolidation that reads it, fail. Such a number is read as its
digits (text); ``engine.values.stored_values`` then reports it as not a number.
Infinity and NaN are never written (PostgreSQL's json refuses them anyway).
"""

from __future__ import annotations

import json
from typing import Any


def _integer(digits: str) -> int | str:
    try:
        return int(digits)
    except ValueError:  # beyond sys.get_int_max_str_digits()
        return digits


def loads(text: str | bytes) -> Any:
    return json.loads(text, parse_int=_integer)


def dumps(value: Any) -> str:
    return json.dumps(value, allow_nan=False)


# create_engine(url, **JSON_CODEC)
JSON_CODEC: dict[str, Any] = {"json_serializer": dumps, "json_deserializer": loads}
