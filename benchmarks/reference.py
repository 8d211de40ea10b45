"""The code before, for the benchmarks: a git worktree of an older commit.

A benchmark that compares with the code before runs each measurement in a process of
its own: one on this tree, one with ``--tree DIR``, DIR a detached ``git worktree`` of
:data:`BEFORE` made for the run (and removed after it). :func:`use_tree`, called by the
script before it imports anything of kehoach, puts DIR first on ``sys.path``, so
``engine`` is the older commit's and the measuring code is this one's: the same
driver, both codes, nothing copied.
"""

from __future__ import annotations

import contextlib
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# main before issue 14's sweep and intake work (the sweep and intake "before" figures)
BEFORE = "96b0708e5bb709f1059f819d1c023c67d9c65456"
# main before consolidation read the reports as streamed columns (the memory "before")
CONSOLIDATION_BEFORE = "f6582952c3b5ce6672fad8b9630281dc511e25d4"


def use_tree(argv: list[str]) -> Path:
    """The tree whose ``engine`` this process imports: ``--tree DIR`` or this one."""
    tree = Path(argv[argv.index("--tree") + 1]) if "--tree" in argv else ROOT
    sys.path.insert(0, str(tree))
    return tree


@contextlib.contextmanager
def worktree(commit: str = BEFORE) -> Iterator[Path]:
    """A detached worktree of ``commit`` for the time of a benchmark."""
    path = Path(tempfile.mkdtemp(prefix="kehoach-before-")) / "tree"
    subprocess.run(
        ["git", "-C", str(ROOT), "worktree", "add", "--detach", str(path), commit],
        check=True,
        capture_output=True,
    )
    try:
        yield path
    finally:
        subprocess.run(
            ["git", "-C", str(ROOT), "worktree", "remove", "--force", str(path)],
            check=False,
            capture_output=True,
        )
