"""What a simulation (workflows.simulate) gives back: its timeline, one row per moment,
and the summary the CLI prints (in Vietnamese)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from engine.calendar import TZ
from engine.states import OutboxStatus
from engine.vntext import weekday


@dataclass
class TimelineRow:
    moment: dt.datetime
    what: str
    queued: int = 0
    sent: int = 0

    def render(self) -> str:
        local = self.moment.astimezone(TZ)
        day = f"{local:%Y-%m-%d} {weekday(local.date()):<8} {local:%H:%M}"
        mail = (
            f"  [email +{self.queued} xếp hàng, {self.sent} đã gửi]"
            if (self.queued or self.sent)
            else ""
        )
        return f"{day}  {self.what}{mail}"


@dataclass
class SimulationResult:
    plans: list[str]
    start: dt.date
    until: dt.date
    timeline: list[TimelineRow] = field(default_factory=list)
    flow_runs: int = 0
    seconds: float = 0.0
    reports: list[str] = field(default_factory=list)
    outbox: dict[str, int] = field(default_factory=dict)
    submissions: int = 0

    def summary_lines(self) -> list[str]:
        total = sum(self.outbox.values())
        return [
            f"Mô phỏng {', '.join(self.plans)} từ {self.start} đến {self.until}: "
            f"{len(self.timeline)} sự kiện, {self.flow_runs} flow run, "
            f"{self.submissions} bản nộp, {total} email "
            f"({', '.join(f'{OutboxStatus(k).label.lower()}: {v}' for k, v in sorted(self.outbox.items()))}) "
            f"trong {self.seconds:.0f} s",
        ]
