"""Production mode end to end: one plan cycle run by a Prefect process worker.

The set-up of README "Production mode": kehoach's store and the Prefect server each on
a private PostgreSQL database of the machine (created and dropped here), the server with
its auth string and CSRF protection, deployments created by ``kehoach deploy`` for the
``kehoach`` process work pool, and flows run by ``prefect worker start --pool kehoach``
in processes of their own, with the worker machine's environment. One cycle of the
small plan of tests/data/portal (two communes, a yearly report, a consolidation):

activation (a run of ``activate/portal-pccc`` that the worker executes) → assignment
emails on the loopback SMTP server → a commune answers through the real portal
(``kehoach portal``), which hands the answer to the ``intake`` deployment → the worker
takes it in → a run of ``consolidate/portal-pccc`` writes the draft report and mails it to
the consolidating unit → it approves, signs and sends it (tests/approval_support.py) → only
then the email to the body above.
"""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from engine.clock import parse_moment
from engine.config import load_settings
from engine.store.db import session_scope
from engine.store.models import (
    AuditEvent,
    ConsolidatedReport,
    Obligation,
    OutboxMessage,
    Submission,
)
from notifications.dispatch import dispatch_pending_sync
from tests.approval_support import approve_sign_send
from tests.fixtures.database import private_database
from tests.fixtures.prefect_server import _free_port, _stop_process_group
from tests.fixtures.production import AUTH, POOL, PrefectAPI, prefect_on_postgres, start_worker
from tests.fixtures.smtp import SMTPTestServer
from tests.test_portal_support import link_in
from tests.test_prefect_binding import kehoach

# Its own Prefect server on PostgreSQL, a worker and a portal: over 300 s at load 9.
pytestmark = [pytest.mark.prefect, pytest.mark.timeout(900)]

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "tests" / "data" / "portal"
FILES = [DATA / "registry.yaml", ROOT / "plan_definitions" / "calendar_vn.yaml", DATA / "plan.yaml"]
PLAN = "portal-pccc"
NOW = "2027-03-01T09:00:00+07:00"  # a Monday, in working hours: nothing waits
COMMUNE = "ubnd.thihoa@halang.example"
UPWARD = "vanthu.ubnd@halang.example"  # the body the consolidated report is for
REPORT = {
    "f-so-vu-chay": "2",
    "f-ty-le-tap-huan": "90",
    "f-dan-phong": "Đã rà soát",
    "f-ket-qua": "Hai vụ cháy nhỏ, không thiệt hại về người.",
}
RUN_SECONDS = 150.0  # a flow run in a process of its own, on a loaded 2-core machine


def _finished(api: PrefectAPI, run_id: str, worker) -> dict:  # type: ignore[no-untyped-def]
    run = api.wait(run_id, RUN_SECONDS)
    state = run["state"]
    assert state["type"] == "COMPLETED", f"{state}\n{worker.log_tail()}"
    # executed by the pool's worker in a process of its own, not in this one
    assert run["work_pool_name"] == POOL and run["infrastructure_pid"], run
    return run


def _serve_portal(env: dict[str, str], port: int, log: Path) -> subprocess.Popen:
    """``kehoach portal`` in a process of its own (returns at once)."""
    full = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "KEHOACH_"))}
    full.update(PREFECT_SERVER_ANALYTICS_ENABLED="false", **env)
    with open(log, "ab") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "cli", "portal", "--host", "127.0.0.1", "--port", str(port)],
            cwd=ROOT,
            env=full,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    return process


def _wait_portal(process: subprocess.Popen, port: int, log: Path) -> None:
    deadline = time.monotonic() + 90
    while True:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            _stop_process_group(process)
            raise RuntimeError(f"the portal did not start:\n{log.read_text(errors='replace')}")
        time.sleep(0.3)


def _answer(link: str) -> None:
    """What the commune does: open its link, fill in the report, send it."""
    with httpx.Client(timeout=30, follow_redirects=True) as browser:
        page = browser.get(link)
        assert page.status_code == 200, page.text[:300]
        found = re.search(r'name="csrf" value="([^"]+)"', page.text)
        assert found, page.text[:500]
        sent = browser.post(f"{link}/submit", data={**REPORT, "csrf": found.group(1)})
        assert sent.status_code == 200 and "Đã nhận" in sent.text, sent.text[:500]


def _wait_for(check, timeout: float, what: str):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not (value := check()):
        assert time.monotonic() < deadline, f"{what}: not within {timeout:.0f} s"
        time.sleep(0.5)
    return value


class Steps:
    """Seconds each step took, printed at the end (``pytest -s``)."""

    def __init__(self) -> None:
        self.last = self.first = time.monotonic()
        self.taken: list[str] = []

    def __call__(self, name: str) -> None:
        now = time.monotonic()
        self.taken.append(f"{name} {now - self.last:.1f} s")
        self.last = now

    def __str__(self) -> str:
        return f"{time.monotonic() - self.first:.1f} s: " + ", ".join(self.taken)


def _store(url: str) -> None:
    """The store on its PostgreSQL database, the plan loaded (``kehoach load``'s work)."""
    from engine.loader import load
    from engine.repository import store_catalog
    from engine.store.db import migrate

    migrate(url)
    with session_scope(url) as session:
        store_catalog(session, load(FILES))


