"""What the command line writes for a person is Vietnamese: every command's --help
(argparse's own words included), its errors, and the output of `plans`, `outbox` and
`show`.  Identifiers stay as they are: option names, metavars (PLAN, DATE), command
names, the values an option accepts (accept, return, pending…), plan and unit ids."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import pytest

from cli import main
from cli.parser import build_parser

DATA = Path(__file__).parent / "data" / "loader"
PLAN, REGISTRY = DATA / "base_plan.yaml", DATA / "base_registry.yaml"

# English prose words a translation would leave behind (argparse's own among them);
# none is a Vietnamese word ("an" in "Công an", "to", "no" and "A" in names are).
ENGLISH = {
    "and", "arguments", "as", "by", "create", "cycle", "day", "default",
    "error", "exit", "file", "files", "for", "from", "help", "if", "into", "is", "list",
    "loaded", "message", "new", "not", "of", "only", "options", "or", "plan",
    "plans", "positional", "print", "queued", "required", "send", "show", "state",
    "status", "store", "stored", "the", "this", "unchanged", "usage", "version",
    "when", "with", "write",
}  # fmt: skip
IDENTIFIER = re.compile(
    r"--?[\w-]+"  # option names
    r"|\{[^}]*\}"  # choice lists
    r"|\$\w+|KEHOACH_\w+"  # environment variables
    r"|\b[A-Z][A-Z_]+\b"  # metavars (PLAN, DATE, SUBMISSION_ID)
    r"|\S+\.(?:yaml|sqlite|json)\S*|\S*/\S+"  # paths
    r"|`[^`]*`"  # commands quoted in text
)


def _values(parser: argparse.ArgumentParser) -> set[str]:
    """Command names and option values: identifiers a person types as they are."""
    words: set[str] = set()
    for action in parser._actions:
        for choice in action.choices or ():
            words.add(str(choice))
    return words


def english_words(text: str, allowed: set[str] = frozenset()) -> list[str]:
    plain = IDENTIFIER.sub(" ", text)
    words = re.findall(r"[^\W\d_]+", plain)  # whole words, Vietnamese letters included
    return [w for w in words if w.isascii() and w.lower() in ENGLISH and w not in allowed]


def _subcommands() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    [sub] = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return dict(sub.choices)


def test_the_word_check_finds_english() -> None:
    assert english_words("show this help message and exit") == [
        "show", "this", "help", "message", "and", "exit",
    ]  # fmt: skip
    assert english_words("in kế hoạch dạng cây; --plan PLAN, {accept,return}") == []


@pytest.mark.parametrize("command", ["", *_subcommands()])
def test_every_help_is_vietnamese(command: str) -> None:
    parser = build_parser() if not command else _subcommands()[command]
    allowed = _values(build_parser()) | _values(parser)
    text = parser.format_help()
    assert text.startswith("Cách dùng: ")
    assert english_words(text, allowed) == [], text


def test_usage_errors_are_vietnamese(capsys) -> None:
    for argv in (["status"], ["status", "x", "--at", "31/2/2027"], ["khong-co-lenh"]):
        with pytest.raises(SystemExit) as stop:
            main(argv)
        assert stop.value.code == 2
        err = capsys.readouterr().err
        assert ": lỗi: " in err and english_words(err, _values(build_parser())) == [], err


def test_plans_outbox_and_show_print_vietnamese(tmp_path: Path, capsys) -> None:
    db = ["--database-url", f"sqlite:///{tmp_path / 'cli.sqlite'}"]
    assert main([*db, "plans"]) == 0
    empty = capsys.readouterr().out
    assert "Chưa nạp kế hoạch nào" in empty and english_words(empty) == [], empty
    assert main([*db, "load", str(PLAN), str(REGISTRY)]) == 0
    capsys.readouterr()
    assert main([*db, "plans"]) == 0
    listing = capsys.readouterr().out
    assert "hiện hành" in listing and english_words(listing) == [], listing
    assert main([*db, "outbox"]) == 0
    assert "Hộp thư đi: không có thư nào" in capsys.readouterr().out
    assert main([*db, "activate", "ke-hoach-thu", "--year", "2027", "--at", "2027-01-04"]) == 0
    capsys.readouterr()
    assert main([*db, "outbox", "--limit", "3"]) == 0
    outbox = capsys.readouterr().out
    assert outbox.startswith("Mã  Trạng thái  Loại") and "Chờ gửi" in outbox, outbox
    assert "Giao nhiệm vụ" in outbox and english_words(outbox) == [], outbox
    assert main([*db, "show", "ke-hoach-thu"]) == 0
    tree = capsys.readouterr().out
    assert "Căn cứ" in tree or "II. Phân công:" in tree
    assert english_words(tree) == [], [line for line in tree.splitlines() if english_words(line)]


def test_every_kind_of_email_has_a_vietnamese_name() -> None:
    from cli.mail import _kind_labels
    from engine.outbox.kinds import MailKind

    assert set(_kind_labels()) == set(MailKind)
