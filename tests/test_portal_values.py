"""The portal form under values no page or document can hold (issue 13).

Before engine.values: a 400-digit decimal was stored as Infinity and every page of the
link answered 500 afterwards; a 5,000-digit integer gave a 500; a control character was
stored and stopped the consolidation. Now each is a message next to its field, with
what was typed kept and nothing stored; and rows already stored with such values (edited
in the database) still show, so the unit can correct its answer.
"""

from __future__ import annotations

import shutil

import pytest
from sqlalchemy import select, text

from engine.store.db import session_scope
from engine.store.models import Submission
from tests import test_portal_support as support
from tests.test_portal import client_for, open_form, post_report
from tests.test_portal_support import vn

pytestmark = pytest.mark.filterwarnings("ignore:Using `httpx` with `starlette.testclient`")

# The test plan with one more field: a decimal (the test plan has none).
DECIMAL_FIELD = """      - id: thiet-hai
        label: Thiệt hại ước tính
        type: decimal
        unit: triệu đồng
        required: false
        aggregate: sum
"""


def _world(tmp_path, monkeypatch, db_url=None):  # type: ignore[no-untyped-def]
    data = tmp_path / "data"
    data.mkdir()
    shutil.copy(support.DATA / "registry.yaml", data / "registry.yaml")
    plan = (support.DATA / "plan.yaml").read_text(encoding="utf-8")
    marker = "      - id: ket-qua\n"
    assert marker in plan
    (data / "plan.yaml").write_text(plan.replace(marker, DECIMAL_FIELD + marker), "utf-8")
    monkeypatch.setattr(support, "DATA", data)
    return support.make_world(tmp_path, monkeypatch, db_url=db_url)


@pytest.fixture
def world(tmp_path, monkeypatch):  # type: ignore[no-untyped-def]
    yield _world(tmp_path, monkeypatch)
    support.config.settings.cache_clear()


def _refused(world, field_id: str, typed: str) -> str:  # type: ignore[no-untyped-def]
    """Post ``typed`` in the field: 422, the message next to it, what was typed kept."""
    token = world.token()
    with client_for(world) as client:
        response = post_report(client, token, open_form(client, token), {f"f-{field_id}": typed})
        page = client.get(f"/o/{token}")
    assert response.status_code == 422, response.text[:300]
    assert page.status_code == 200
    html = response.text
    assert f'id="err-{field_id}"' in html and "Chưa có gì được lưu" in html
    assert world.count(Submission) == 0
    message = html.split(f'id="err-{field_id}" role="alert">', 1)[1].split("</p>", 1)[0]
    return message


def test_a_400_digit_decimal_is_a_message_next_to_the_field_and_nothing_is_stored(world):
    typed = "1" * 400 + ",5"
    message = _refused(world, "thiet-hai", typed)
    assert message.startswith("Trường &#39;Thiệt hại ước tính&#39; quá dài để là một số")


def test_a_decimal_beyond_the_bound_is_refused_and_the_typed_value_kept(world):
    token = world.token()
    with client_for(world) as client:
        typed = "9" * 40
        response = post_report(client, token, open_form(client, token), {"f-thiet-hai": typed})
    assert response.status_code == 422
    assert "vượt quá giới hạn cho phép" in response.text and f'value="{typed}"' in response.text


def test_a_5000_digit_integer_is_a_message_not_a_500(world):
    assert "quá dài để là một số" in _refused(world, "so-vu-chay", "1" * 5000)


@pytest.mark.parametrize("char", ["\x0b", "\x00", "\x1b"], ids=["VT", "NUL", "ESC"])
def test_a_control_character_is_a_message_next_to_the_field(world, char):
    message = _refused(world, "ket-qua", f"Tuyên truyền{char} tại 12 thôn")
    assert "có ký tự không hợp lệ" in message and f"U+{ord(char):04X}" in message
    assert "vị trí 13" in message


def _tamper(url: str, obligation_id: int) -> None:
    postgres = url.startswith("postgresql")
    with session_scope(url) as session:
        submission = session.scalar(
            select(Submission).where(Submission.obligation_id == obligation_id)
        )
        assert submission is not None
        raw = (
            '{"so-vu-chay": '
            + "7" * 5000
            + ', "thiet-hai": '
            + ("1e400" if postgres else "Infinity")
            + ', "ty-le-tap-huan": '
            + ("-1e400" if postgres else "NaN")
            + ', "dan-phong": "Đã rà soát", "ket-qua": "Tuyên\\u000b truyền\\u0000 tại\\u001b thôn"}'
        )
        cast = "CAST(:raw AS JSON)" if postgres else ":raw"
        session.execute(
            text(f'UPDATE submissions SET "values" = {cast} WHERE id = :id'),
            {"raw": raw, "id": submission.id},
        )


def test_rows_stored_with_bad_values_still_show_and_can_be_corrected(db_url, tmp_path, monkeypatch):
    world = _world(tmp_path, monkeypatch, db_url=db_url)
    token = world.token()
    try:
        with client_for(world) as client:
            first = post_report(client, token, open_form(client, token), follow_redirects=False)
            assert first.status_code == 303
            client.app.state.handoff.wait()
            _tamper(db_url, world.obligation_id())
            page = client.get(f"/o/{token}")
            receipt = client.get(f"/o/{token}/receipt/1")
            assert page.status_code == 200 and receipt.status_code == 200
            for html in (page.text, receipt.text):
                assert html.count("(giá trị đã lưu không hợp lệ; đề nghị gửi lại báo cáo)") == 3
                assert "Tuyên truyền tại thôn" in html  # the control characters left out
            world.clock.set(vn(2027, 9, 2))
            again = post_report(client, token, open_form(client, token), follow_redirects=False)
            assert again.status_code == 303, again.text[:300]
            assert client.get(f"/o/{token}/receipt/2").status_code == 200
            client.app.state.handoff.wait()
    finally:
        support.config.settings.cache_clear()
    with session_scope(db_url) as session:
        newest = session.scalar(select(Submission).where(Submission.version == 2))
        assert newest is not None and newest.values["so-vu-chay"] == 2
