"""What a reader sees first (issue 12, item 5), with the seed plan (Hạ Lang PCCC, 2023):
subjects under 80 characters with the deadline and the matter first, the sender named
as the agency, who to call with name, phone and email, a digest that says who is late
and who was returned."""

from __future__ import annotations

import datetime as dt
import email
import email.header
import email.policy
from typing import Any

import pytest
from sqlalchemy import select

from engine.closing import close_cycle
from engine.lifecycle import activate, intake, record_submission, review, sweep
from engine.outbox import KINDS, ContextBuilder, MailKind, enqueue, enqueue_for_obligation
from engine.store import session_scope
from engine.store.models import OutboxMessage
from notifications.render import SUBJECT_MAX, fit_subject, render_message, render_parts
from tests.lifecycle_factory import DEFINITIONS, filled_answer, obligations, store_files, vn

PLAN = "ha-lang-pccc-2022"
PARENT = "cao-bang-2720-2022"
FILES = ("registry_cao_bang.yaml", "cao_bang_2720_kh_ubnd.yaml", "ha_lang_pccc_2022.yaml")
DUTY = "tong-hop-bao-cao-nam"
LONGEST_UNIT = "Huyện đoàn Hạ Lang (Đoàn TNCS Hồ Chí Minh huyện)"


@pytest.fixture(scope="module")
def seed_url(tmp_path_factory):
    url = f"sqlite:///{tmp_path_factory.mktemp('subjects') / 'kehoach.sqlite'}"
    store_files(url, *(DEFINITIONS / name for name in (*FILES, "calendar_vn.yaml")))
    with session_scope(url) as session:
        activate(session, PARENT, now=vn(2023, 1, 3), years=[2023])
        activate(session, PLAN, now=vn(2023, 1, 3), years=[2023])
    return url


def _conf():
    from tests.notifications_factory import make_settings

    return make_settings(mail_from="kehoach@halang.example", mail_from_name="Hệ thống kehoach")


def _extras(kind: MailKind) -> dict[str, Any]:
    """The longest context each kind may carry beyond what the store gives."""
    late = {"version": 12, "on_time": False, "submitted_at": "16:45 14/9/2023"}
    return {
        MailKind.RECEIPT: {"submission": late},
        MailKind.RETURNED: {"reason": "Số vụ cháy chưa khớp với sổ theo dõi của Công an huyện"},
        MailKind.CONSOLIDATED: {"revision": 12, "previous_date": "28/12/2023"},
        MailKind.REPORT_AFTER_CONSOLIDATION: {
            "late_report": {"unit_name": LONGEST_UNIT, "day": "14/9/2023", "at": "16:45"},
            "consolidated_report": {"revision": 2, "day": "12/9/2023"},
            "command": "kehoach consolidate ha-lang-pccc-2022 --cycle 2023 --revise",
        },
    }.get(kind, {})


def _subjects(url: str, kind: MailKind, now: dt.datetime) -> list[str]:
    """The subject of ``kind`` for every obligation it can be about, in the 2023 cycle."""
    conf = _conf()
    with session_scope(url) as session:
        every = obligations(session, PLAN)
        duties = [o for o in every if o.kind == "consolidation"]
        about = {  # the consolidating unit's own duty; a unit's answer; any duty
            MailKind.DIGEST: duties,
            MailKind.CONSOLIDATED: duties,
            MailKind.REPORT_AFTER_CONSOLIDATION: duties,
            MailKind.RETURNED: [o for o in every if o.kind != "consolidation"],
        }.get(kind, every)
        builder = ContextBuilder(session, conf, now)
        return [
            render_parts(kind, builder.prepare(o, kind, "3", _extras(kind)).context)[0]
            for o in about
        ]


