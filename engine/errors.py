"""Errors a user can act on: where (file:line:column), what, and what to do."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, order=True)
class Location:
    file: str
    line: int
    column: int

    def __str__(self) -> str:
        if self.line <= 0:
            return self.file
        return f"{self.file}:{self.line}:{self.column}"


@dataclass(frozen=True)
class Problem:
    """One finding about a definition file."""

    location: Location
    message: str
    code: str = "invalid"

    def __str__(self) -> str:
        return f"{self.location}: {self.message}"


class KehoachError(Exception):
    """Base of every error meant for a user; the CLI prints it without a traceback."""

    exit_code = 1


class DefinitionError(KehoachError):
    """One or more problems in definition files; nothing was stored."""

    exit_code = 3

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = sorted(problems, key=lambda p: p.location)
        super().__init__("\n".join(str(p) for p in self.problems))

    @property
    def summary(self) -> str:
        """The last line the CLI prints under the problems."""
        return f"{len(self.problems)} lỗi trong các tệp định nghĩa; không lưu gì."


class NotFound(KehoachError):
    exit_code = 4
