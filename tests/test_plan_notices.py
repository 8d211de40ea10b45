"""A plan's Nơi nhận reaches its bodies (issue 10: every field the schema accepts has an
effect): on the plan's first activation each unit its ``recipients`` lines name gets one
email with the plan, "để báo cáo", "để thực hiện" or "để biết" as its line says; the
archive (Lưu), the issuer and the units told by their assignments get none, nor does a
unit abolished before the plan or one with no address (said once). Counted on an SMTP
server on loopback, after the dispatcher ran.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from sqlalchemy import select

from engine.lifecycle import activate
from engine.store import session_scope
from engine.store.models import OutboxMessage
from notifications.dispatch import dispatch_pending_sync
from tests.lifecycle_factory import DEFINITIONS, store_files, vn
from tests.notifications_factory import smtp_settings

SEED = "ha-lang-pccc-2022"
SEED_FILES = ("registry_cao_bang.yaml", "cao_bang_2720_kh_ubnd.yaml", "ha_lang_pccc_2022.yaml")
EXAMPLES = DEFINITIONS / "examples"
PROVINCE = "cao-bang-dau-tu-cong-2026"


def _notices(smtp_server) -> dict[str, str]:
    """Address → subject of every plan email the SMTP server received."""
    found = {}
    for m in smtp_server.messages:
        if m.message["X-Kehoach-Kind"] == "plan_notice":
            [address] = m.rcpt_tos
            found[address] = str(m.message["Subject"])
    return found


def _body(smtp_server, address: str) -> str:
    [m] = [
        m
        for m in smtp_server.messages
        if m.message["X-Kehoach-Kind"] == "plan_notice" and address in m.rcpt_tos
    ]
    return m.message.get_body(("plain",)).get_content()


def test_the_seeds_recipients_receive_the_plan_once(sqlite_url: str, smtp_server) -> None:
    store_files(sqlite_url, *(DEFINITIONS / n for n in (*SEED_FILES, "calendar_vn.yaml")))
    with session_scope(sqlite_url) as session:
        result = activate(session, SEED, now=vn(2023, 1, 3, 9), years=[2023])
    assert result.notified == 4
    dispatch_pending_sync(sqlite_url, smtp_settings(smtp_server), now=vn(2023, 1, 3, 9))
    notices = _notices(smtp_server)
    # Nơi nhận: "Văn phòng Tỉnh ủy (B/c)", "Công an tỉnh (B/c)" report; "TT. HU, HĐND,
    # UBND, MTTQ huyện" for information, less UBND huyện (the issuer) and MTTQ (it owes
    # reports: told by its assignments). The action lines' units all owe something; the
    # websites' line names no unit; "Lưu: VT, CAH" is the archive.
    assert notices == {
        "vanphong.tinhuy@caobang.example": "Gửi để báo cáo: Kế hoạch PCCC",
        "pc07.catinh@caobang.example": "Gửi để báo cáo: Kế hoạch PCCC",
        "huyenuy.halang@caobang.example": "Gửi để biết: Kế hoạch PCCC",
        "hdnd.halang@caobang.example": "Gửi để biết: Kế hoạch PCCC",
    }
    text = " ".join(_body(smtp_server, "hdnd.halang@caobang.example").split())
    assert text.startswith("Kính gửi: Hội đồng nhân dân huyện Hạ Lang"), text
    assert "gửi kế hoạch tới Hội đồng nhân dân huyện Hạ Lang để biết" in text
    assert "Nơi nhận của kế hoạch: TT. HU, HĐND, UBND, MTTQ huyện" in text
    assert "II.1. Công an huyện" in text and "thư không cần trả lời" in text
    # Every other email of the activation is an assignment to a unit that owes something.
    kinds = Counter(m.message["X-Kehoach-Kind"] for m in smtp_server.messages)
    assert kinds == {"assignment": result.queued, "plan_notice": 4}, kinds
    # Activated again (the yearly start, a re-run): nothing more.
    with session_scope(sqlite_url) as session:
        again = activate(session, SEED, now=vn(2023, 1, 4, 9), years=[2023, 2024])
        rows = session.scalars(
            select(OutboxMessage).where(OutboxMessage.kind == "plan_notice")
        ).all()
    assert again.notified == 0 and len(rows) == 4


ABOLISHED = """  - id: ubnd-huyen-ha-lang-cu
    name: Ủy ban nhân dân huyện Hạ Lang
    kind: people-committee
    level: district
    parent: ubnd-tinh-cao-bang
    emails: [ubnd.halang.cu@caobang.example]
    valid_to: 2025-06-30
    successors: [ubnd-xa-ha-lang-2025]
  - id: bao-cao-bang
    name: Báo Cao Bằng
    kind: press
    level: province
    parent: ubnd-tinh-cao-bang

"""
LINES = """  - name: UBND huyện Hạ Lang (cũ)
    purpose: information
    units: [ubnd-huyen-ha-lang-cu]
  - name: Báo Cao Bằng
    purpose: information
    units: [bao-cao-bang]
  - name: Sở Tài chính (để biết)
    purpose: information
    units: [so-tai-chinh-cao-bang]
