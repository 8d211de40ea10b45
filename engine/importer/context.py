"""What every part of the import shares: the findings, the ids, the units matched or
missing, and the draft they make."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from engine.importer.sources import SourceText
from engine.importer.units import Candidate, Match, UnitMatcher, fold
from engine.importer.yamlout import Map
from engine.vntext import short_date

if TYPE_CHECKING:
    from collections.abc import Sequence

    from engine.importer.directory import Directory
    from engine.registry_files import ChangeFile
    from engine.schema import Registry

CHECK = "KIỂM TRA"


@dataclass
class Finding:
    line: int
    kind: str  # "chưa chắc" (a value to check) or "không hiểu" (a line not used)
    text: str


@dataclass
class NearName:
    """A name only like a registry unit, written as ``ident`` (refused by the loader)."""

    text: str
    ident: str
    best: Candidate
    lines: list[int] = field(default_factory=list)

    def warning(self, source: SourceText | None) -> str:
        """One line in Vietnamese for the whole name, wherever it stands ("dòng" of a
        text or PDF, "đoạn" of a DOCX)."""
        where = ", ".join(str(n) for n in dict.fromkeys(self.lines) if n) or "?"
        path, unit = (source.path, source.unit) if source else ("?", "dòng")
        return (
            f"Cảnh báo: {path} {unit} {where}: “{self.text}” gần giống “{self.best.name}” "
            f"({self.best.score:.0f} %) nhưng chưa đủ chắc; chưa giao cho {self.best.id}, đã ghi "
            f"mã tạm {self.ident}: bản nháp chưa qua được `kehoach validate` đến khi ghi mã đúng."
        )


@dataclass
class Draft:
    plan: Map
    registry_draft: Map | None
    findings: list[Finding] = field(default_factory=list)
    source: SourceText | None = None
    changes: list[str] = field(default_factory=list)  # change sets applied for its date
    near: list[NearName] = field(default_factory=list)  # names only like a unit


def slug(text: str, limit: int = 48) -> str:
    words = re.findall(r"[a-z0-9]+", fold(text, expand=False).replace(",", " "))
    out = ""
    for word in words:
        if len(out) + len(word) + 1 > limit:
            break
        out = f"{out}-{word}" if out else word
    return out or "muc"


class _Ids:
    def __init__(self) -> None:
        self.seen: set[str] = set()

    def make(self, text: str, limit: int = 48) -> str:
        base = slug(text, limit)
        ident, n = base, 2
        while ident in self.seen:
            ident, n = f"{base}-{n}", n + 1
        self.seen.add(ident)
        return ident


class Context:
    """The state one import builds up; the parts are methods of its subclasses."""

    matcher: UnitMatcher
    as_of: dt.date
    issuer_unit: str | None = None

    def __init__(
        self,
        source: SourceText,
        registry: Registry | Directory | None,
        changes: Sequence[ChangeFile] = (),
    ) -> None:
        self.source = source
        self.registry = registry
        self.changes = list(changes)
        self.applied: list[ChangeFile] = []
        self.findings: list[Finding] = []
        self.missing: dict[str, tuple[str, int]] = {}  # slug → (name, line)
        self.near: dict[str, NearName] = {}  # names only like a unit, as written
        self.ids = _Ids()

    # ------------------------------------------------------------ reporting

    def check(self, line: int, text: str) -> str:
        """Record a point to check; the comment the draft writes above the value."""
        self.findings.append(Finding(line, "chưa chắc", text))
        where = f"{self.source.unit} {line}" if line else "toàn văn bản"
        return f"{CHECK} ({where}): {text}"

    def target(self, match: Match, line: int, notes: list[str]) -> Map:
        """A unit or group reference, with a note where the match is not sure.  A name of
        a unit that does not exist on the document's date is its heir then, noted; with no
        heir it stays the unit named, noted, for the administrator to settle (the loader
        refuses it as not valid on the plan's date)."""
        if match.dated is not None:
            notes.append(self.check(line, match.dated.why(match.text, self.as_of)))
            if match.best is None:
                return Map(flow=True).put("unit", match.dated.id)
        if match.sure and match.best is not None:
            return Map(flow=True).put(match.best.kind, match.best.id)
        if match.near and match.best is not None:
            return self._unresolved(match, match.best, line, notes)
        ident = "moi-" + slug(match.text, 40)
        self.missing.setdefault(ident, (match.text, line))
        hint = f"; gần nhất: {match.suggestions()}" if match.best is not None else ""
        notes.append(
            self.check(
                line,
                f"“{match.text}” không có trong danh bạ{hint}. Đã ghi tạm mã {ident} (xem bản nháp danh bạ)",
            )
        )
        return Map(flow=True).put("unit", ident)

    def _unresolved(self, match: Match, best: Candidate, line: int, notes: list[str]) -> Map:
        """A name only like a unit (LIKELY ≤ score < SURE): a temporary id the loader
        refuses, the nearest names above it, one warning per name (``self.near``)."""
        ident = "chua-ro-" + slug(match.text, 40)
        near = self.near.setdefault(match.text, NearName(match.text, ident, best))
        near.lines.append(line)
        when = "" if self.matcher.valid(best.id) else ", đơn vị không có vào ngày của văn bản"
        others = "; ".join(f"{c.id} ({c.name}, {c.score:.0f} %)" for c in match.others[:2])
        notes.append(
            self.check(
                line,
                f"“{match.text}” gần giống “{best.name}” ({best.id}, {best.score:.0f} %{when}), "
                f"chưa đủ chắc để ghi: đã ghi mã tạm {ident}, `kehoach validate` sẽ báo lỗi "
                f"đến khi thay bằng mã đơn vị đúng"
                + (f"; các lựa chọn khác: {others}" if others else ""),
            )
        )
        return Map(flow=True).put(best.kind, ident)

    def registry_on(self, day: dt.date) -> None:
        """The registry as it stands on the document's date: the change sets that took
        effect by then applied (a registry file is then read by the loader, located)."""
        if self.registry is None:
            return
        from engine.registry_files import applied_ids, registry_with

        done = applied_ids(self.registry)
        pending = [
            c
            for c in self.changes
            if c.registry == self.registry.id and c.effective <= day and c.id not in done
        ]
        if not pending:
            return
        full: Any = self.registry
        path = getattr(self.registry, "path", None)
        if path is not None:  # a Directory: the schema's registry, through the loader
            from engine.errors import DefinitionError
            from engine.loader import read_files

            catalog, problems = read_files([path])
            if problems:
                raise DefinitionError(problems)
            full = catalog.registries[self.registry.id].definition
        self.registry = registry_with(full, pending)
        self.applied = pending

    # ------------------------------------------------------------ the whole

    def _draft(self, plan: Map) -> Draft:
        """The whole: the plan, the registry draft, the findings (sorted by the caller),
        the change sets applied and the names only like a unit."""
        changes = [f"{c.id} (từ {short_date(c.effective)})" for c in self.applied]
        near = list(self.near.values())
        return Draft(plan, self._registry_draft(), self.findings, self.source, changes, near)

    def _registry_draft(self) -> Map | None:
        if not self.missing:
            return None
        draft = Map()
        draft.put("kind", "registry")
        draft.put("id", (self.registry.id if self.registry else "danh-ba") + "-bo-sung")
        draft.put("name", "Các đơn vị có trong kế hoạch nhưng chưa có trong danh bạ")
        units = []
        for ident, (name, line) in self.missing.items():
            unit = Map()
            unit.put(
                "id",
                ident,
                f"{CHECK} ({self.source.unit} {line}): “{name}”; ghi tên đầy đủ, loại, cấp, cơ quan cấp trên, email",
            )
            unit.put("name", name)
            unit.put("kind", "chua-ro")
            unit.put("emails", [])
            units.append(unit)
        draft.put("units", units)
        return draft