def _doctor_sees_the_production_set_up(env: dict[str, str], worker: str) -> None:
    """``kehoach doctor``'s checks pass on this set-up, and a wrong auth string fails."""
    from cli.doctor import run_checks

    checks = run_checks(env)
    assert [c.line() for c in checks if not c.ok] == []
    assert len(checks) == 7, [c.line() for c in checks]
    assert any(worker in c.found for c in checks)
    wrong = run_checks({**env, "PREFECT_API_AUTH_STRING": "kehoach-ops:sai-mat-khau"})
    [refused] = [c for c in wrong if not c.ok]
    assert "401" in (refused.problem or "") and "PREFECT_API_AUTH_STRING" in refused.name


def test_one_cycle_runs_through_a_process_worker(tmp_path: Path) -> None:
    step = Steps()
    smtp = SMTPTestServer()
    smtp.start()
    home = tmp_path / "home"
    home.mkdir()
    port = _free_port()
    portal = worker = None
    with contextlib.ExitStack() as stack:
        store = stack.enter_context(private_database("h_scale_store"))
        _store(store)
        env = {
            "KEHOACH_HOME": str(home),
            "KEHOACH_DATABASE_URL": store,
            "KEHOACH_SMTP_HOST": smtp.host,
            "KEHOACH_SMTP_PORT": str(smtp.port),
            "KEHOACH_PORTAL_SECRET": "worker-mode-test-secret-5d2f8a1c9e7b3046",
            "KEHOACH_PORTAL_BASE_URL": f"http://127.0.0.1:{port}",
            "KEHOACH_NOW": NOW,
            "PREFECT_API_AUTH_STRING": AUTH,
        }
        server = stack.enter_context(prefect_on_postgres(tmp_path / "prefect"))
        env["PREFECT_API_URL"] = server.api_url
        api = PrefectAPI(server.api_url)  # its first authenticated request, before deploy's
        step("store, Prefect server on PostgreSQL")
        try:
            # the portal and the worker start while `kehoach deploy` runs
            portal = _serve_portal(env, port, home / "portal.log")
            worker = start_worker(env, home)
            deployed = kehoach(["deploy", PLAN], env)
            assert deployed.returncode == 0, deployed.stdout + deployed.stderr
            assert f"intake/{PLAN}" in deployed.stdout and f"consolidate/{PLAN}" in deployed.stdout
            worker.wait_joined(api)
            step("deploy, worker")
            _doctor_sees_the_production_set_up(env, worker.name)

            run = api.run_deployment(f"activate/{PLAN}", {"plan_id": PLAN, "years": [2027]})
            _finished(api, run, worker)
            with session_scope(store) as session:
                owed = session.scalars(select(Obligation)).all()
            assert len(owed) == 5  # 2 communes × (sub-plan, report) + the consolidation
            mails = smtp.wait_for(4, timeout=30)
            to_commune = [m for m in mails if COMMUNE in m.rcpt_tos]
            [report_mail] = [m for m in to_commune if "Báo cáo kết quả" in (m.subject or "")]
            step("activation and its emails")

            _wait_portal(portal, port, home / "portal.log")
            _answer(link_in(report_mail.message))
            intake = _wait_for(lambda: api.flow_runs("intake"), 60, "an intake run")
            _finished(api, intake[0]["id"], worker)
            with session_scope(store) as session:
                [answer] = session.scalars(select(Submission)).all()
                assert answer.intake_done
                assert session.get(Obligation, answer.obligation_id).status == "submitted"
                inline = select(AuditEvent).where(AuditEvent.action == "portal.intake_inline")
                assert session.scalars(inline).all() == []  # the worker took it in
            step("answer and intake")

            run = api.run_deployment(f"consolidate/{PLAN}", {"plan_id": PLAN, "cycle_key": "2027"})
            _finished(api, run, worker)
            with session_scope(store) as session:
                [report] = session.scalars(select(ConsolidatedReport)).all()
                report_id = report.id
                assert report.aggregates["so-vu-chay"] == 2, report.aggregates
                assert report.document_path and Path(report.document_path).is_file()
            # With approval (engine.approval) consolidation makes a draft and mails it to
            # the consolidating unit to review, approve, sign and send; nothing goes
            # upward before that, so the email to expect is the draft's.
            with session_scope(store) as session:
                drafts = session.scalars(
                    select(OutboxMessage).where(OutboxMessage.kind == "report_draft")
                ).all()
                assert drafts, "no report_draft email queued"
                draft_to = set(drafts[0].to_addrs)
            mailed = _wait_for(
                lambda: [m for m in smtp.messages if draft_to & set(m.rcpt_tos)],
                30,
                "the consolidated report's draft email",
            )
            assert UPWARD not in {rcpt for m in smtp.messages for rcpt in m.rcpt_tos}, (
                "the report went upward before its approval"
            )
            assert mailed
            step("consolidation and its email")

            # The consolidating unit accepts the answer, writes the sections, approves (the
            # number, the final .docx; its PDF by LibreOffice is tested elsewhere), uploads
            # the signed PDF and sends: only then does the email go to the body above (the
            # queue sent here as a dispatcher would).
            conf, moment = load_settings(env), parse_moment(NOW)
            with session_scope(store) as session:
                approve_sign_send(session, report_id, conf, moment, accept=True, final_pdf=False)
            assert dispatch_pending_sync(store, conf, now=moment).sent >= 1
            upward = _wait_for(
                lambda: [m for m in smtp.messages if UPWARD in m.rcpt_tos],
                30,
                "the approved report's email upward",
            )
            assert upward[0].message.get_content_type() == "multipart/mixed"  # the signed PDF
            step("approval and the email upward")
        finally:
            if portal is not None:
                _stop_process_group(portal)
            if worker is not None:
                worker.stop()
    smtp.stop()
    print(f"\nworker mode: {step}")
