"""Five plan documents written in the styles real plans use, imported field by field:
what their authors meant (units, tasks, deadlines, routing, recipients) against what the
draft holds.  Precision and recall over all of them are printed; every expected fact
must be found, and nothing found may be wrong."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from engine.importer.api import draft_yaml, import_document, registry_draft_yaml
from engine.importer.yamlout import Map
from engine.loader import load, read_files
from engine.schema_authority import Signer
from tests.import_docs import DATA, build_docx, pdf_of

REGISTRY = DATA / "registry_mau.yaml"

EXPECTED: dict[str, dict[str, Any]] = {
    # A post-2025 provincial plan: departments and communes in section V, monthly reports.
    "tinh_cao_bang_cho_bien_gioi_2025.txt": {
        "document": {
            "type": "KH",
            "number": "134/KH-UBND",
            "date": "2025-08-15",
            "place": "Cao Bằng",
            "issuer_unit": "ubnd-tinh-cao-bang",
            "parent_body": None,
            "summary": "Phát triển thương mại biên giới và chợ biên giới trên địa bàn tỉnh Cao Bằng năm 2025 - 2026",
        },
        "signer": (("TM. ỦY BAN NHÂN DÂN", "KT. CHỦ TỊCH"), "PHÓ CHỦ TỊCH", "Nông Thanh Tùng"),
        "basis": {"14/2018/NĐ-CP": "2018-01-23", "1210/QĐ-TTg": "2024-10-15"},
        "assignments": [
            ("V.1", "unit=so-cong-thuong-cao-bang", None, ["monthly"]),
            ("V.2", "unit=so-tai-chinh-cao-bang", None, ["ongoing"]),
            ("V.3", "unit=so-xay-dung-cao-bang", None, ["ongoing"]),
            ("V.4", "unit=ca-tinh-cao-bang", None, ["ongoing"]),
            ("V.5", "group=xa-phuong-cao-bang", None, ["ongoing", "ongoing"]),
            ("V.6.a", "unit=so-y-te-cao-bang", None, ["ongoing"]),
            ("V.6.b", "unit=so-noi-vu-cao-bang", None, ["ongoing"]),
            ("V.6.c", "unit=so-nn-mt-cao-bang", None, ["ongoing"]),
            ("V.6.d", "unit=vp-ubnd-tinh-cao-bang", None, ["ongoing"]),
            ("V.6.đ", "unit=so-tai-chinh-cao-bang", None, ["ongoing"]),
        ],
        "deliverables": [("report", "monthly", "monthly 20", "so-cong-thuong-cao-bang", None)],
        "consolidations": [("so-cong-thuong-cao-bang", "monthly 25", "ubnd-tinh-cao-bang", None)],
        "recipients": [
            ("Bộ Công Thương (b/c)", "report"),
            ("Chủ tịch, các PCT UBND tỉnh", "information"),
            ("Các sở, ban, ngành tỉnh", "information"),
            ("UBND các xã, phường", "action"),
            ("Lưu: VT, SCT", "archive"),
        ],
        "missing": [],
        "on_request": [],
    },
    # A ministry plan whose tasks are an appendix table (Markdown), after the signature.
    "bo_cong_thuong_hang_viet_2024.txt": {
        "document": {
            "type": "KH",
            "number": "1520/KH-BCT",
            "date": "2024-06-10",
            "place": "Hà Nội",
            "issuer_unit": "bo-cong-thuong",
            "parent_body": None,
            "summary": "Triển khai Cuộc vận động “Người Việt Nam ưu tiên dùng hàng Việt Nam” của ngành Công Thương giai đoạn 2024 - 2025",
        },
        "signer": (("KT. BỘ TRƯỞNG",), "THỨ TRƯỞNG", "Phan Thị Thắng"),
        "basis": {"107-KL/TW": "2024-04-24"},
        "assignments": [
            ("PL1", "unit=bct-vu-ttn", None, ["once Quý IV năm 2024"]),
            ("PL1", "unit=bct-cuc-xttm", None, ["once Tháng 8/2024"]),
            ("PL1", "unit=bct-cuc-cn", None, ["ongoing 2024 - 2025"]),
            ("PL1", "unit=bct-van-phong", None, ["ongoing Thường xuyên"]),
            # "Hằng năm" names no time a task is done by: commented out, with why
            ("PL1", "unit=bct-vu-khtc", None, ["yearly # Hằng năm"]),
        ],
        "deliverables": [
            ("sub_plan", "once", "after_activation 30 assumed", "bo-cong-thuong", None),
            ("report", "half_yearly", "half_year_end 0 assumed", "bo-cong-thuong", "bct-vu-ttn"),
        ],
        "consolidations": [],
        "recipients": [
            ("Ban Bí thư (để b/c)", "report"),
            ("Bộ trưởng (để b/c)", "report"),
            ("Các đơn vị thuộc Bộ", "information"),
            ("Sở Công Thương các tỉnh, thành phố", "information"),
            ("Lưu: VT, TTTN", "archive"),
        ],
        "missing": [],
        "on_request": ["đột xuất"],
    },
    # A department plan as DOCX, a draft with its number and day left blank.
    "so_cong_thuong_hoa_chat_2026.docx.txt": {
        "document": {
            "type": "KH",
            "number": None,
            "date": None,
            "place": "Cao Bằng",
            "issuer_unit": "so-cong-thuong-cao-bang",
            "parent_body": "UBND tỉnh Cao Bằng",
            "summary": "Kiểm tra an toàn hóa chất tại các cơ sở trong khu công nghiệp năm 2026",
        },
        "signer": (("KT. GIÁM ĐỐC",), "PHÓ GIÁM ĐỐC", "Hoàng Văn Nam"),
        "basis": {
            "113/2017/NĐ-CP": "2017-10-09",
            "35/2022/NĐ-CP": "2022-05-28",
            "45/KH-UBND": "2026-02-20",
        },
        "assignments": [
            ("III.1", "unit=sct-phong-ktat", None, ["ongoing"]),
            ("III.2", "unit=sct-phong-qltm", None, ["ongoing"]),
            ("III.3", "unit=sct-van-phong", None, ["ongoing"]),
            ("III.4", "unit=moi-bql-cac-kcn-tinh", "request", ["ongoing"]),
        ],
        "deliverables": [("report", "once", "fixed 2026-06-30", "sct-phong-ktat", None)],
        "consolidations": [("sct-phong-ktat", "fixed 2026-07-15", "ubnd-tinh-cao-bang", None)],
        "recipients": [
            ("UBND tỉnh (b/c)", "report"),
            ("Giám đốc Sở", "information"),
            ("BQL các KCN tỉnh", "information"),
            ("Các phòng thuộc Sở", "information"),
            ("Lưu: VT, KTAT", "archive"),
        ],
        "missing": ["BQL các KCN tỉnh"],
        "on_request": [],
    },
    # A short training plan as DOCX; the communes send a list by a fixed day.
    "so_noi_vu_boi_duong_2025.docx.txt": {
        "document": {
            "type": "KH",
            "number": "210/KH-SNV",
            "date": "2025-09-05",
            "place": "Cao Bằng",
            "issuer_unit": "so-noi-vu-cao-bang",
            "parent_body": "UBND tỉnh Cao Bằng",
            "summary": "Tổ chức lớp bồi dưỡng kỹ năng số cho công chức cấp xã năm 2025",
        },
        "signer": (("KT. GIÁM ĐỐC",), "PHÓ GIÁM ĐỐC", "Lê Thị Hoa"),
        "basis": {"88/KH-UBND": "2025-07-10"},
        "assignments": [
            ("III.1", "unit=snv-phong-ccvc", None, ["ongoing"]),
            ("III.2", "unit=snv-van-phong", None, ["ongoing"]),
            ("III.3", "group=xa-phuong-cao-bang", None, ["ongoing"]),
        ],
        "deliverables": [
            ("report", "once", "fixed 2025-09-25", "so-noi-vu-cao-bang", "snv-phong-ccvc")
        ],
        "consolidations": [],
        "recipients": [
            ("UBND tỉnh (b/c)", "report"),
            ("UBND các xã, phường", "action"),
            ("Lưu: VT, CCVC", "archive"),
        ],
        "missing": [],
        "on_request": [],
    },
    # An inspection plan with irregular headings, issued by a team under a department.
    "doan_kiem_tra_attp_tet_2026.txt": {
        "document": {
            "type": "KH",
            "number": "03/KH-ĐKT",
            "date": "2025-12-02",
            "place": "Cao Bằng",
            "issuer_unit": "moi-doan-kiem-tra-lien-nganh",
            "parent_body": "Sở Y tế tỉnh Cao Bằng",
            "summary": "Kiểm tra an toàn thực phẩm dịp Tết Nguyên đán Bính Ngọ năm 2026",
        },
        "signer": ((), "TRƯỞNG ĐOÀN", "Nguyễn Văn Bình"),
        "basis": {"812/QĐ-SYT": "2025-11-25"},
        "assignments": [
            ("IV.1", "unit=syt-phong-nvy", None, ["ongoing"]),
            ("IV.2", "unit=syt-cdc", None, ["ongoing"]),
            ("IV.3", "unit=ca-tinh-cao-bang", "request", ["ongoing"]),
            ("IV.4", "unit=moi-cac-thanh-vien-doan", None, ["ongoing"]),
        ],
        "deliverables": [("report", "once", "after_activation 5", "so-y-te-cao-bang", None)],
        "consolidations": [],
        "recipients": [
            ("Giám đốc Sở Y tế (b/c)", "report"),
            ("Các thành viên Đoàn", "information"),
            ("Lưu: ĐKT", "archive"),
        ],
        "missing": ["Đoàn kiểm tra liên ngành", "Các thành viên Đoàn"],
        "on_request": ["đột xuất"],
    },
}


def _rule(rule: dict[str, Any]) -> str:
    values = {
        "monthly": [rule.get("day")],
        "yearly": [rule.get("day"), rule.get("month")],
        "fixed": [rule.get("date")],
        "after_activation": [rule.get("days")],
        "quarter_end": [rule.get("offset_days")],
        "half_year_end": [rule.get("offset_days")],
    }[rule["rule"]]
    text = " ".join([rule["rule"], *(str(v) for v in values)])
    return text + (" assumed" if rule.get("assumed") else "")


def _off(entry: Map, key: str) -> Any:
    return next((e.value for e in entry.entries if e.key == key and e.off), None)


def _target(value: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in value.items())


def facts_of(expected: dict[str, Any]) -> set[tuple[Any, ...]]:
    out: set[tuple[Any, ...]] = {("document", k, v) for k, v in expected["document"].items()}
    out.add(("signer", *expected["signer"]))
    out |= {("basis", n, d) for n, d in expected["basis"].items()}
    for index, (section, target, mode, tasks) in enumerate(expected["assignments"]):
        out.add(("assignment", index, section, target, mode))
        out |= {("task", index, i, t) for i, t in enumerate(tasks)}
    out |= {("deliverable", i, *d) for i, d in enumerate(expected["deliverables"])}
    out |= {("consolidation", i, *c) for i, c in enumerate(expected["consolidations"])}
    out |= {("recipient", i, *r) for i, r in enumerate(expected["recipients"])}
    out |= {("missing", name) for name in expected["missing"]}
    out |= {("on_request", i, w) for i, w in enumerate(expected["on_request"])}
    return out


def extracted(plan: Map, registry_draft: Map | None) -> dict[str, Any]:
    """The draft in the shape of EXPECTED (the plan's own Map: commented-out entries too)."""
    data = plan.data()
    doc = data["document"]
    signer = doc["signer"]
    found: dict[str, Any] = {
        "document": {k: (str(doc[k]) if k == "date" and doc[k] else doc[k]) for k in EXPECTED_KEYS},
        # the authority lines as printed, in either form of the schema
        "signer": (
            tuple(Signer.model_validate(signer).lines()),
            signer.get("title"),
            signer.get("name"),
        ),
        "basis": {b["number"]: str(b["date"]) for b in data.get("basis", []) if b["number"]},
        "assignments": [],
        "deliverables": [],
        "consolidations": [],
        "recipients": [(r["name"], r["purpose"]) for r in data.get("recipients", [])],
        "missing": [u["name"] for u in (registry_draft.data()["units"] if registry_draft else [])],
        "on_request": [r.get("when") for r in (_off(plan, "on_request") or [])],
    }
    for entry in plan.get("assignments") or []:
        tasks = []
        for task in entry.get("tasks"):
            # the time as the draft writes it in ``due``, or "# …" where it is commented out
            due, unread = task.get("due"), _off(task, "due")
            tasks.append(
                task.get("recurrence")
                + (f" {due}" if due else "")
                + (f" # {unread}" if unread else "")
            )
        found["assignments"].append(
            (entry.get("section"), _target(entry.data()["to"]), entry.get("mode"), tasks)
        )
    for d in data.get("deliverables", []):
        found["deliverables"].append(
            (
                d["kind"],
                d["frequency"],
                _rule(d["deadline"]),
                d["routing"]["to"],
                d["routing"].get("via"),
            )
        )
    for c in data.get("consolidations", []):
        found["consolidations"].append(
            (c["by"], _rule(c["deadline"]), c["routing"]["to"], c["routing"].get("via"))
        )
    return found


EXPECTED_KEYS = ("type", "number", "date", "place", "issuer_unit", "parent_body", "summary")


@pytest.fixture(scope="module")
def registry():
    catalog, problems = read_files([REGISTRY])
    assert not problems
    return catalog.registries["mau-nhap-van-ban"].definition


@pytest.fixture(scope="module")
def drafts(registry, tmp_path_factory):
    folder = tmp_path_factory.mktemp("import-docs")
    out = {}
    for name in EXPECTED:
        source = DATA / name
        if name.endswith(".docx.txt"):
            source = build_docx(source, folder / name.replace(".docx.txt", ".docx"))
        out[name] = import_document(source, registry)
    return out


def test_every_document_reads_as_its_author_meant(drafts):
    tp = fp = fn = 0
    failures: list[str] = []
    for name, expected in EXPECTED.items():
        draft = drafts[name]
        want = facts_of(expected)
        got = facts_of(extracted(draft.plan, draft.registry_draft))
        tp += len(want & got)
        fp += len(got - want)
        fn += len(want - got)
        failures += [f"{name}: thiếu {fact}" for fact in sorted(want - got, key=str)]
        failures += [f"{name}: thừa hoặc sai {fact}" for fact in sorted(got - want, key=str)]
    precision, recall = tp / (tp + fp), tp / (tp + fn)
    print(
        f"\nimport, {len(EXPECTED)} documents: {tp} facts right, {fp} wrong or extra, {fn} missed; "
        f"precision {precision:.3f}, recall {recall:.3f}"
    )
    for failure in failures:
        print(failure)
    assert failures == []


@pytest.mark.parametrize("name", list(EXPECTED))
def test_each_draft_validates_once_its_missing_units_are_added(name, drafts, tmp_path):
    draft = drafts[name]
    (tmp_path / "plan.yaml").write_text(draft_yaml(draft), encoding="utf-8")
    registry_text = REGISTRY.read_text(encoding="utf-8")
    extra = registry_draft_yaml(draft)
    if extra is not None:
        data = yaml.safe_load(registry_text)
        data["units"] += yaml.safe_load(extra)["units"]
        registry_text = yaml.safe_dump(data, allow_unicode=True)
    (tmp_path / "registry.yaml").write_text(registry_text, encoding="utf-8")
    catalog = load([tmp_path / "plan.yaml", tmp_path / "registry.yaml"], siblings=False)
    assert len(catalog.plans) == 1
    # every task time the draft writes is one the plan tracks (engine.tasks)
    plan = next(iter(catalog.plans.values())).definition
    written = [
        t["due"]
        for a in yaml.safe_load(draft_yaml(draft)).get("assignments", [])
        for t in a["tasks"]
        if "due" in t
    ]
    assert sorted(t.phrase for t in plan.tracked.tasks) == sorted(written)


def test_a_unit_missing_from_the_registry_is_drafted_and_marked(drafts):
    draft = drafts["so_cong_thuong_hoa_chat_2026.docx.txt"]
    text = draft_yaml(draft)
    assert "to: {unit: moi-bql-cac-kcn-tinh}" in text
    assert "“BQL các KCN tỉnh” không có trong danh bạ" in text
    registry = yaml.safe_load(registry_draft_yaml(draft) or "")
    assert registry["kind"] == "registry"
    assert [u["id"] for u in registry["units"]] == ["moi-bql-cac-kcn-tinh"]


def test_what_the_schema_cannot_hold_yet_is_commented_out(drafts):
    text = draft_yaml(drafts["bo_cong_thuong_hang_viet_2024.txt"])
    # a task time the schema reads is written; one it cannot read is a note saying why
    assert "        due: Quý IV năm 2024\n" in text
    assert "        # due: Hằng năm\n" in text
    assert "thời gian “Hằng năm” chưa ghi được vào due: đây là thời hạn lặp lại (hằng năm)" in (
        " ".join(line.strip("# ") for line in text.splitlines())
    )
    # on-request reports are notes; a signer chain is written
    assert "# on_request:" in text and "#     when: đột xuất" in text
    chain = yaml.safe_load(draft_yaml(drafts["tinh_cao_bang_cho_bien_gioi_2025.txt"]))
    assert chain["document"]["signer"]["chain"] == ["TM. ỦY BAN NHÂN DÂN", "KT. CHỦ TỊCH"]
    for draft in drafts.values():
        assert "on_request" not in yaml.safe_load(draft_yaml(draft))


def test_the_docx_and_its_pdf_give_the_same_draft(drafts, registry):
    from_pdf = import_document(pdf_of(DATA / "so_cong_thuong_hoa_chat_2026.docx.txt"), registry)
    assert extracted(from_pdf.plan, from_pdf.registry_draft) == extracted(
        drafts["so_cong_thuong_hoa_chat_2026.docx.txt"].plan,
        drafts["so_cong_thuong_hoa_chat_2026.docx.txt"].registry_draft,
    )


def test_every_point_to_check_is_both_in_the_report_and_above_its_value(drafts):
    for name, draft in drafts.items():
        text = draft_yaml(draft)
        unsure = [f for f in draft.findings if f.kind == "chưa chắc"]
        assert text.count("# KIỂM TRA (") == len(unsure), name
        for finding in unsure:
            where = f"{draft.source.unit} {finding.line}" if finding.line else "toàn văn bản"
            first_words = " ".join(finding.text.split()[:3])
            assert f"# KIỂM TRA ({where}): {first_words}" in text, (name, finding)
