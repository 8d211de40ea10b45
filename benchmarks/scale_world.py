"""A national-scale store for the sweep and intake benchmarks, on SQLite or PostgreSQL.

One registry (a ministry and ``units`` communes) and ``plans`` plans that each assign
every commune a yearly report and the ministry its consolidation: ``units + 1`` open
obligations per plan (2,019 communes: 2,020 a plan, 101,000 in 50 plans). The first
``soon`` plans are due a week after :data:`MONDAY` (their 7-day reminder falls on it),
the others in November; every plan's consolidation duty gets Monday's digest.

The store is built once with the real ``activate`` (assignment emails included) and
copied for every measurement: a file copy on SQLite, ``CREATE DATABASE … TEMPLATE`` on
PostgreSQL.
"""

from __future__ import annotations

import datetime as dt
import os
import secrets
import shutil
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
# Links are signed with a key of this run's own (the engine refuses to sign without one).
os.environ.setdefault("KEHOACH_PORTAL_SECRET", secrets.token_urlsafe(48))

from engine.calendar import TZ  # noqa: E402

MONDAY = dt.date(2026, 9, 7)  # the reminder-heavy Monday (digests go out on Mondays)
QUIET = dt.date(2026, 9, 1)  # a Tuesday with nothing due anywhere
ACTIVATED = dt.datetime(2026, 8, 3, 8, 0, tzinfo=TZ)
SOON_DUE = MONDAY + dt.timedelta(days=7)
LATER_DUE = dt.date(2026, 11, 16)
ADMIN_URL = os.environ.get(
    "KEHOACH_TEST_POSTGRES_ADMIN_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)


def plan_ids(plans: int) -> list[str]:
    return [f"quy-mo-{n:02d}" for n in range(1, plans + 1)]


def write_world(folder: Path, plans: int, units: int, soon: int) -> list[Path]:
    """The registry and ``plans`` plan files; returns their paths."""
    folder.mkdir(parents=True, exist_ok=True)
    lines = [
        "kind: registry",
        "id: quy-mo",
        "name: Đăng ký tổng hợp (quy mô)",
        "units:",
        "  - {id: bo, name: Bộ Nội vụ (mẫu), kind: ministry, level: central, "
        "emails: [bo@scale.example]}",
        "  - {id: chinh-phu, name: Chính phủ (mẫu), kind: government, level: central, "
        "emails: [chinhphu@scale.example]}",
    ]
    for c in range(1, units + 1):
        lines.append(
            f"  - {{id: xa-{c}, name: Ủy ban nhân dân xã số {c}, kind: commune-committee, "
            f"level: commune, emails: [xa{c}@scale.example]}}"
        )
    lines += ["groups:", "  - {id: moi-xa, name: Tất cả các xã, kinds: [commune-committee]}"]
    registry = folder / "registry.yaml"
    registry.write_text("\n".join(lines) + "\n", encoding="utf-8")
    paths = [registry]
    for n, plan_id in enumerate(plan_ids(plans)):
        due = SOON_DUE if n < soon else LATER_DUE
        later = due + dt.timedelta(days=14)
        path = folder / f"{plan_id}.yaml"
        path.write_text(
            f"""kind: plan
id: {plan_id}
registry: quy-mo
as_of: 2026-07-01
document:
  type: KH
  issuer_unit: bo
  summary: Kế hoạch thử quy mô toàn quốc số {n + 1}
  signer: {{name: Nguyễn Văn Thử, title: BỘ TRƯỞNG}}
assignments:
  - id: cac-xa
    section: II.1
    heading: UBND các xã, phường, đặc khu
    to: {{group: moi-xa}}
    tasks: [{{id: t1, text: Thực hiện kế hoạch}}]
deliverables:
  - id: bao-cao
    kind: report
    title: Báo cáo năm
    frequency: yearly
    routing: {{to: bo}}
    deadline: {{rule: yearly, day: {due.day}, month: {due.month}}}
    template: mau
consolidations:
  - id: tong-hop
    consolidates: bao-cao
    by: bo
    routing: {{to: chinh-phu}}
    deadline: {{rule: yearly, day: {later.day}, month: {later.month}}}
report_templates:
  - id: mau
    title: Mẫu báo cáo
    fields:
      - {{id: so-vu, label: Số vụ, type: integer, aggregate: sum}}
""",
            encoding="utf-8",
        )
        paths.append(path)
    return paths


def build_store(url: str, files: list[Path], plans: int) -> float:
    """Migrate, store the definitions, activate every plan; returns the seconds taken."""
    from engine.lifecycle import activate
    from engine.loader import load
    from engine.repository import store_catalog
    from engine.store.db import migrate, session_scope

    started = time.perf_counter()
    migrate(url)
    with session_scope(url) as session:
        store_catalog(session, load(files))
    for plan_id in plan_ids(plans):
        with session_scope(url) as session:
            activate(session, plan_id, now=ACTIVATED, years=[2026])
    return time.perf_counter() - started


class Stores:
    """A template store and throw-away copies of it, on one database kind."""

    def __init__(self, kind: str, work: Path) -> None:
        self.kind = kind
        self.work = work
        self.copies: list[str] = []
        tag = uuid.uuid4().hex[:8]
        if kind == "sqlite":
            self.template = f"sqlite:///{work / f'template-{tag}.sqlite'}"
        else:
            self.template = self._pg_url(f"kehoach_bench_{tag}")

    @staticmethod
    def _pg_url(name: str) -> str:
        from sqlalchemy.engine import make_url

        return make_url(ADMIN_URL).set(database=name).render_as_string(hide_password=False)

    def _admin(self, sql: str) -> None:
        from sqlalchemy import create_engine, text
        from sqlalchemy.pool import NullPool

        admin = create_engine(ADMIN_URL, isolation_level="AUTOCOMMIT", poolclass=NullPool)
        with admin.connect() as connection:
            connection.execute(text(sql))
        admin.dispose()

    def create_template(self) -> None:
        if self.kind == "postgres":
            self._admin(f'CREATE DATABASE "{self._name(self.template)}"')

    @staticmethod
    def _name(url: str) -> str:
        from sqlalchemy.engine import make_url

        return str(make_url(url).database)

    def release(self, url: str) -> None:
        """Close this process's connections to ``url`` (needed before copying or dropping)."""
        from engine.store.db import connect

        connect(url).dispose()

    def copy(self) -> str:
        self.release(self.template)
        tag = uuid.uuid4().hex[:8]
        if self.kind == "sqlite":
            source = Path(self.template.split(":///", 1)[1])
            target = self.work / f"copy-{tag}.sqlite"
            shutil.copyfile(source, target)
            url = f"sqlite:///{target}"
        else:
            url = self._pg_url(f"kehoach_bench_{tag}")
            template = self._name(self.template)
            self._admin(f'CREATE DATABASE "{self._name(url)}" TEMPLATE "{template}"')
        self.copies.append(url)
        return url

    def drop(self, url: str) -> None:
        self.release(url)
        if self.kind == "sqlite":
            Path(url.split(":///", 1)[1]).unlink(missing_ok=True)
        else:
            self._admin(f'DROP DATABASE IF EXISTS "{self._name(url)}" WITH (FORCE)')

    def close(self) -> None:
        for url in [*self.copies, self.template]:
            try:
                self.drop(url)
            except Exception as exc:  # a benchmark's clean-up must not hide its figures
                print(f"  (could not drop {url}: {exc})")


def postgres_reachable() -> str | None:
    """None when the machine's PostgreSQL answers, else why not."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.pool import NullPool

    try:
        admin = create_engine(ADMIN_URL, poolclass=NullPool, connect_args={"connect_timeout": 3})
        with admin.connect() as connection:
            connection.execute(text("SELECT 1"))
        admin.dispose()
    except Exception as exc:
        return str(exc).splitlines()[0]
    return None


def load_average() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())