@pytest.mark.parametrize("kind", [k for k in KINDS if k not in ("cycle_closed",)])
def test_every_subject_is_under_80_characters(seed_url, kind):
    if kind == MailKind.PLAN_NOTICE:  # about the plan, not an obligation: those queued
        with session_scope(seed_url) as session:
            rows = session.scalars(select(OutboxMessage).where(OutboxMessage.kind == kind))
            subjects = [render_parts(kind, row.context)[0] for row in rows]
    elif kind == MailKind.DELIVERY_FAILURE:
        subject = render_parts(
            kind,
            {"failed": {"to": "hoiccb.halang@caobang.example", "subject": "x " * 60, "kind": "a"}},
        )[0]
        subjects = [subject]
        assert subject.startswith("[kehoach] Không gửi được thư tới hoiccb.halang@caobang")
    else:
        subjects = _subjects(seed_url, kind, vn(2023, 9, 20, 8))
    assert subjects
    longest = max(subjects, key=len)
    print(f"\n{kind}: {len(subjects)} subjects, longest {len(longest)}: {longest}")
    assert len(longest) < 80, longest
    assert not any(s.startswith("[ha-lang") for s in subjects)
    if kind not in (MailKind.ESCALATION, MailKind.REPORT_AFTER_CONSOLIDATION, "delivery_failure"):
        # the seed's short names fit whole; only a long unit name may be shortened
        assert not any("…" in s for s in subjects), [s for s in subjects if "…" in s]


def test_the_assignment_subject_says_the_deadline_first(seed_url):
    with session_scope(seed_url) as session:
        [report] = [
            o
            for o in obligations(session, PLAN, deliverable="bao-cao-nam")
            if o.unit_id == "ubnd-xa-thi-hoa"
        ]
        row = enqueue_for_obligation(session, report, "assignment", settings=_conf())
        duty = next(o for o in obligations(session, PLAN) if o.deliverable_id == DUTY)
        reminder = enqueue_for_obligation(session, duty, "reminder", "3", settings=_conf())
        rendered = render_message(row, _conf(), now=vn(2023, 1, 3))
        duty_mail = render_message(reminder, _conf(), now=vn(2023, 9, 22))
    assert rendered.subject == "Hạn 11/9: Báo cáo sơ kết năm 2023 — Kế hoạch PCCC"
    assert (
        duty_mail.subject
        == "Hạn 25/9, còn 3 ngày: Tổng hợp báo cáo sơ kết năm 2023 — Kế hoạch PCCC"
    )
    message = email.message_from_bytes(rendered.raw, policy=email.policy.default)
    # From: the consolidating agency's name, RFC 2047 encoded UTF-8; our address.
    raw_from = next(
        line for line in rendered.raw.split(b"\r\n\r\n", 1)[0].decode("ascii").split("\r\nTo:")
    ).split("From: ", 1)[1]
    assert "=?utf-8?b?" in raw_from
    words = email.header.decode_header(raw_from.replace("\r\n", "").split("<")[0])
    assert "".join(w.decode(c or "ascii") for w, c in words).strip() == "Công an huyện Hạ Lang"
    [sender] = message["From"].addresses
    assert (sender.display_name, sender.addr_spec) == (
        "Công an huyện Hạ Lang",
        "kehoach@halang.example",
    )
    # The consolidation duty is the district police's own: it comes from the issuer.
    duty_from = email.message_from_bytes(duty_mail.raw, policy=email.policy.default)["From"]
    assert duty_from.addresses[0].display_name == "Ủy ban nhân dân huyện Hạ Lang"
    # Who to call, from the registry: name, title, phone, email.
    text = message.get_body(("plain",)).get_content()
    html = message.get_body(("html",)).get_content()
    for part in (text, html):
        assert "Nông Văn Tiến" in part and "0206 3 826 201" in part
        assert "pccc.cah.halang@caobang.example" in part


