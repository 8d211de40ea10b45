"""The deadline explanation is said in full once (issue 14): the first email of a duty
carries the plan's words and why the date moved; reminders, overdue notices and
escalations carry the date and one short clause, never the quoted phrase or the article.

Seed: UBND xã Lý Quốc's yearly report for 2023, "trước ngày 10/9/ hằng năm", 10/9/2023 a
Sunday, due Monday 11/9/2023 (Điều 148 Bộ luật Dân sự 2015)."""

from __future__ import annotations

import datetime as dt
import re

from sqlalchemy import select

from engine.deadline_text import describe
from engine.lifecycle import activate, sweep
from engine.store import session_scope
from engine.store.models import OutboxMessage
from notifications.render import render_parts
from tests.lifecycle_factory import DEFINITIONS, obligations, store_files, vn

SEED_FILES = [
    DEFINITIONS / "registry_cao_bang.yaml",
    DEFINITIONS / "calendar_vn.yaml",
    DEFINITIONS / "cao_bang_2720_kh_ubnd.yaml",
    DEFINITIONS / "ha_lang_pccc_2022.yaml",
]
DATE = "- Hạn gửi: Thứ Hai, 11/9/2023 (ngày 11 tháng 9 năm 2023)"
SHORT = "(đã chuyển do ngày nghỉ; lý do ở trang gửi báo cáo)"
FULL = (
    "Kế hoạch ghi: “trước ngày 10/9/ hằng năm” (cách tính hạn: Kế hoạch không nói rõ có "
    "tính ngày 10/9 hay không; hạn được tính đến hết ngày 10/9 để không rút ngắn thời gian "
    "của đơn vị). 10/9/2023 là Chủ nhật; theo Điều 148 Bộ luật Dân sự 2015, hạn chuyển sang "
    "ngày làm việc tiếp theo: Thứ Hai, 11/9/2023."
)


def _seed_mails(url: str) -> dict[str, dict]:
    """The first email of each kind about Lý Quốc's 2023 yearly report, by kind."""
    store_files(url, *SEED_FILES)
    with session_scope(url) as session:
        activate(session, "cao-bang-2720-2022", now=vn(2023, 8, 12))
        activate(session, "ha-lang-pccc-2022", now=vn(2023, 8, 12))
    for day in (dt.date(2023, 9, 4), dt.date(2023, 9, 12), dt.date(2023, 9, 20)):
        with session_scope(url) as session:
            sweep(session, "ha-lang-pccc-2022", today=day)
    with session_scope(url) as session:
        report = next(
            o
            for o in obligations(session, "ha-lang-pccc-2022", deliverable="bao-cao-nam")
            if o.unit_id == "ubnd-xa-ly-quoc"
        )
        assert (report.nominal_date, report.due_date) == (
            dt.date(2023, 9, 10),
            dt.date(2023, 9, 11),
        )
        found: dict[str, dict] = {}
        rows = session.scalars(
            select(OutboxMessage)
            .where(OutboxMessage.obligation_id == report.id)
            .order_by(OutboxMessage.id)
        )
        for row in rows:
            found.setdefault(row.kind, dict(row.context))
    return found


def _due_part(text: str) -> str:
    """The "Hạn gửi" item of a text email: its line and the indented lines under it."""
    found = re.search(r"^- Hạn gửi:.*?(?=^- |^\s*$)", text, re.S | re.M)
    assert found, text
    return " ".join(found.group(0).split())


def _due_cell(html: str) -> str:
    found = re.search(r">Hạn gửi</td><td[^>]*>(.*?)</td>", html, re.S)
    assert found, html
    return " ".join(re.sub(r"<[^>]+>", " ", found.group(1)).split())


def test_the_repeated_emails_say_the_moved_date_in_one_short_clause(sqlite_url: str) -> None:
    mails = _seed_mails(sqlite_url)
    assert {"assignment", "reminder", "overdue", "escalation"} <= set(mails)
    for kind in ("reminder", "overdue"):
        _, text, html = render_parts(kind, mails[kind])
        assert _due_part(text) == f"{DATE} {SHORT}", kind
        assert _due_cell(html).endswith("tháng 9 năm 2023) " + SHORT), kind
        for long_words in ("Kế hoạch ghi", "trước ngày 10/9", "Điều 148", "Chủ nhật"):
            assert long_words not in text and long_words not in html, (kind, long_words)
    # To the unit's head, who has no page: the clause alone.
    _, text, html = render_parts("escalation", mails["escalation"])
    assert _due_part(text) == f"{DATE} (đã chuyển do ngày nghỉ)"
    assert "Điều 148" not in text and "Kế hoạch ghi" not in html


def test_the_assignment_still_explains_the_deadline_in_full(sqlite_url: str) -> None:
    mails = _seed_mails(sqlite_url)
    _, text, html = render_parts("assignment", mails["assignment"])
    assert _due_part(text) == f"{DATE} {FULL}"
    assert FULL in _due_cell(html)
    assert "lý do ở trang gửi báo cáo" not in text


def test_an_email_queued_before_the_short_clause_keeps_its_full_sentence(
    sqlite_url: str,
) -> None:
    mails = _seed_mails(sqlite_url)
    context = dict(mails["reminder"])
    context["deadline"] = {k: v for k, v in context["deadline"].items() if k != "short"}
    _, text, _ = render_parts("reminder", context)
    assert _due_part(text) == f"{DATE} {FULL}"


class _Rule:
    def __init__(self, phrase: str | None, assumed: bool = False, kind: str | None = None):
        self.phrase, self.assumed, self.note, self.policy = phrase, assumed, "", None
        self.deadline_kind = kind


def test_the_short_clause_names_what_happened_to_the_date() -> None:
    moved = "16/5/2026 là Thứ Bảy; hạn chuyển về ngày làm việc liền trước: Thứ Sáu, 15/5/2026"
    exclusive = "“trước ngày” không tính ngày 20/4/2026 nên ngày cuối là Thứ Hai, 19/4/2026"
    assert describe(_Rule("trước ngày 10/9"), moved)["short"] == "đã chuyển do ngày nghỉ"
    assert describe(_Rule("trước ngày 20"), exclusive)["short"] == "không tính ngày kế hoạch ghi"
    assert describe(_Rule(None, assumed=True), None)["short"] == "hạn do đơn vị tổng hợp đề nghị"
    assert describe(_Rule("chậm nhất ngày 10/12"), None)["short"] is None
    # "trước ngày 10/9" read as including 10/9: the date is not the letter's, so said.
    inclusive = _Rule("trước ngày 10/9", kind="inclusive")
    assert describe(inclusive, None)["short"] == "tính cả ngày kế hoạch ghi"
