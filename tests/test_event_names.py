"""What the Prefect UI shows of a plan in its event feed: the plan's short title, never
its id; the ids stay machine ids (the events themselves are tested on a real server in
test_operator_window.py, test_report_upward_event.py and test_closing.py)."""

from __future__ import annotations

from pathlib import Path

from tests.lifecycle_factory import DATA, DISTRICT, PROVINCE, store_files
from workflows.common import plan_short_name
from workflows.events import cycle_resource, plan_resource, related_resources


def test_a_plan_is_named_by_its_short_title_else_its_number_else_type_and_id(
    sqlite_url: str, tmp_path: Path
) -> None:
    district = (DATA / "district.yaml").read_text(encoding="utf-8")
    province = (DATA / "province.yaml").read_text(encoding="utf-8")
    assert district.count("  number: 15/KH-UBND\n") == 1
    assert province.count("  number: 20/KH-UBND\n") == 1
    paths = [DATA / "registry.yaml", tmp_path / "province.yaml", tmp_path / "district.yaml"]
    paths[1].write_text(province.replace("  number: 20/KH-UBND\n", ""), encoding="utf-8")
    paths[2].write_text(
        district.replace(
            "  number: 15/KH-UBND\n", "  number: 15/KH-UBND\n  short_name: Kế hoạch PCCC\n"
        ),
        encoding="utf-8",
    )
    store_files(sqlite_url, *paths)
    assert plan_short_name(sqlite_url, DISTRICT) == "Kế hoạch PCCC"
    # no short name and no number: "Kế hoạch" alone would not tell plans apart
    assert plan_short_name(sqlite_url, PROVINCE) == f"Kế hoạch {PROVINCE}"
    assert plan_short_name(sqlite_url, "khong-co") == "khong-co"

    title = plan_short_name(sqlite_url, DISTRICT)
    assert plan_resource(DISTRICT, title) == {
        "prefect.resource.id": f"kehoach.plan.{DISTRICT}",
        "prefect.resource.name": "Kế hoạch PCCC",
    }
    cycle = cycle_resource(DISTRICT, title, "2027")
    assert cycle["prefect.resource.id"] == f"kehoach.cycle.{DISTRICT}.2027"
    assert cycle["prefect.resource.name"] == "Kỳ năm 2027 · Kế hoạch PCCC"
    related = related_resources(DISTRICT, title, "2027", "xa-a", "Ủy ban nhân dân xã A")
    assert [r["prefect.resource.name"] for r in related] == [
        "Kế hoạch PCCC",
        "Kỳ năm 2027 · Kế hoạch PCCC",
        "Ủy ban nhân dân xã A",
    ]
