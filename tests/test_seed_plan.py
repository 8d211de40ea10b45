"""The encoded Hạ Lang plan says what the seed text says.

The seed (a PDF turned into text) is parsed here on its own terms — numbered items,
"- " bullets, "Nơi nhận" lines — and every part is compared with the YAML after
whitespace is normalised.  Nothing is listed twice: the expected bullets come from the
seed, never from the YAML.
"""

from __future__ import annotations

import datetime as dt
import os
import re
from pathlib import Path

import pytest
import yaml

from engine.schema import Plan, Registry

SEED_NAME = "000_c128544cc2c3a018.txt"
DEFINITIONS = Path(__file__).resolve().parents[1] / "plan_definitions"
PLAN_FILE = DEFINITIONS / "ha_lang_pccc_2022.yaml"
PARENT_FILE = DEFINITIONS / "cao_bang_2720_kh_ubnd.yaml"
REGISTRY_FILE = DEFINITIONS / "registry_cao_bang.yaml"

# What each numbered item of section II is addressed to in the registry.  The headings
# themselves are checked against the seed; this table only says which id they mean.
EXPECTED_TARGETS = {
    "II.1": ("unit", "ca-huyen-ha-lang"),
    "II.2": ("unit", "phong-vhtt-ha-lang"),
    "II.3": ("unit", "phong-ktht-ha-lang"),
    "II.4": ("group", "phong-ban-nganh-huyen"),
    "II.5": ("group", "xa-thi-tran-ha-lang"),
    "II.6": ("group", "mttq-doan-the-huyen"),
}


# ---------------------------------------------------------------- seed parsing


# The seed's text is kept in the repository (plan_definitions/sources/) so the
# comparison runs from any clone; the shared copy, when present, must be identical.
REPO_SEED = DEFINITIONS / "sources" / SEED_NAME
SHARED_SEED = Path(__file__).resolve().parents[2] / "shared" / "seed" / SEED_NAME


def test_the_repository_copy_of_the_seed_is_the_shared_one():
    if not SHARED_SEED.is_file():
        pytest.skip(f"no shared seed at {SHARED_SEED} to compare with")
    assert REPO_SEED.read_bytes() == SHARED_SEED.read_bytes()


def _seed_path() -> Path | None:
    candidates = [REPO_SEED, SHARED_SEED]
    env = os.environ.get("KEHOACH_SEED")
    if env:
        path = Path(env)
        candidates.append(path / SEED_NAME if path.is_dir() else path)
    return next((p for p in candidates if p.is_file()), None)


def norm(text: str) -> str:
    """Join PDF line breaks: 'QĐ-\\n TTg' → 'QĐ-TTg', any run of whitespace → one space."""
    text = re.sub(r"(\S)-[ \t]*\n\s*", r"\1-", text)
    return re.sub(r"\s+", " ", text).strip()


def between(text: str, start: str, end: str | None) -> str:
    i = text.index(start) + len(start)
    j = text.index(end, i) if end else len(text)
    return text[i:j]


def numbered_items(body: str) -> list[tuple[int, str]]:
    """'1. …' '2. …' at the start of a line → [(1, raw text), (2, raw text)]."""
    parts = re.split(r"(?m)^[ \t]*(\d+)\.[ \t]+", body)
    return [(int(parts[k]), parts[k + 1]) for k in range(1, len(parts), 2)]


def bullets(body: str) -> list[str]:
    """Split on '- ' at the start of a line; text with no bullet is one item."""
    chunks = re.split(r"(?m)^[ \t]*-[ \t]+", body)
    return [norm(c) for c in chunks if norm(c)]


def heading_and_bullets(raw: str) -> tuple[str, list[str]]:
    first, _, rest = raw.partition("\n")
    if ":" in first:  # "6. Đề nghị Ủy ban MTTQ…, đoàn thể huyện: Đẩy mạnh…"
        heading, _, tail = first.partition(":")
        rest = tail + "\n" + rest
    else:
        heading = first
    return norm(heading), bullets(rest)


