"""The receipt, the commune clerk's proof, read in real Chromium on a phone and a desktop.

Measured before the fix (issue 12): the label column was sized to its longest label on
one line (``grid-template-columns: max-content 1fr``), so on a phone a label wider than
the card left the values a few pixels, one letter per line, and the page scrolled
sideways. Here every value must get a real share of the card's width, and the page must
not be wider than the screen. Screenshots are kept with the test's artifacts.
"""

from __future__ import annotations

import pytest

from engine.lifecycle import record_submission
from engine.store.db import session_scope
from tests.test_portal_support import UNIT, ServedPortal, vn, world_fixture

VALUES = {
    "so-vu-chay": "2",
    "ty-le-tap-huan": "95,5",
    "dan-phong": "Đã rà soát",
    "ngay-ra-soat": "2027-08-30",
    "ket-qua": "Tuyên truyền tại 12 thôn; kiện toàn 3 đội dân phòng; diễn tập tại xã.",
}


@pytest.fixture
def world(tmp_path, monkeypatch):  # type: ignore[no-untyped-def]
    yield from world_fixture(tmp_path, monkeypatch)


_MEASURE = """() => {
  const out = [];
  for (const dl of document.querySelectorAll('dl.facts, dl.values')) {
    const whole = dl.getBoundingClientRect().width;
    for (const dd of dl.querySelectorAll('dd')) {
      out.push({text: dd.innerText.slice(0, 40), width: dd.getBoundingClientRect().width,
                whole: whole, height: dd.getBoundingClientRect().height});
    }
  }
  return {values: out, scroll: document.documentElement.scrollWidth,
          screen: window.innerWidth};
}"""


@pytest.mark.parametrize("width", [390, 1280])
def test_every_receipt_value_gets_room_on_a_phone_and_a_desktop(
    world, browser, artifacts_dir, width
):  # type: ignore[no-untyped-def]
    with session_scope(world.db_url) as session:
        record_submission(
            session, world.obligation_id(UNIT, "bao-cao-nam"), values=VALUES, now=vn(2027, 9, 1)
        )
    token = world.token()
    context = browser.new_context(locale="vi-VN", viewport={"width": width, "height": 900})
    page = context.new_page()
    try:
        with ServedPortal(world.app(), world.port):
            response = page.goto(f"{world.base_url}/o/{token}/receipt/1")
            assert response is not None and response.status == 200
            page.screenshot(path=str(artifacts_dir / f"receipt-{width}.png"), full_page=True)
            measured = page.evaluate(_MEASURE)
    finally:
        context.close()
    assert measured["values"], "no values on the receipt"
    cramped = [v for v in measured["values"] if v["width"] < 0.3 * v["whole"]]
    assert not cramped, f"values squeezed at {width} px: {cramped}"
    assert measured["scroll"] <= measured["screen"], measured
