"""Report fields that apply to some units: asked, required and counted only there.

The seed plan asks fires, deaths and damage of the communes and the police (not of the
offices or the mass organisations) and the share of staff trained of the offices, as a
ratio of two sums. Checked on the engine's submission path and on the portal's form.
"""

from __future__ import annotations

from contextlib import nullcontext

import pytest

from engine.lifecycle import activate, record_submission
from engine.lifecycle.submissions import SubmissionRejected
from engine.reports import aggregate
from engine.schema import ReportTemplate
from engine.store import session_scope
from engine.store.models import Submission
from portal.access import _OBLIGATION_WITH_CYCLE
from portal.view import answer_for
from tests.lifecycle_factory import DEFINITIONS, obligation, store_files, vn

PLAN = "ha-lang-pccc-2022"
FILES = [
    DEFINITIONS / "registry_cao_bang.yaml",
    DEFINITIONS / "cao_bang_2720_kh_ubnd.yaml",
    DEFINITIONS / "ha_lang_pccc_2022.yaml",
    DEFINITIONS / "calendar_vn.yaml",
]
VETERANS = "hoi-cuu-chien-binh-huyen-ha-lang"
COMMUNE = "ubnd-xa-minh-long"
OFFICE = "phong-noi-vu-ha-lang"
COMMON = {
    "so-lop-huan-luyen": "2",
    "so-nguoi-duoc-huan-luyen": "40",
    "so-tin-bai-tuyen-truyen": "3",
    "hoat-dong-thang-an-toan": "Đã tổ chức",
    "danh-gia-chung": "Đã triển khai",
}
FIRES = {
    "so-vu-chay": "1",
    "so-nguoi-chet": "0",
    "so-nguoi-bi-thuong": "0",
    "thiet-hai-uoc-tinh": "5",
}


@pytest.fixture
def seed_url(sqlite_url):
    store_files(sqlite_url, *FILES)
    with session_scope(sqlite_url) as session:
        activate(session, "cao-bang-2720-2022", now=vn(2024, 1, 3), years=[2024])
        activate(session, PLAN, now=vn(2024, 1, 3), years=[2024])
    return sqlite_url


def _send(url: str, unit: str, values: dict[str, str]) -> Submission:
    with session_scope(url) as session:
        target = obligation(session, unit, "bao-cao-nam", "2024", PLAN)
        return record_submission(session, target.id, values=values, now=vn(2024, 9, 5))


def test_a_mass_organisation_is_not_asked_fires_and_its_figures_are_not_kept(seed_url):
    submission = _send(seed_url, VETERANS, {**COMMON, **FIRES})
    assert "so-vu-chay" not in submission.values  # not its field: not stored, never summed
    assert submission.values["so-lop-huan-luyen"] == 2


def test_a_commune_must_give_its_fires(seed_url):
    with pytest.raises(SubmissionRejected) as refused:
        _send(
            seed_url, COMMUNE, {**COMMON, "so-doi-dan-phong-ra-soat": "2", "mo-hinh-an-toan": "1"}
        )
    assert "so-vu-chay" in refused.value.errors
    assert "tong-so-cbccvc" not in refused.value.errors  # an office's field
    sent = _send(
        seed_url,
        COMMUNE,
        {**COMMON, **FIRES, "so-doi-dan-phong-ra-soat": "2", "mo-hinh-an-toan": "1"},
    )
    assert sent.values["so-vu-chay"] == 1


def test_an_office_gives_its_staff_and_never_types_the_rate(seed_url):
    with pytest.raises(SubmissionRejected) as refused:
        _send(seed_url, OFFICE, {**COMMON, "so-doi-dan-phong-ra-soat": "1"})
    assert {"tong-so-cbccvc", "so-cbccvc-hoc-tap"} <= set(refused.value.errors)
    assert "ty-le-cbccvc-hoc-tap" not in refused.value.errors  # computed, never asked
    assert "so-vu-chay" not in refused.value.errors


def _form_fields(url: str, unit: str) -> list[str]:
    with session_scope(url) as session:
        target = obligation(session, unit, "bao-cao-nam", "2024", PLAN)
        row = session.execute(_OBLIGATION_WITH_CYCLE, {"obligation_id": target.id}).first()
        from engine.definitions_cache import plan_for_key

        plan = plan_for_key(session, row.plan_version_id, row.plan_content_hash)
        answer = answer_for(plan, row, lambda: nullcontext(session))
        assert answer is not None
        return [f.id for f in answer.fields]


def test_the_portal_form_shows_only_the_units_fields(seed_url):
    veterans, commune, office = (_form_fields(seed_url, u) for u in (VETERANS, COMMUNE, OFFICE))
    assert "so-vu-chay" not in veterans and "so-vu-chay" in commune
    assert "tong-so-cbccvc" in office and "tong-so-cbccvc" not in commune
    assert "ty-le-cbccvc-hoc-tap" not in office
    shared = [f for f in veterans if f != "tep-dinh-kem"]
    assert all(f in commune and f in office for f in shared)  # the rest as it was


TEMPLATE = ReportTemplate.model_validate(
    {
        "id": "mau",
        "title": "Mẫu",
        "fields": [
            {
                "id": "so-vu",
                "label": "Số vụ",
                "type": "integer",
                "aggregate": "sum",
                "applies_to": {"groups": ["cac-xa"]},
            },
            {"id": "tong", "label": "Tổng số", "type": "integer", "aggregate": "sum"},
            {"id": "da-hoc", "label": "Đã học", "type": "integer", "aggregate": "sum"},
            {"id": "ty-le", "label": "Tỷ lệ", "type": "percent", "ratio_of": ["da-hoc", "tong"]},
        ],
    }
)


def test_a_rate_is_the_ratio_of_two_sums_not_a_mean_of_rates():
    reports = [("a", {"tong": 10, "da-hoc": 10}), ("b", {"tong": 100, "da-hoc": 90})]
    result = aggregate(TEMPLATE, reports)
    assert result["ty-le"] == pytest.approx(100 * 100 / 110, abs=0.01)  # a mean would say 95


def test_a_sum_counts_only_the_units_the_field_applies_to():
    reports = [("xa-a", {"so-vu": 3}), ("hoi", {"so-vu": 29}), ("xa-b", {"so-vu": 0})]
    applies = {"so-vu": {"xa-a", "xa-b"}}
    assert aggregate(TEMPLATE, reports, applies)["so-vu"] == 3