class Seed:
    def __init__(self, text: str) -> None:
        self.text = text
        self.flat = norm(text)
        part_1 = between(text, "I. MỤC ĐÍCH, YÊU CẦU", "II. NỘI DUNG THỰC HIỆN")
        part_2 = between(text, "II. NỘI DUNG THỰC HIỆN", "III. TỔ CHỨC THỰC HIỆN")
        part_3 = between(text, "III. TỔ CHỨC THỰC HIỆN", "Trên đây là Kế hoạch")
        self.objectives = [norm(t) for _, t in numbered_items(part_1)]
        self.assignments = {
            f"II.{n}": heading_and_bullets(raw) for n, raw in numbered_items(part_2)
        }
        self.organisation = {f"III.{n}": norm(raw) for n, raw in numbered_items(part_3)}
        self.summary = norm(between(text, "KẾ HOẠCH", "Thực hiện Kế hoạch số"))
        self.preamble = norm(
            "Thực hiện Kế hoạch số " + between(text, "Thực hiện Kế hoạch số", "I. MỤC ĐÍCH")
        )
        self.closing = norm(
            "Trên đây là Kế hoạch" + between(text, "Trên đây là Kế hoạch", "Nơi nhận:")
        )
        tail = between(text, "Nơi nhận:", None)
        self.recipients = [
            norm(line).lstrip("- ").rstrip(";.").strip()
            for line in tail.splitlines()
            if line.strip().startswith("-")
        ]
        signature = [
            norm(line)
            for line in tail.splitlines()
            if norm(line) and not line.strip().startswith("-")
        ]
        self.signer_title, self.signer_name = signature[0], signature[-1]


@pytest.fixture(scope="module")
def seed() -> Seed:
    path = _seed_path()
    if path is None:
        pytest.skip(f"seed {SEED_NAME} not found next to the repo and KEHOACH_SEED not set")
    return Seed(path.read_text(encoding="utf-8"))


def _load(path: Path, model):  # type: ignore[no-untyped-def]
    return model.model_validate(yaml.safe_load(path.read_text(encoding="utf-8")))


@pytest.fixture(scope="module")
def plan() -> Plan:
    return _load(PLAN_FILE, Plan)


@pytest.fixture(scope="module")
def parent() -> Plan:
    return _load(PARENT_FILE, Plan)


@pytest.fixture(scope="module")
def registry() -> Registry:
    return _load(REGISTRY_FILE, Registry)


def yearly(rule) -> tuple[int, int]:  # type: ignore[no-untyped-def]
    assert rule.rule == "yearly", f"expected a yearly rule, got {rule.rule}"
    return rule.day, rule.month


def seed_yearly_deadline(sentence: str) -> tuple[int, int]:
    match = re.search(r"trước ngày (\d{1,2})/(\d{1,2})/? hằng năm", sentence)
    assert match, f"no yearly deadline in: {sentence}"
    return int(match.group(1)), int(match.group(2))


# ---------------------------------------------------------------- the seed parses


def test_seed_parses_into_the_known_shape(seed: Seed) -> None:
    # Guards the parser itself: if these fail, the comparisons below mean nothing.
    assert len(seed.objectives) == 4
    assert list(seed.assignments) == [f"II.{n}" for n in range(1, 7)]
    assert [len(b) for _, b in seed.assignments.values()] == [2, 1, 2, 2, 4, 1]
    assert list(seed.organisation) == ["III.1", "III.2"]
    assert len(seed.recipients) == 7


# ---------------------------------------------------------------- document


def test_document_header(seed: Seed, plan: Plan) -> None:
    assert plan.document.type == "KH"
    assert plan.document.number is None and plan.document.date is None
    assert plan.document.date_note
    assert plan.document.issuer_unit == "ubnd-huyen-ha-lang"
    assert norm(plan.document.summary) == seed.summary
    assert norm(plan.preamble or "") == seed.preamble
    assert plan.as_of > dt.date(2022, 10, 21), "the plan implements 2720/KH-UBND of 21/10/2022"


def test_signer(seed: Seed, plan: Plan) -> None:
    assert plan.document.signer.name == seed.signer_name == "Nguyễn Phương Huy"
    assert plan.document.signer.title == seed.signer_title


def test_four_objectives_verbatim(seed: Seed, plan: Plan) -> None:
    assert [norm(o) for o in plan.objectives] == seed.objectives


def test_closing_verbatim(seed: Seed, plan: Plan) -> None:
    assert norm(plan.closing or "") == seed.closing


# ---------------------------------------------------------------- basis


