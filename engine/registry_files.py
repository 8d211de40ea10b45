"""Change-set files folded onto a registry without a store: the registry as it stands on
a day, from its YAML and the ``kind: registry-change`` files beside it.

``kehoach registry apply`` stores change sets (engine.registry_history); a command that
only reads a document (``kehoach import``) needs the same registry as of the
document's date from the files alone. Each file is read and checked exactly as
``apply`` checks it (engine.registry_changes), against the registry with the earlier
change sets applied, and the versions are folded by engine.registry_dated; a file that
does not pass is refused with its located problems.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

try:  # the C parser where PyYAML has it (as engine.yamlsource)
    from yaml import CSafeLoader as _Loader
except ImportError:  # pragma: no cover
    from yaml import SafeLoader as _Loader  # type: ignore[assignment]

from engine.errors import DefinitionError, Location, Problem


@dataclass(frozen=True)
class ChangeFile:
    """What a change-set file says about itself, read without the schema."""

    path: Path
    id: str
    registry: str
    effective: dt.date


def change_files(paths: Iterable[str | Path]) -> list[ChangeFile]:
    """The change-set files among ``paths`` (folders: their .yaml/.yml files), by
    effective date; other YAML files in a folder are passed over, a named file that is
    not a change set is refused."""
    found: list[ChangeFile] = []
    problems: list[Problem] = []
    for raw in paths:
        path = Path(raw)
        named = not path.is_dir()
        files = [path] if named else sorted([*path.glob("*.yaml"), *path.glob("*.yml")])
        for file in files:
            try:
                data: Any = yaml.load(file.read_text(encoding="utf-8-sig"), Loader=_Loader)  # noqa: S506
            except (OSError, UnicodeDecodeError, yaml.YAMLError):
                data = None
            header = _header(file, data)
            if header is not None:
                found.append(header)
            elif named:
                problems.append(
                    Problem(
                        Location(str(file), 0, 0),
                        "không phải tệp thay đổi danh bạ (cần kind: registry-change, id, "
                        "registry và effective: YYYY-MM-DD)",
                        "change",
                    )
                )
    if problems:
        raise DefinitionError(problems)
    return sorted(found, key=lambda f: (f.effective, str(f.path)))


def _header(file: Path, data: Any) -> ChangeFile | None:
    if not isinstance(data, dict) or data.get("kind") != "registry-change":
        return None
    ident, registry, effective = data.get("id"), data.get("registry"), data.get("effective")
    if not (isinstance(ident, str) and isinstance(registry, str)):
        return None
    if not isinstance(effective, dt.date) or isinstance(effective, dt.datetime):
        return None
    return ChangeFile(file, ident, registry, effective)


def applied_ids(registry: Any) -> set[str]:
    """The change sets already folded into ``registry`` (a stored registry's)."""
    history = getattr(registry, "history", None)
    if history is None:
        return set()
    ids = {v.change_id for vs in history.versions.values() for v in vs if v.change_id}
    return ids | set(history.ended_by.values())


def registry_with(registry: Any, files: Iterable[ChangeFile]) -> Any:
    """``registry`` (an engine.schema.Registry) with ``files`` applied in order; those
    already in it are passed over.  Raises DefinitionError (located) for a file that
    ``kehoach registry apply`` would refuse."""
    from engine.registry_changes import check, parse_change_set
    from engine.registry_dated import VersionRow, compose
    from engine.yamlsource import read

    done = applied_ids(registry)
    pending = [f for f in files if f.registry == registry.id and f.id not in done]
    if pending and done:
        # the stored versions are not in hand here: refold them with the store's own rows
        raise DefinitionError(
            [
                Problem(
                    Location(str(pending[0].path), 0, 0),
                    f"danh bạ '{registry.id}' đã nạp có thay đổi đã áp dụng; áp dụng cả "
                    f"thay đổi này trước (`kehoach registry apply {pending[0].path}`)",
                    "change",
                )
            ]
        )
    rows: list[VersionRow] = []
    current = registry
    for file in pending:
        source = read(file.path)
        change_set = parse_change_set(source)
        planned = check(source, change_set, current, {})
        if planned.problems:
            raise DefinitionError(planned.problems)
        rows += [
            VersionRow(
                unit_id=row["unit_id"],
                event=row["event"],
                valid_from=row["valid_from"],
                attrs=dict(row["attrs"]),
                successors=list(row["successors"]),
                rule=row["rule"],
                change_id=change_set.id,
            )
            for row in planned.rows
        ]
        current = compose(registry, rows)
    return current
