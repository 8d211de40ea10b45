"""argparse in Vietnamese: the words argparse writes itself ("usage:", "options",
"show this help message and exit", its error messages) for the ``kehoach`` command.

argparse takes those words from gettext with no catalogue for Vietnamese; they are set
here on the parser (titles, the help option, the usage prefix) and its errors are
rewritten from the English patterns of Python 3.11-3.13, so nothing global is patched.
"""

from __future__ import annotations

import argparse
import re
import sys
from typing import Any, NoReturn

USAGE = "Cách dùng: "
_ERRORS: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"^the following arguments are required: (.*)$"), r"thiếu đối số bắt buộc: \1"),
    (re.compile(r"^unrecognized arguments: (.*)$"), r"đối số không nhận ra: \1"),
    (re.compile(r"^argument (\S+): "), r"đối số \1: "),
    (
        re.compile(r"invalid choice: (.*) \(choose from (.*)\)$"),
        r"lựa chọn không hợp lệ: \1 (chọn một trong: \2)",
    ),
    (re.compile(r"invalid int value: (.*)$"), r"không phải số nguyên: \1"),
    (re.compile(r"invalid (\S+) value: (.*)$"), r"giá trị không hợp lệ: \2"),
    (re.compile(r"expected one argument$"), "cần một giá trị"),
    (re.compile(r"expected at least one argument$"), "cần ít nhất một giá trị"),
    (re.compile(r"ambiguous option: (\S+) could match (.*)$"), r"tùy chọn \1 mơ hồ: \2"),
    (re.compile(r"not allowed with argument (.*)$"), r"không dùng cùng với \1"),
    (re.compile(r"^one of the arguments (.*) is required$"), r"cần một trong các đối số: \1"),
]


def vietnamese_error(message: str) -> str:
    """An argparse error message in Vietnamese (unknown ones are left as they are)."""
    for pattern, replacement in _ERRORS:
        message = pattern.sub(replacement, message)
    return message


class VietnameseHelpFormatter(argparse.HelpFormatter):
    def add_usage(self, usage: Any, actions: Any, groups: Any, prefix: str | None = None) -> None:
        super().add_usage(usage, actions, groups, USAGE if prefix is None else prefix)


class VietnameseParser(argparse.ArgumentParser):
    """An ArgumentParser whose own words are Vietnamese."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        add_help = kwargs.pop("add_help", True)
        kwargs.setdefault("formatter_class", VietnameseHelpFormatter)
        kwargs["add_help"] = False  # the help option is added below, in Vietnamese
        super().__init__(*args, **kwargs)
        self._positionals.title = "đối số"
        self._optionals.title = "tùy chọn"
        if add_help:
            self.add_argument(
                "-h",
                "--help",
                action="help",
                default=argparse.SUPPRESS,
                help="in trợ giúp rồi thoát",
            )

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(2, f"{self.prog}: lỗi: {vietnamese_error(message)}\n")