def test_a_long_subject_is_shortened_in_its_elastic_part():
    from notifications.render import elastic

    long_title = "Báo cáo kết quả thực hiện công tác phòng cháy, chữa cháy và cứu nạn, cứu hộ"
    subject = fit_subject(f"Hạn 11/9: {elastic(long_title)} năm 2023 — Kế hoạch PCCC")
    assert len(subject) <= SUBJECT_MAX
    assert subject.startswith("Hạn 11/9: Báo cáo kết quả") and subject.endswith(
        "… năm 2023 — Kế hoạch PCCC"
    )
    assert fit_subject("Ngắn gọn") == "Ngắn gọn"


def test_the_digest_marks_late_and_returned_reports(seed_url):
    with session_scope(seed_url) as session:
        by_unit = {o.unit_id: o for o in obligations(session, PLAN, deliverable="bao-cao-nam")}
    plan_template = _seed_template()
    answers = [
        ("phong-vhtt-ha-lang", vn(2023, 9, 5)),  # on time
        ("ubnd-xa-thi-hoa", vn(2023, 9, 13)),  # after 11/9: late
        ("ubnd-xa-an-lac", vn(2023, 9, 6)),  # returned below
    ]
    for unit, moment in answers:
        with session_scope(seed_url) as session:
            sent = record_submission(
                session, by_unit[unit].id, values=filled_answer(plan_template), now=moment
            )
            intake(session, sent.id, now=moment)
            if unit == "ubnd-xa-an-lac":
                review(
                    session,
                    sent.id,
                    decision="return",
                    reason="Thiếu số liệu",
                    by="cah",
                    now=moment,
                )
    with session_scope(seed_url) as session:  # Monday: overdue marks, then the digest
        sweep(session, PLAN, today=dt.date(2023, 9, 18))
    with session_scope(seed_url) as session:
        [row] = session.scalars(select(OutboxMessage).where(OutboxMessage.kind == "digest"))
        subject, text, html = render_parts("digest", row.context)
    assert subject == "Hạn 11/9: 2/32 đơn vị đã gửi, 29 quá hạn, 1 bị trả lại — Kế hoạch PCCC"
    lines = {
        line.split(" – ")[0].split(". ", 1)[1]: line for line in text.splitlines() if " – " in line
    }
    assert "Đã gửi, TRỄ HẠN" in lines["Ủy ban nhân dân xã Thị Hoa"]
    # the time it came, written as the deadline beside it ("04/09/2023 08:40" before)
    assert "lúc 09:00 ngày 13/9/2023 (hạn 11/9/2023)" in lines["Ủy ban nhân dân xã Thị Hoa"]
    assert "BỊ TRẢ LẠI, chờ gửi lại" in lines["Ủy ban nhân dân xã An Lạc"]
    assert "TRỄ HẠN" not in lines["Phòng Văn hóa và Thông tin huyện Hạ Lang"]
    assert "trong đó 1 trễ hạn" in text and "Bị trả lại, chờ gửi lại: 1 đơn vị" in text
    # the plan has no number: its heading names it by its trích yếu, not by who issued it
    # alone ("theo Kế hoạch của Ủy ban nhân dân huyện Hạ Lang, năm 2023")
    named = (
        "theo Kế hoạch của Ủy ban nhân dân huyện Hạ Lang về tiếp tục thực hiện Quyết định "
        "số 1492/QĐ-TTg"
    )
    assert named in text and named in html
    assert "Bị trả lại, chờ gửi lại</strong>" in html and "trễ hạn</strong>" in html


def _seed_template():
    from engine.loader import load

    catalog = load([DEFINITIONS / FILES[0], DEFINITIONS / FILES[2]])
    return catalog.plans[PLAN].definition.template("bao-cao-pccc-nam")