def _seed_document_numbers(flat: str) -> set[str]:
    state = re.findall(r"\b\d+/(?:\d{4}/)?[A-ZĐ][A-Za-zĐđ0-9]*(?:-[A-Za-zĐđ]+)*", flat)
    party = re.findall(r"\b\d+-[A-Z]+/[A-Z]+\b", flat)
    return set(state) | set(party)


def test_basis_numbers_match_the_seed(seed: Seed, plan: Plan) -> None:
    numbers = {b.number for b in plan.basis if b.number}
    assert _seed_document_numbers(seed.flat) <= numbers, "a document cited in the seed is missing"
    for item in plan.basis:
        if item.number:
            assert item.number in seed.flat, f"{item.number} is not written so in the seed"
        if item.date:
            assert f"{item.date.day}/{item.date.month}/{item.date.year}" in seed.flat, item.id


def test_basis_chain(plan: Plan, parent: Plan) -> None:
    by_number = {b.number: b for b in plan.basis}
    ids = {b.id: b.number for b in plan.basis}

    def implements(number: str) -> set[str]:
        return {ids[i] for i in by_number[number].implements}

    assert implements("2720/KH-UBND") == {"1492/QĐ-TTg", "78-KH/TU"}
    assert implements("1492/QĐ-TTg") == {"02-KL/TW"}
    assert implements("78-KH/TU") == {"02-KL/TW"}
    assert implements("02-KL/TW") == {"47-CT/TW"}
    assert by_number["204/KH-UBND"].role == "continues"
    assert plan.parent_plan == parent.id
    assert parent.document.number == "2720/KH-UBND"
    assert parent.document.date == dt.date(2022, 10, 21)


# ---------------------------------------------------------------- section II


def test_six_assignment_groups_with_headings_and_targets(seed: Seed, plan: Plan) -> None:
    encoded = {a.section: a for a in plan.assignments if a.section.startswith("II.")}
    assert list(encoded) == list(seed.assignments)
    for section, (heading, _) in seed.assignments.items():
        assignment = encoded[section]
        assert norm(assignment.heading) == heading, section
        kind, target = EXPECTED_TARGETS[section]
        assert getattr(assignment.to, kind) == target, section


def test_every_bullet_of_section_two_is_a_task(seed: Seed, plan: Plan) -> None:
    encoded = {a.section: a for a in plan.assignments}
    for section, (_, expected) in seed.assignments.items():
        assert [norm(t.text) for t in encoded[section].tasks] == expected, section


def test_request_mode_follows_de_nghi(seed: Seed, plan: Plan) -> None:
    encoded = {a.section: a for a in plan.assignments}
    for section, (heading, _) in seed.assignments.items():
        expected = "request" if heading.startswith("Đề nghị") else "order"
        assert encoded[section].mode == expected, section
    assert encoded["II.6"].mode == "request"


def test_yearly_recurrence_where_the_text_says_hang_nam(seed: Seed, plan: Plan) -> None:
    for assignment in plan.assignments:
        for task in assignment.tasks:
            says_yearly = re.search(r"h[àằ]ng năm", task.text, re.IGNORECASE) is not None
            assert (task.recurrence == "yearly") == says_yearly, task.id


# ---------------------------------------------------------------- section III


def test_every_item_of_section_three_is_encoded(seed: Seed, plan: Plan) -> None:
    texts: dict[str, list[str]] = {}
    for item in [*plan.deliverables, *plan.consolidations]:
        if item.section:
            texts.setdefault(item.section, []).append(norm(item.text or ""))
    for section, expected in seed.organisation.items():
        assert " ".join(texts.get(section, [])) == expected, section


def test_each_body_writes_its_own_plan(plan: Plan) -> None:
    sub_plans = [d for d in plan.deliverables if d.kind == "sub_plan"]
    assert len(sub_plans) == 1
    assert sub_plans[0].from_assignments == "all"
    assert sub_plans[0].routing.to == "ubnd-huyen-ha-lang"


def test_yearly_report_to_ubnd_huyen_via_cong_an_huyen(seed: Seed, plan: Plan) -> None:
    report = plan.deliverable("bao-cao-nam")
    assert report is not None and report.kind == "report"
    assert report.frequency == "yearly"
    assert report.from_assignments == "all"
    assert yearly(report.deadline) == seed_yearly_deadline(seed.organisation["III.1"]) == (10, 9)
    assert report.deadline.policy == "next_working_day"
    assert report.deadline.phrase and report.deadline.phrase in seed.flat
    assert (report.routing.to, report.routing.via) == ("ubnd-huyen-ha-lang", "ca-huyen-ha-lang")
    assert report.template and plan.template(report.template) is not None


