"""How wide a line of Times New Roman is, to size the short rules of Nghị định 30 and to
break an issuing body's name where a person would (not where a cell happens to end).

Advance widths (1/1000 em) of Liberation Serif, metric-compatible with Times New Roman,
read from the font files once; Vietnamese letters take their base letter's width
(Ư and ơ/ư, which are wider, are listed).
"""

from __future__ import annotations

import unicodedata

_BOLD = dict(
    zip(
        "ABCDEFGHIJKLMNOPQRSTUVWXYZ",
        [722, 667, 722, 722, 667, 611, 778, 778, 389, 500, 778, 667, 944]
        + [722, 778, 611, 778, 722, 556, 667, 722, 722, 1000, 722, 722, 667],
        strict=True,
    )
)
_BOLD.update(
    zip(
        "abcdefghijklmnopqrstuvwxyz",
        [500, 556, 444, 556, 444, 333, 500, 556, 278, 333, 556, 278, 833]
        + [556, 500, 556, 556, 444, 389, 333, 556, 500, 722, 500, 500, 444],
        strict=True,
    )
)
_BOLD.update({" ": 250, "-": 333, ".": 250, ",": 250, ":": 333, "/": 278, "(": 333, ")": 333})
_BOLD.update({"Đ": 722, "đ": 556, "Ư": 796, "ư": 600, "Ơ": 778, "ơ": 554})
_BOLD.update(dict.fromkeys("0123456789", 500))
_DEFAULT = 556
_CM_PER_PT = 2.54 / 72


def _base(char: str) -> str:
    if char in _BOLD:
        return char
    decomposed = unicodedata.normalize("NFD", char)
    head = decomposed[0]
    # Ư/ư and Ơ/ơ keep their horn (U+031B) when decomposed: measure them as such.
    if "\u031b" in decomposed:
        head = unicodedata.normalize("NFC", head + "\u031b")
    return head


def width_cm(text: str, size_pt: float) -> float:
    """The width of ``text`` set in bold Times New Roman at ``size_pt``, in cm."""
    units = sum(_BOLD.get(_base(c), _DEFAULT) for c in text)
    return units / 1000 * size_pt * _CM_PER_PT


def balanced_lines(text: str, max_cm: float, size_pt: float) -> list[str]:
    """``text`` on one line if it fits ``max_cm``, else on the fewest lines that fit, broken
    between words so the longest line is shortest ("ỦY BAN NHÂN DÂN / HUYỆN HẠ LANG")."""
    words = text.split()
    if not words or width_cm(text, size_pt) <= max_cm:
        return [text]
    for count in range(2, len(words) + 1):
        best = _best_split(words, count, size_pt)
        if best is not None and max(width_cm(line, size_pt) for line in best) <= max_cm:
            return best
    return words


def _best_split(words: list[str], count: int, size_pt: float) -> list[str] | None:
    """The split of ``words`` into ``count`` lines with the shortest longest line."""
    if count > len(words):
        return None
    if count == 1:
        return [" ".join(words)]
    best: list[str] | None = None
    best_width = float("inf")
    for cut in range(1, len(words) - count + 2):
        rest = _best_split(words[cut:], count - 1, size_pt)
        if rest is None:
            continue
        lines = [" ".join(words[:cut]), *rest]
        widest = max(width_cm(line, size_pt) for line in lines)
        if widest < best_width:
            best, best_width = lines, widest
    return best
