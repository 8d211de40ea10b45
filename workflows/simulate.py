"""A simulated stretch of time on the REAL flows: the clock jumps from one due moment to the next.

``simulate(plan_id, start, until, responses)`` drives the plan and its loaded parents
through a real Prefect server.  A :class:`engine.clock.VirtualClock` visits only the
moments where something is due — activation, each cycle start (1/1), each reminder
day (7/3/1 days before a deadline), the day after a deadline (overdue), the
escalation day, each consolidation deadline, and each response time from the
responses file — and at each moment calls the real flows with ``now`` set to it.
Submissions are recorded the way the portal records them (``record_submission``)
and then taken in by the intake flow, one named flow run per submission.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from engine.calendar import TZ
from engine.clock import VirtualClock
from engine.config import settings
from engine.errors import NotFound
from engine.repository import current_plan
from engine.states import ObligationStatus, OutboxStatus, ReviewState
from engine.store.db import session_scope
from engine.store.models import (
    ConsolidatedReport,
    Cycle,
    Obligation,
    OutboxMessage,
    PlanInstance,
    Submission,
)
from workflows.common import (
    ObligationInfo,
    database,
    in_process_runs,
    iso,
    obligations,
    plan_ids_with_parents,
)
from workflows.responses import Responses, Rule, report_values
from workflows.responses import load as load_responses
from workflows.simulation_days import held_mail_opens, sweep_days
from workflows.simulation_result import SimulationResult, TimelineRow

SWEEP_AT = dt.time(7, 0)
CYCLE_START_AT = dt.time(6, 0)
ACTIVATE_AT = dt.time(8, 0)
ESCALATE_AFTER_DAYS = 3  # engine.lifecycle.ESCALATE_AFTER_DAYS
DEFAULT_LADDER = (7, 3, 1)


@dataclass(order=True)
class _Action:
    moment: dt.datetime
    order: int  # at one moment: cycle start, submissions, reviews, sweeps
    kind: str = field(compare=False)
    data: dict[str, Any] = field(compare=False, default_factory=dict)


def _at(day: dt.date, clock_time: dt.time) -> dt.datetime:
    return dt.datetime.combine(day, clock_time, TZ).astimezone(dt.UTC)


def _hash_int(seed: str, low: int, high: int) -> int:
    if high <= low:
        return low
    digest = int(hashlib.sha256(seed.encode("utf-8")).hexdigest()[:8], 16)
    return low + digest % (high - low + 1)


class Simulation:
    def __init__(
        self,
        plan_id: str,
        start: dt.date,
        until: dt.date,
        responses: Responses,
        database_url: str,
        *,
        include_parents: bool = True,
        dispatch: bool = True,
        out: Callable[[str], None] = print,
    ) -> None:
        self.url = database_url
        self.start, self.until = start, until
        self.responses = responses
        self.dispatch = dispatch
        self.out = out
        with session_scope(database_url) as session:
            if current_plan(session, plan_id) is None:
                raise NotFound(
                    f"plan '{plan_id}' is not in the store; `kehoach load` its YAML first"
                )
            self.plans = plan_ids_with_parents(session, plan_id) if include_parents else [plan_id]
            self.definitions = {p: current_plan(session, p) for p in self.plans}
        # (plan, deliverable) filled by a child plan's consolidation, not by a unit's answer
        self.upward_fed = {
            (c.upward.plan, c.upward.deliverable)
            for plan in self.definitions.values()
            if plan is not None
            for c in plan.consolidations
            if c.upward is not None
        }
        self.clock = VirtualClock(_at(start, dt.time(0, 0)))
        self.end = _at(until, dt.time(23, 59, 59))
        self.planned: set[int] = set()  # obligations whose answer is planned or made
        self.queue: list[_Action] = []
        self.done: set[tuple[dt.datetime, str]] = set()
        self.said: set[tuple[str, str]] = set()  # activation warnings printed
        self.result = SimulationResult(self.plans, start, until)

    # ------------------------------------------------------------ bookkeeping

    def _mail(self) -> tuple[int, int]:
        with session_scope(self.url) as session:
            total = session.scalar(select(func.count(OutboxMessage.id))) or 0
            sent = (
                session.scalar(
                    select(func.count(OutboxMessage.id)).where(
                        OutboxMessage.status == OutboxStatus.SENT
                    )
                )
                or 0
            )
        return total, sent

    def _record(self, moment: dt.datetime, what: str, before: tuple[int, int]) -> None:
        after = self._mail()
        row = TimelineRow(moment, what, after[0] - before[0], after[1] - before[1])
        self.result.timeline.append(row)
        self.out(row.render())

    # ------------------------------------------------------------ planning

    def _pending(self) -> list[ObligationInfo]:
        with session_scope(self.url) as session:
            found: list[ObligationInfo] = []
            for plan_id in self.plans:
                found += [
                    o for o in obligations(session, plan_id) if o.status == ObligationStatus.PENDING
                ]
            return found

    def _has_submission(self, obligation_id: int) -> bool:
        with session_scope(self.url) as session:
            return (
                session.scalar(
                    select(Submission.id).where(Submission.obligation_id == obligation_id).limit(1)
                )
                is not None
            )

    def _plan_answer(self, info: ObligationInfo) -> None:
        """Queue the unit's answer to ``info`` per the responses file (or never)."""
        self.planned.add(info.id)
        if info.kind == "consolidation" or (info.plan_id, info.deliverable_id) in self.upward_fed:
            return
        if self._has_submission(info.id):
            return
        rule = self.responses.rule_for(
            info.plan_id, info.unit_id, info.deliverable_id, info.cycle_key
        )
        if rule is not None and rule.never:
            return
        if rule is None and self.responses.submit_default == "never":
            return
        seed = f"{info.plan_id}:{info.unit_id}:{info.deliverable_id}:{info.cycle_key}"
        if rule is not None and rule.at is not None:
            moment = rule.at.astimezone(dt.UTC)
        elif rule is not None and rule.late_days is not None:
            moment = _at(info.due_date + dt.timedelta(days=rule.late_days), dt.time(10, 0))
        else:
            low, high = self.responses.days_before_due
            early = (
                rule.days_before_due
                if rule is not None and rule.days_before_due is not None
                else _hash_int(seed, low, high)
            )
            minute = _hash_int(seed + ":minute", 0, 8 * 60 - 1)
            moment = _at(info.due_date - dt.timedelta(days=early), dt.time(8, 0)) + dt.timedelta(
                minutes=minute
            )
        moment = max(moment, self.clock.now() + dt.timedelta(hours=1))
        self.queue.append(_Action(moment, 1, "submit", {"info": info, "rule": rule}))

    def _sweep_days(self, pending: list[ObligationInfo]) -> dict[dt.date, set[str]]:
        """The days a sweep can change something, and which plans to sweep on each."""
        days: dict[dt.date, set[str]] = {}
        for info in pending:
            plan = self.definitions.get(info.plan_id)
            deliverable = plan.deliverable(info.deliverable_id) if plan else None
            ladder = deliverable.reminders if deliverable is not None else DEFAULT_LADDER
            wanted = {info.due_date - dt.timedelta(days=r) for r in ladder if r > 0}
            wanted.add(info.due_date + dt.timedelta(days=1))
            wanted.add(info.due_date + dt.timedelta(days=ESCALATE_AFTER_DAYS))
            if info.kind == "consolidation":
                wanted.add(info.due_date)
            for day in wanted:
                days.setdefault(day, set()).add(info.plan_id)
        return days

    def _next(self) -> _Action | None:
        now = self.clock.now()
        pending = self._pending()
        for info in pending:
            if info.id not in self.planned:
                self._plan_answer(info)
        # Queued actions leave the queue when done; generated ones are remembered.
        candidates = [a for a in self.queue if a.moment >= now]
        days = self._sweep_days(pending)
        for day, plan_id in sweep_days(self.url, self.plans):
            days.setdefault(day, set()).add(plan_id)
        for day, plans in days.items():
            moment = _at(day, SWEEP_AT)
            if moment >= now and (moment, "sweep") not in self.done:
                candidates.append(_Action(moment, 3, "sweep", {"plans": plans}))
        for year in range(self.start.year + 1, self.until.year + 1):
            moment = _at(dt.date(year, 1, 1), CYCLE_START_AT)
            if moment >= now and (moment, "cycle") not in self.done:
                candidates.append(_Action(moment, 0, "cycle", {"year": year}))
        opens = held_mail_opens(self.url, now) if self.dispatch else None
        if opens is not None and (opens, "dispatch") not in self.done:
            candidates.append(_Action(opens, 4, "dispatch"))
        candidates = [a for a in candidates if a.moment <= self.end]
        return min(candidates) if candidates else None

    # ------------------------------------------------------------ acting

    def _flow(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        self.result.flow_runs += 1
        return fn(*args, database_url=self.url, dispatch=self.dispatch, **kwargs)

    def activate(self, moment: dt.datetime, years: list[int], label: str) -> None:
        from workflows.activate import activate_flow

        for plan_id in self.plans:  # parents first: a report handed upward needs its target
            before = self._mail()
            result = self._flow(activate_flow, plan_id, now=iso(moment), years=years)
            self._record(
                moment,
                f"{label} {plan_id}: {result['created']} nghĩa vụ mới cho {result['units']} "
                f"đơn vị (chu kỳ {', '.join(result['cycles'])})",
                before,
            )
            # what the activation did about units that ended (moved to whom, held), and
            # its other warnings: in the terminal, each once however many cycles start
            for warning in result.get("warnings") or []:
                if (plan_id, warning) not in self.said:
                    self.said.add((plan_id, warning))
                    self.out(f"  lưu ý ({plan_id}): {warning}")

    def send_held(self, moment: dt.datetime) -> None:
        """The sending window opens: what waited for it goes (workflows.dispatch)."""
        from workflows.dispatch import dispatch_flow

        before = self._mail()
        self.result.flow_runs += 1
        dispatch_flow(now=moment.isoformat(), database_url=self.url)
        self._record(moment, "gửi email chờ giờ làm việc", before)

    def sweep(self, moment: dt.datetime, plans: set[str]) -> None:
        from workflows.sweep import sweep_flow

        for plan_id in reversed(self.plans):  # children first: their reports go upward
            if plan_id not in plans:
                continue
            before = self._mail()
            # the simulated consolidating unit approves its drafts itself (approve_drafts)
            result = self._flow(sweep_flow, plan_id, now=iso(moment), request_approval=False)
            parts = []
            if result["reminders"]:
                parts.append(f"{len(result['reminders'])} nhắc hạn")
            if result["overdue"]:
                parts.append(f"{len(result['overdue'])} quá hạn")
            if result["escalations"]:
                parts.append(f"{len(result['escalations'])} báo cáo lãnh đạo")
            if result["transferred"]:
                parts.append(f"{len(result['transferred'])} chuyển đơn vị kế thừa")
            for done in result["consolidated"]:
                for item in done["consolidated"]:
                    parts.append(self._consolidation_text(item))
            for done in result.get("closed", []):
                parts.append(done["summary"])
            parts += self.approve_drafts(moment, plan_id)
            if parts:
                self._record(moment, f"quét hạn {plan_id}: " + "; ".join(parts), before)

    def approve_drafts(self, moment: dt.datetime, plan_id: str) -> list[str]:
        """The consolidating unit's part, played: each draft report of the plan whose
        review-by day has come (engine.approval_deadlines; a draft written on the upward
        date is due that day) is approved (sections marked as simulated), a one-page
        stand-in marked as such kept as the signed file (a real one is signed by hand or
        digitally) and sent upward. Until then a late answer revises the draft."""
        from engine import approval
        from engine.approval_deadlines import step_deadlines, stored_calendar
        from engine.states import ReportApproval
        from engine.store.models import ConsolidatedReport
        from workflows.approve_report import approve_report_flow

        day = moment.astimezone(TZ).date()
        with session_scope(self.url) as session:
            drafts = []
            calendar = stored_calendar(session)
            for r in session.query(ConsolidatedReport).filter(
                ConsolidatedReport.approval == ReportApproval.DRAFT
            ):
                subject = approval.subject_of(session, r.id)
                if subject.plan_id != plan_id:
                    continue
                due = subject.duty.due_date if subject.duty is not None else day
                if day >= step_deadlines(session, due, r, calendar).review_by:
                    drafts.append(r.id)
        texts = []
        for report_id in drafts:
            narrative = {key: f"(Mô phỏng) {label}." for key, label in approval.SECTIONS}
            done = self._flow(
                approve_report_flow,
                report_id,
                narrative=narrative,
                by="mô phỏng",
                send=True,
                simulated=True,
                now=iso(moment),
            )
            texts.append(f"DUYỆT báo cáo tổng hợp số {done['number']}, ký (mô phỏng), gửi cấp trên")
        return texts

    @staticmethod
    def _consolidation_text(item: dict[str, Any]) -> str:
        text = (
            f"TỔNG HỢP {item['plan_id']} {item['cycle_key']}: {len(item['on_time'])} đúng hạn, "
            f"{len(item['late'])} trễ hạn ({', '.join(item['late']) or '-'}), "
            f"{len(item['missing'])} chưa nộp ({', '.join(item['missing']) or '-'})"
        )
        if item.get("upward_plan"):
            text += f"; đã gửi lên {item['upward_plan']}"
        return text

    def _stored_file(self, info: ObligationInfo, moment: dt.datetime) -> list[int]:
        from engine.documents import store_file

        body = (
            f"KẾ HOẠCH CỤ THỂ\n{info.unit_name}\n\n"
            f"Triển khai thực hiện: {info.deliverable_title}\n"
            f"(Văn bản mô phỏng, tạo lúc {moment.astimezone(TZ):%d/%m/%Y %H:%M}.)\n"
        ).encode()
        with session_scope(self.url) as session:
            row = store_file(
                session,
                body,
                name=f"{info.deliverable_id}-{info.unit_id}.txt",
                content_type="text/plain; charset=utf-8",
                now=moment,
                files_dir=Path(settings().files_dir),
            )
            return [row.id]

    def submit(
        self,
        moment: dt.datetime,
        info: ObligationInfo,
        rule: Rule | None,
        overrides: dict[str, Any] | None = None,
        again: bool = False,
    ) -> None:
        from engine.lifecycle import SubmissionRejected, record_submission
        from workflows.intake import intake_flow

        plan = self.definitions[info.plan_id]
        assert plan is not None, info.plan_id  # every simulated plan was loaded at start
        deliverable = plan.deliverable(info.deliverable_id)
        values: dict[str, Any] | None = None
        files: list[int] = []
        summary = rule.summary if rule is not None else None
        if deliverable is not None and deliverable.kind.value == "report":
            template = plan.template(deliverable.template or "")
            assert template is not None  # the loader checks that a report has one
            seed = f"{info.plan_id}:{info.unit_id}:{info.deliverable_id}:{info.cycle_key}"
            values = report_values(
                template,
                self.responses.default_values,
                {**(rule.values if rule else {}), **(overrides or {})},
                seed,
                moment.astimezone(TZ).date(),
            )
        else:
            summary = summary or f"Kế hoạch cụ thể của {info.unit_name} triển khai Kế hoạch."
            files = self._stored_file(info, moment)
        before = self._mail()
        try:
            with session_scope(self.url) as session:
                submission = record_submission(
                    session,
                    info.id,
                    values=values,
                    summary=summary,
                    file_ids=files,
                    source="sim",
                    now=moment,
                    actor=f"unit:{info.unit_id}",
                )
                submission_id = submission.id
        except SubmissionRejected as exc:
            self._record(moment, f"BỊ TỪ CHỐI {info.label}: {exc}", before)
            return
        self.result.submissions += 1
        result = self._flow(intake_flow, submission_id, now=iso(moment), request_review=False)
        late = "đúng hạn" if result["on_time"] else "TRỄ HẠN"
        verb = "nộp lại" if again else "nộp"
        self._record(moment, f"{verb} · {info.label} ({late})", before)
        for done in result["consolidated"]:
            for item in done["consolidated"]:
                self._record(moment, self._consolidation_text(item) + " (sớm)", self._mail())
        for done in result.get("reconsolidated") or []:  # the answer came after the draft
            revision = done.get("revision")
            if revision and revision.get("created"):
                text = self._consolidation_text(revision)
                self._record(moment, f"{text} (lập lại lần {revision['revision']})", self._mail())
        if rule is not None and rule.review is not None and not again:
            self.queue.append(
                _Action(
                    moment + dt.timedelta(days=rule.review.after_days),
                    2,
                    "review",
                    {"info": info, "rule": rule, "submission_id": submission_id},
                )
            )

    def review(
        self, moment: dt.datetime, info: ObligationInfo, rule: Rule, submission_id: int
    ) -> None:
        from workflows.review import review_flow

        assert rule.review is not None
        before = self._mail()
        result = self._flow(
            review_flow,
            submission_id,
            decision=rule.review.decision,
            reason=rule.review.reason,
            by="mô phỏng",
            now=iso(moment),
        )
        word = "CHẤP NHẬN" if rule.review.decision == "accept" else "TRẢ LẠI"
        reason = f": {rule.review.reason}" if rule.review.reason else ""
        self._record(
            moment,
            f"{word} · {info.label}{reason} ({ReviewState(result['review_state']).label.lower()})",
            before,
        )
        if rule.review.decision == "return" and rule.resubmit is not None:
            after = int(rule.resubmit.get("after_days", 2))
            self.queue.append(
                _Action(
                    moment + dt.timedelta(days=after),
                    1,
                    "resubmit",
                    {"info": info, "rule": rule, "values": dict(rule.resubmit.get("values") or {})},
                )
            )

    # ------------------------------------------------------------ the loop

    def run(self) -> SimulationResult:
        started = time.perf_counter()
        first = _at(self.start, ACTIVATE_AT)
        self.clock.set(first)
        self.activate(first, [self.start.year], "kích hoạt")
        while True:
            action = self._next()
            if action is None:
                break
            self.clock.set(action.moment)
            moment = action.moment
            if action.kind in ("cycle", "sweep", "dispatch"):
                self.done.add((moment, action.kind))
            if action.kind == "dispatch":
                self.send_held(moment)
            elif action.kind == "cycle":
                self.activate(moment, [action.data["year"]], "bắt đầu chu kỳ")
            elif action.kind == "sweep":
                self.sweep(moment, action.data["plans"])
            elif action.kind in ("submit", "resubmit", "review"):
                self.queue.remove(action)
                if action.kind == "review":
                    self.review(
                        moment,
                        action.data["info"],
                        action.data["rule"],
                        action.data["submission_id"],
                    )
                else:
                    self.submit(
                        moment,
                        action.data["info"],
                        action.data["rule"],
                        action.data.get("values"),
                        again=action.kind == "resubmit",
                    )
        self.result.seconds = time.perf_counter() - started
        self._finish()
        return self.result

    def _finish(self) -> None:
        with session_scope(self.url) as session:
            self.result.reports = [
                path
                for path in session.scalars(
                    select(ConsolidatedReport.document_path)
                    .join(Cycle, ConsolidatedReport.cycle_id == Cycle.id)
                    .join(PlanInstance, Cycle.instance_id == PlanInstance.id)
                    .where(PlanInstance.plan_id.in_(self.plans))
                    .order_by(ConsolidatedReport.id)
                )
                if path
            ]
            self.result.outbox = {
                status: count
                for status, count in session.execute(
                    select(OutboxMessage.status, func.count(OutboxMessage.id))
                    .join(Obligation, OutboxMessage.obligation_id == Obligation.id, isouter=True)
                    .group_by(OutboxMessage.status)
                )
            }


def simulate(
    plan_id: str,
    start: dt.date,
    until: dt.date,
    responses: str | Path | Responses | None = None,
    *,
    database_url: str | None = None,
    include_parents: bool = True,
    dispatch: bool = True,
    out: Callable[[str], None] = print,
) -> SimulationResult:
    """Run ``plan_id`` (and its loaded parents) from ``start`` to ``until`` on a virtual clock.

    Needs a reachable Prefect API (``PREFECT_API_URL``); every flow run goes there.
    """
    if until < start:
        raise ValueError(f"--until {until} is before --from {start}")
    answers = responses if isinstance(responses, Responses) else load_responses(responses)
    sim = Simulation(
        plan_id,
        start,
        until,
        answers,
        database(database_url),
        include_parents=include_parents,
        dispatch=dispatch,
        out=out,
    )
    with in_process_runs():
        return sim.run()
