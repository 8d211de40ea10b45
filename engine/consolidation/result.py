"""What a consolidation returns, and the error when a plan cannot be consolidated."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from engine.errors import KehoachError
from engine.reports import Coverage
from engine.states import State
from engine.status import StatusRow
from engine.store.models import ConsolidatedReport


class ConsolidationError(KehoachError):
    """The plan cannot be consolidated as written."""


@dataclass
class ConsolidationResult:
    """The stored report plus what a flow shows (markdown artifact, upward hand-off)."""

    report: ConsolidatedReport
    markdown: str
    created: bool  # False when nothing was written (consolidated before, nothing new)
    status_rows: list[StatusRow] = field(default_factory=list)
    upward_obligation_id: int | None = None
    warnings: list[str] = field(default_factory=list)
    # A revision (report.revision > 1): the one it replaces, and what changed since it.
    replaces_id: int | None = None
    changes: list[str] = field(default_factory=list)
    submission_ids: list[int] = field(default_factory=list)  # the reports that caused it
    upward_refused: str | None = None  # why the parent obligation refused the report
    # Per field: the units it applies to and those whose report gives it.
    coverage: dict[str, Coverage] = field(default_factory=dict)

    @property
    def id(self) -> int:
        return self.report.id

    @property
    def revision(self) -> int:
        return self.report.revision or 1

    @property
    def document_path(self) -> str | None:
        return self.report.document_path

    @property
    def document_file_id(self) -> int | None:
        return self.report.document_file_id

    @property
    def aggregates(self) -> dict[str, Any]:
        return self.report.aggregates

    @property
    def status_table(self) -> list[Any]:
        return self.report.status_table

    @property
    def upward_submission_id(self) -> int | None:
        return self.report.upward_submission_id

    def counts(self) -> dict[str, int]:
        tally = {state.value: 0 for state in State}
        for row in self.report.status_table:
            tally[row["state"]] += 1
        return tally