def test_consolidation_to_ubnd_tinh_via_cong_an_tinh(seed: Seed, plan: Plan, parent: Plan) -> None:
    (consolidation,) = plan.consolidations
    assert consolidation.consolidates == "bao-cao-nam"
    assert consolidation.by == "ca-huyen-ha-lang"
    assert (
        yearly(consolidation.deadline)
        == seed_yearly_deadline(seed.organisation["III.2"])
        == (25, 9)
    )
    assert consolidation.deadline.policy == "next_working_day"
    assert consolidation.deadline.phrase and consolidation.deadline.phrase in seed.flat
    assert (consolidation.routing.to, consolidation.routing.via) == (
        "ubnd-tinh-cao-bang",
        "ca-tinh-cao-bang",
    )
    assert "630/QĐ-TTg" in (consolidation.combined_with or "")
    assert norm(consolidation.combined_with or "").casefold() in seed.flat.casefold()
    # The district's consolidated report is what the province's plan asks of it.
    assert consolidation.upward is not None
    assert consolidation.upward.plan == parent.id
    upward = parent.deliverable(consolidation.upward.deliverable)
    assert upward is not None and upward.kind == "report"
    assert yearly(upward.deadline) == (25, 9)
    assert (upward.routing.to, upward.routing.via) == ("ubnd-tinh-cao-bang", "ca-tinh-cao-bang")
    assert upward.template and parent.template(upward.template) is not None
    district_fields = {f.id for f in plan.template("bao-cao-pccc-nam").fields}  # type: ignore[union-attr]
    assert {f.id for f in parent.template(upward.template).fields} == district_fields  # type: ignore[union-attr]


# ---------------------------------------------------------------- events and duties


def test_yearly_events(seed: Seed, plan: Plan) -> None:
    day_match = re.search(r"Ngày toàn dân phòng cháy, chữa cháy \((\d+)/(\d+)\)", seed.flat)
    month_match = re.search(r"Tháng an toàn PCCC \(tháng (\d+)\)", seed.flat)
    assert day_match and month_match
    day, month = int(day_match.group(1)), int(day_match.group(2))
    whole_month = int(month_match.group(1))
    dated = [e for e in plan.events if e.date is not None]
    monthly = [e for e in plan.events if e.month is not None]
    assert [(e.date.day, e.date.month, e.date.rule) for e in dated] == [(day, month, "yearly")]  # type: ignore[union-attr]
    assert [e.month for e in monthly] == [whole_month]


def test_training_and_review_duties(seed: Seed, plan: Plan) -> None:
    duties = {d.who.group: d for d in plan.duties}
    training = duties["phong-ban-nganh-huyen"]
    assert training.target == "100%" and "100%" in seed.flat
    review = duties["xa-thi-tran-ha-lang"]
    for duty in (training, review):
        assert duty.frequency == "yearly"
        assert norm(duty.text).rstrip(".;") in seed.flat  # an excerpt of a task sentence
        template = plan.template(duty.template or "")
        assert template is not None and template.field(duty.measured_by or "") is not None
    assert plan.template("bao-cao-pccc-nam").field(training.measured_by).type == "percent"  # type: ignore[union-attr,arg-type]


# ---------------------------------------------------------------- recipients


def test_recipients_line_by_line(seed: Seed, plan: Plan, registry: Registry) -> None:
    assert [norm(r.name) for r in plan.recipients] == seed.recipients
    units = {u.id for u in registry.units}
    groups = {g.id for g in registry.groups} | {g.id for g in plan.groups}
    for recipient, line in zip(plan.recipients, seed.recipients, strict=True):
        if "(B/c)" in line:
            assert recipient.purpose == "report", line
        if line.startswith("Lưu:"):
            assert recipient.purpose == "archive", line
            assert {u for u in recipient.units} >= {"ca-huyen-ha-lang"}, "Lưu: … CAH"
        assert set(recipient.units) <= units, line
        assert set(recipient.groups) <= groups, line