"""


def _province_with_more_lines(folder: Path) -> list[Path]:
    """The provincial example with three more Nơi nhận lines: a district abolished on
    30/6/2025, a newspaper with no address, and Sở Tài chính (which owes reports)."""
    registry = (EXAMPLES / "registry_cao_bang_2026.yaml").read_text(encoding="utf-8")
    plan = (EXAMPLES / "cao_bang_dau_tu_cong_2026.yaml").read_text(encoding="utf-8")
    assert registry.count("\ngroups:\n") == 1 and plan.count('  - name: "Lưu: VT, TH"') == 1
    paths = [folder / "registry_cao_bang_2026.yaml", folder / "cao_bang_dau_tu_cong_2026.yaml"]
    paths[0].write_text(registry.replace("\ngroups:\n", "\n" + ABOLISHED + "groups:\n"), "utf-8")
    paths[1].write_text(plan.replace('  - name: "Lưu: VT, TH"', LINES + '  - name: "Lưu: VT, TH"'))
    return paths


def test_no_plan_email_to_an_abolished_unit_or_one_without_address(
    sqlite_url: str, smtp_server, tmp_path: Path
) -> None:
    store_files(sqlite_url, *_province_with_more_lines(tmp_path), DEFINITIONS / "calendar_vn.yaml")
    with session_scope(sqlite_url) as session:
        result = activate(session, PROVINCE, now=vn(2026, 3, 26, 9))
    dispatch_pending_sync(sqlite_url, smtp_settings(smtp_server), now=vn(2026, 3, 26, 9))
    # Tỉnh ủy (B/c); Văn phòng UBND tỉnh, in "Các sở, ban, ngành tỉnh" and owing nothing.
    assert _notices(smtp_server) == {
        "tinhuy@caobang.example": "Gửi để báo cáo: Kế hoạch 85/KH-UBND ngày 26/3/2026",
        "vanthu.vpubnd@caobang.example": "Gửi để thực hiện: Kế hoạch 85/KH-UBND ngày 26/3/2026",
    }
    assert result.notified == 2
    every = {a for m in smtp_server.messages for a in m.rcpt_tos}
    assert "ubnd.halang.cu@caobang.example" not in every
    said = [w for w in result.warnings if w.startswith("Nơi nhận")]
    assert said == [
        "Nơi nhận “UBND huyện Hạ Lang (cũ)”: Ủy ban nhân dân huyện Hạ Lang không còn tồn tại "
        "ngày 26/03/2026; không gửi thư kế hoạch (đơn vị kế thừa: Ủy ban nhân dân xã Hạ Lang, "
        "không có trong Nơi nhận)",
        "Nơi nhận “Báo Cao Bằng”: Báo Cao Bằng không có địa chỉ email trong danh bạ; không gửi "
        "thư kế hoạch",
    ], said
    # Sở Tài chính, named "để biết", owes the monthly reports: its assignments only.
    with session_scope(sqlite_url) as session:
        mine = session.scalars(
            select(OutboxMessage.kind).where(OutboxMessage.unit_id == "so-tai-chinh-cao-bang")
        ).all()
    assert "plan_notice" not in mine and "assignment" in mine


def test_each_plan_email_costs_one_statement_and_a_rerun_queues_none(db_url: str) -> None:
    """Queueing the seed's 4 plan emails runs one statement on the outbox each (the
    enqueue says whether it inserted: no SELECT before it); queued again in the same
    transaction, nothing is new and no row is added; on SQLite and PostgreSQL."""
    from sqlalchemy import delete, event

    from engine.context import plan_context
    from engine.outbox.plan_notice import queue_plan_notices
    from engine.repository import plan_version
    from engine.store.db import connect
    from engine.store.models import PlanInstance

    store_files(db_url, *(DEFINITIONS / n for n in (*SEED_FILES, "calendar_vn.yaml")))
    now = vn(2023, 1, 3, 9)
    with session_scope(db_url) as session:
        assert activate(session, SEED, now=now, years=[2023]).notified == 4
    statements: list[str] = []

    def count(conn, cursor, statement, *args) -> None:  # noqa: ANN001
        statements.append(statement)

    with session_scope(db_url) as session:
        # As before the plan's first activation: its 4 emails not queued yet.
        session.execute(delete(OutboxMessage).where(OutboxMessage.kind == "plan_notice"))
        ctx = plan_context(session, plan_version(session, SEED, None))
        instance = session.scalar(select(PlanInstance).where(PlanInstance.plan_id == SEED))
        session.flush()
        event.listen(connect(db_url), "before_cursor_execute", count)
        try:
            first = queue_plan_notices(session, ctx, instance, now)
            on_outbox = [s for s in statements if " outbox" in s]
            again = queue_plan_notices(session, ctx, instance, now)
        finally:
            event.remove(connect(db_url), "before_cursor_execute", count)
    assert len(first.keys) == 4 and len(on_outbox) == 4, on_outbox
    assert again.keys == []
    with session_scope(db_url) as session:
        rows = session.scalars(
            select(OutboxMessage.idempotency_key).where(OutboxMessage.kind == "plan_notice")
        ).all()
    assert sorted(rows) == sorted(first.keys)
