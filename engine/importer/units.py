"""Unit names as a plan writes them → registry units and groups, as of the plan's date.

Matching ignores accents and case and spells out the abbreviations plans use (UBND,
HĐND, MTTQ, CAH, BQL, KCN …).  A name that leaves out the place ("Công an huyện" in a
plan of huyện Hạ Lang) is read with the issuer's place.  A plural name ("Các phòng,
ban, ngành huyện", "UBND các xã, thị trấn") is looked for among the groups first.
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, cast

from engine.vntext import short_date

if TYPE_CHECKING:
    from engine.importer.directory import Directory
    from engine.schema import Registry


SURE = 90.0
LIKELY = 80.0

ABBREVIATIONS = {
    "ubnd": "uy ban nhan dan",
    "hdnd": "hoi dong nhan dan",
    "ubmttq": "uy ban mat tran to quoc",
    "mttq": "mat tran to quoc",
    "ub": "uy ban",
    "cah": "cong an huyen",
    "cat": "cong an tinh",
    "bql": "ban quan ly",
    "kcn": "khu cong nghiep",
    "ccn": "cum cong nghiep",
    "tt": "thi tran",
    "hu": "huyen uy",
    "tu": "tinh uy",
    "ldld": "lien doan lao dong",
    "hlhpn": "hoi lien hiep phu nu",
    "hccb": "hoi cuu chien binh",
    "vhtt": "van hoa va thong tin",
    "ktht": "kinh te va ha tang",
    "tnmt": "tai nguyen va moi truong",
    "gddt": "giao duc va dao tao",
    "sct": "so cong thuong",
}
_PLACE_WORDS = ("thanh pho", "thi xa", "thi tran", "tinh", "huyen", "xa", "phuong", "quan")
_RANK = {
    "tinh": 1,
    "thanh pho": 1,
    "huyen": 2,
    "quan": 2,
    "thi xa": 2,
    "xa": 3,
    "phuong": 3,
    "thi tran": 3,
}
_PLURAL = re.compile(r"\bcac\b|\bdoan the\b|\bban, nganh\b|\bnganh\b.*,|, ")
# Words that carry no identity: "Đề nghị" before a request, "Việt Nam" in MTTQ's name.
_NOISE = re.compile(
    r"^(?:de nghi|giao|yeu cau|giam doc|pho giam doc|chu tich|bo truong|truong doan)\s+|\(.*?\)|\bviet nam\b|\bva\b|[()]"
)


def fold(text: str, expand: bool = True) -> str:
    """Lower case, no accents, đ → d, punctuation as spaces, abbreviations spelt out."""
    text = unicodedata.normalize("NFD", text.replace("Đ", "D").replace("đ", "d"))
    text = "".join(ch for ch in text if unicodedata.category(ch) != "Mn").casefold()
    text = text.replace("&", " va ")
    words = re.findall(r"[a-z0-9]+|,", text)
    spelt = [ABBREVIATIONS.get(w, w) for w in words] if expand else words
    return " ".join(spelt).replace(" ,", ",")


def split_place(place: str) -> tuple[str, str]:
    """'thi tran thanh nhat' → ('thi tran', 'thanh nhat') (folded text)."""
    for level in _PLACE_WORDS:
        if place.startswith(level + " "):
            return level, place[len(level) + 1 :]
    return "", place


def _key(text: str) -> str:
    text = re.sub(r"\([^)]*\)", " ", text)  # "(thường trực Đoàn)" says what it does, not who
    return " ".join(_NOISE.sub(" ", fold(text)).replace(",", " ").split())


@dataclass(frozen=True)
class Candidate:
    kind: str  # "unit" or "group"
    id: str
    name: str
    score: float


@dataclass(frozen=True)
class Dated:
    """A name that is a unit of another time than the document's: ended before its date
    (its heirs on that date, if any) or not yet existing then."""

    id: str
    name: str
    valid_from: dt.date
    valid_to: dt.date | None
    heirs: tuple[Candidate, ...]
    change: str | None  # the change set that ended it, where known

    def why(self, text: str, day: dt.date) -> str:
        """The warning, in Vietnamese: which name, which unit, since when, mapped to whom."""
        said = f"“{text}” là {self.name} ({self.id})"
        if self.valid_to is None or self.valid_to >= day:
            return (
                f"{said}, chỉ có từ ngày {short_date(self.valid_from)}, sau ngày của văn bản "
                f"({short_date(day)}); ghi đơn vị có vào ngày đó"
            )
        ended = f"{said}, không còn từ ngày {short_date(self.valid_to + dt.timedelta(days=1))}"
        if self.change:
            ended += f" (thay đổi danh bạ {self.change})"
        if not self.heirs:
            return (
                f"{ended} và không có đơn vị kế thừa; văn bản ngày {short_date(day)} không thể giao "
                "cho đơn vị này: ghi đơn vị nhận thay, hoặc bỏ"
            )
        heirs = ", ".join(f"{h.name} ({h.id})" for h in self.heirs)
        chosen = self.heirs[0]
        more = f"; các đơn vị kế thừa: {heirs}" if len(self.heirs) > 1 else ""
        return (
            f"{ended}; vào ngày của văn bản ({short_date(day)}) đơn vị kế thừa là {chosen.name}: "
            f"đã ghi {chosen.id}{more}"
        )


@dataclass
class Match:
    """What a name was matched to: sure, likely (to check) or nothing (a registry draft).
    ``dated``: the name is of a unit that does not exist on the document's date; ``best``
    is then its heir on that date (None where it has none)."""

    text: str
    best: Candidate | None
    others: list[Candidate] = field(default_factory=list)
    dated: Dated | None = None

    @property
    def sure(self) -> bool:
        return self.best is not None and self.best.score >= SURE

    @property
    def found(self) -> bool:
        """Alike enough to be a unit name (the heading of an assignment), sure or not."""
        return self.best is not None and self.best.score >= LIKELY

    @property
    def near(self) -> bool:
        """Alike but not sure (a score from LIKELY up to SURE): the nearest names are shown
        for a person to choose; never written as the unit."""
        return self.found and not self.sure

    def target(self) -> dict[str, str] | None:
        if not self.sure or self.best is None:
            return None
        return {self.best.kind: self.best.id}

    def suggestions(self) -> str:
        shown = [c for c in ([self.best] if self.best else []) + self.others if c is not None]
        return "; ".join(f"{c.id} ({c.name}, {c.score:.0f}%)" for c in shown[:3])


class _Choices:
    """The names one kind (units or groups) is matched against, with their words."""

    def __init__(self, keys: dict[str, str]) -> None:
        self.keys = keys
        self.words = {ident: frozenset(key.split()) for ident, key in keys.items()}
        self.order = {ident: index for index, ident in enumerate(keys)}

    def top(self, query: str, limit: int = 4) -> list[tuple[str, float]]:
        """The ``limit`` names most like ``query``, best first, ties in the names' order.

        Word order aside, how alike two names are (``token_sort_ratio``, for every name
        in one native call); a name of five words or more that the other holds whole
        ("Sở Công Thương các tỉnh, thành phố" in "… trực thuộc Trung ương") counts nearly
        as much as an equal one."""
        if not self.keys:
            return []
        # here, not at the top: an import without a registry matches nothing
        from rapidfuzz import fuzz, process

        found = process.extract(query, self.keys, scorer=fuzz.token_sort_ratio, limit=None)
        asked = set(query.split())
        scored: list[tuple[str, float]] = []
        for choice, score, ident in found:
            if len(asked) >= 5:
                named = self.words[ident]
                # held whole: every word of one in the other (token_set_ratio alone also
                # rates high two names that only share their place, "… tỉnh Cao Bằng")
                if asked <= named or named <= asked:
                    score = max(score, 0.88 * fuzz.token_set_ratio(query, choice))
            scored.append((ident, score))
        scored.sort(key=lambda pair: (-pair[1], self.order[pair[0]]))
        return scored[:limit]


class UnitMatcher:
    """Names → registry units and groups valid on ``as_of``."""

    def __init__(
        self,
        registry: Registry | Directory | None,
        as_of: dt.date,
        places: list[str] | None = None,
        issuer: str | None = None,
    ) -> None:
        """``places``: the issuer's place first, then those above it ("huyện Hạ Lang",
        "tỉnh Cao Bằng"), to complete names that leave the place out."""
        self.registry = registry
        self.as_of = as_of
        self.places = [fold(p) for p in places or [] if p]
        self.issuer = _key(issuer) if issuer else None
        # engine.schema's or engine.importer.directory's units and groups (the same fields)
        self.every: list[Any] = list(registry.units) if registry else []
        self.units: list[Any] = [u for u in self.every if u.valid_on(as_of)]
        self.groups: list[Any] = list(registry.groups) if registry else []
        # Every unit, those of another time too: a name of a unit abolished before the
        # document's date is found, and mapped to its heir (with a warning), not to
        # whichever valid unit happens to look like it.
        self._unit_keys = _Choices({u.id: _key(u.name) for u in self.every})
        self._unit_names = {u.id: u.name for u in self.every}
        self._valid = {u.id for u in self.units}
        self._group_keys = _Choices({g.id: _key(g.name) for g in self.groups})
        self._group_names = {g.id: g.name for g in self.groups}
        self._shorts = {fold(u.short): u for u in self.units if u.short}

    def _with_issuer(self, key: str) -> str:
        """'van phong bo' → 'van phong bo cong thuong' in a plan of Bộ Công Thương: "Bộ",
        "Sở" at the end of a name mean the issuer."""
        if self.issuer:
            for word in ("bo", "so"):
                if (key == word or key.endswith(" " + word)) and self.issuer.startswith(word + " "):
                    return f"{key} {self.issuer[len(word) + 1 :]}"
        return key

    def _with_place(self, key: str) -> str:
        """'cong an huyen' → 'cong an huyen ha lang' in a plan of huyện Hạ Lang; 'van phong
        tinh uy' → '… cao bang'; a name with no place of the issuer's level or above
        ('phong kinh te ha tang', 'uy ban nhan dan cac xa thi tran') gets the issuer's."""
        for place in self.places:
            level, name = split_place(place)
            if name and name in key:
                return key
            if level and re.search(rf"\b{level}\b", key):
                return f"{key} {name}"
        if self.places:
            rank = _RANK.get(split_place(self.places[0])[0], 3)
            if not any(re.search(rf"\b{w}\b", key) for w, r in _RANK.items() if r <= rank):
                return f"{key} {self.places[0]}"
        return key

    def match(self, text: str, *, prefer_group: bool | None = None) -> Match:
        folded = fold(text)
        short = self._shorts.get(folded)
        if short is not None:
            return Match(text, Candidate("unit", short.id, short.name, 100.0))
        bare = self._with_issuer(_key(text))
        keys = list(dict.fromkeys([self._with_place(bare), bare]))
        plural = bool(_PLURAL.search(folded)) if prefer_group is None else prefer_group
        best: dict[tuple[str, str], Candidate] = {}
        for kind, choices, names in (
            ("unit", self._unit_keys, self._unit_names),
            ("group", self._group_keys, self._group_names),
        ):
            for key in keys:
                for ident, score in choices.top(key):
                    bonus = 6.0 if (kind == "group") == plural else -6.0
                    # an equal name of the document's time wins over one of another time
                    stale = 0.5 if kind == "unit" and ident not in self._valid else 0.0
                    candidate = Candidate(
                        kind, str(ident), names[ident], min(100.0, score + bonus) - stale
                    )
                    known = best.get((kind, candidate.id))
                    if known is None or known.score < candidate.score:
                        best[(kind, candidate.id)] = candidate
        scored = sorted(best.values(), key=lambda c: -c.score)
        if not scored:
            return Match(text, None)
        top = scored[0]
        others = [c for c in scored[1:] if c.kind == "group" or c.id in self._valid][:3]
        if top.kind == "unit" and top.id not in self._valid and top.score >= SURE:
            dated = self._dated(top)
            heir = dated.heirs[0] if dated.heirs else None
            best_now = Candidate("unit", heir.id, heir.name, top.score) if heir else None
            return Match(text, best_now, others, dated)
        if top.kind == "unit" and top.id not in self._valid and top.score < LIKELY:
            return Match(text, others[0] if others else None, others[1:])
        # near a unit of another time: shown as it is, for a person to choose (no heir
        # is looked for on a guess)
        return Match(text, top, others)

    def _dated(self, found: Candidate) -> Dated:
        """The unit ``found`` names, of another time than the document's, with its heirs
        on the document's date (engine.registry's successor rules)."""
        from engine.registry import RegistryView

        # RegistryView reads units, groups and history: the fields a Directory has too.
        view = RegistryView(cast("Registry", self.registry))
        unit = view.units[found.id]
        heirs = tuple(
            Candidate("unit", h.id, h.name, found.score)
            for h in view.heirs(found.id, self.as_of)
            if h.id in self._valid
        )
        history = view.history
        change = history.ended_by.get(found.id) if history is not None else None
        return Dated(found.id, unit.name, unit.valid_from, unit.valid_to, heirs, change)

    def valid(self, unit_id: str) -> bool:
        """A unit of the document's date (a group is always)."""
        return unit_id in self._valid or unit_id in self._group_names

    def unit_name(self, unit_id: str) -> str | None:
        return next((u.name for u in self.units if u.id == unit_id), None)
