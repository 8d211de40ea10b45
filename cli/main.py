"""``kehoach``: parse the command line, run the command, turn errors into exit codes.

Exit codes: 0 success; 1 a user error (message says what to do), or ``audit --verify``
found the audit log broken, or ``import --diff`` found a main difference; 2 wrong usage or a malformed setting; 3 invalid definition
files (every problem listed as file:line:column); 4 not found (a plan or registry that
is not loaded); 70 an internal error (a bug: please report).

A command's module is imported only when the command runs, so ``validate`` imports
neither Prefect nor SQLAlchemy (unless it must look a registry up in the store).
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Callable, Sequence

from cli.common import EXIT_INTERNAL, EXIT_INVALID, EXIT_NOT_FOUND, EXIT_OK, EXIT_USAGE, err
from cli.parser import build_parser
from engine.errors import DefinitionError, KehoachError, NotFound

Command = Callable[[argparse.Namespace], int]


def _resolve(func: Command | str) -> Command:
    if callable(func):
        return func
    module_name, _, attr = func.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name and exc.name.split(".")[0] in {
            "workflows",
            "notifications",
            "portal",
            "engine",
        }:
            raise KehoachError(
                f"lệnh này không có trong bản cài đặt này (thiếu {exc.name})"
            ) from None
        raise
    command: Command = getattr(module, attr)
    return command


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return EXIT_USAGE
    try:
        return int(_resolve(args.func)(args) or 0)
    except DefinitionError as exc:
        for problem in exc.problems:
            err(str(problem))
        err(exc.summary)
        return EXIT_INVALID
    except NotFound as exc:
        err(f"kehoach: {exc}")
        return EXIT_NOT_FOUND
    except KehoachError as exc:
        err(f"kehoach: {exc}")
        detail = getattr(exc, "detail", "")  # English, for the developer (ConfigError)
        if detail and os.environ.get("KEHOACH_DEBUG"):
            err(f"kehoach: debug: {detail}")
        return exc.exit_code
    except KeyboardInterrupt:
        err("kehoach: đã dừng theo yêu cầu")
        return 130
    except BrokenPipeError:
        return EXIT_OK
    except Exception as exc:  # a bug, not a user mistake: say so, keep the details
        if os.environ.get("KEHOACH_DEBUG"):
            raise
        err(
            f"kehoach: lỗi nội bộ: {type(exc).__name__}: {exc}\n"
            "Đây là lỗi của chương trình. Chạy lại với KEHOACH_DEBUG=1 để xem traceback "
            "và báo cho người phát triển."
        )
        return EXIT_INTERNAL


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