def test_the_closing_summary_subject_is_short(seed_url):
    with session_scope(seed_url) as session:
        [cycle] = {o.cycle_id for o in obligations(session, PLAN, cycle="2023")}
        close_cycle(session, cycle, now=vn(2023, 12, 5, 8))
    with session_scope(seed_url) as session:
        rows = session.scalars(
            select(OutboxMessage).where(OutboxMessage.kind == "cycle_closed")
        ).all()
        subjects = [render_parts(r.kind, r.context)[0] for r in rows]
        senders = {r.context["sender"]["name"] for r in rows}
    assert subjects and max(len(s) for s in subjects) < 80, subjects
    assert all(s.startswith("Đã đóng kỳ báo cáo năm 2023: ") for s in subjects)
    assert senders == {"Ủy ban nhân dân huyện Hạ Lang"}


def test_the_administrator_notice_comes_from_the_system(seed_url):
    conf = _conf()
    with session_scope(seed_url) as session:
        row, _ = enqueue(
            session,
            kind="delivery_failure",
            idempotency_key="delivery_failure:test",
            to_addrs=["quantri@halang.example"],
            context={
                "failed": {"to": "a@b.example", "kind": "assignment"},
                "sender": {"name": "X"},
            },
            settings=conf,
        )
        rendered = render_message(row, conf)
    message = email.message_from_bytes(rendered.raw, policy=email.policy.default)
    assert message["From"].addresses[0].display_name == "Hệ thống kehoach"


def test_an_escalation_subject_names_the_late_unit_whole_and_its_deadline_first(seed_url):
    """Found looking at the demo's mailbox: "Quá hạn 3 ngày: Hội Cựu chiến binh huyện
    Hạ… chưa gửi Báo cáo sơ kết năm 2023" cut the unit's name, the one thing its head
    must read. The deadline comes first; the plan's name and then the title give way."""
    conf = _conf()
    with session_scope(seed_url) as session:
        builder = ContextBuilder(session, conf, vn(2023, 9, 14, 7))
        subjects = {
            o.unit_id: (
                render_parts(
                    MailKind.ESCALATION, builder.prepare(o, MailKind.ESCALATION, "3").context
                )[0],
                builder.prepare(o, MailKind.ESCALATION, "3").context["unit"]["name"],
            )
            for o in obligations(session, PLAN, deliverable="bao-cao-nam")
        }
    for subject, name in subjects.values():
        assert len(subject) < 80, subject
        assert subject.startswith(f"Quá hạn 11/9: {name}"), subject
        assert "…" not in subject[: len(f"Quá hạn 11/9: {name}")], subject
    ccb, _ = subjects["hoi-cuu-chien-binh-huyen-ha-lang"]
    assert ccb == "Quá hạn 11/9: Hội Cựu chiến binh huyện Hạ Lang chưa gửi Báo cáo sơ kết năm 2023"
    assert subjects["doan-thanh-nien-huyen-ha-lang"][0] == (
        f"Quá hạn 11/9: {LONGEST_UNIT} chưa gửi báo cáo"
    )
    assert subjects["ubnd-xa-thi-hoa"][0] == (
        "Quá hạn 11/9: Ủy ban nhân dân xã Thị Hoa chưa gửi Báo cáo sơ kết năm 2023"
    )


def test_the_plan_name_gives_way_before_the_title_is_shortened():
    from notifications.render import elastic, optional

    title = "Báo cáo sơ kết tình hình, kết quả thực hiện Kế hoạch"
    fits = f"Hạn 11/9: {elastic(title)} năm 2023{optional(' — Kế hoạch PCCC')}"
    assert fit_subject(fits) == f"Hạn 11/9: {title} năm 2023"  # 71, and 87 with the plan
    assert fit_subject(fits, limit=100) == f"Hạn 11/9: {title} năm 2023 — Kế hoạch PCCC"
    unit = "Phòng Nông nghiệp và Phát triển nông thôn huyện Hạ Lang"
    chunk = optional(f" chưa gửi {elastic(title)} năm 2023", " chưa gửi báo cáo")
    subject = fit_subject(f"Quá hạn 11/9: {unit}{chunk}{optional(' — Kế hoạch PCCC')}")
    assert subject == f"Quá hạn 11/9: {unit}", subject  # 69; with " chưa gửi báo cáo": 86
