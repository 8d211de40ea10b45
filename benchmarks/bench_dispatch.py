"""Dispatcher throughput against the limit of this machine: a bare aiosmtplib loop.

    .venv/bin/python benchmarks/bench_dispatch.py [--messages 3500] [--connections 4]
        [--database sqlite,postgres]

An aiosmtpd server that accepts and discards runs in its own process on loopback.
Both measurements send the same messages (assignment emails with an .ics part):

- bare: pre-rendered bytes, one reused aiosmtplib connection, one after the other;
  no database, no templates (what the SMTP path alone allows here);
- dispatcher: ``dispatch_pending`` from pending outbox rows in SQLite (or a throw-away
  PostgreSQL database with ``--database postgres``): claims,
  renders every message, sends over its connection pool, records each outcome and
  the sent bytes.

The two alternate in rounds (bare 700, dispatcher 700, ...) so that other work on
the machine slows both alike; the CPU time per message of this process is printed
too, as it does not depend on that load.

Prints messages per second for both and their ratio over all rounds (target: at least
70 %; exit 1 when missed), and the ratio of each pair of rounds: their spread shows how
much other work on this shared machine moved the figure during the run.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


# ---------------------------------------------------------------- the sink server


def run_sink(port: int) -> None:
    """Accept every message and discard it (runs in a child process)."""
    import signal
    import threading

    from aiosmtpd.controller import Controller

    class Sink:
        async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd hook
            return "250 2.0.0 OK"

    controller = Controller(Sink(), hostname="127.0.0.1", port=port, ready_timeout=10)
    controller.start()
    print("ready", flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    stop.wait()
    controller.stop()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ---------------------------------------------------------------- the measurements


def prepare(url: str, count: int, conf) -> list[bytes]:  # type: ignore[no-untyped-def]
    """Enqueue ``count`` assignment emails; return their rendered bytes for the bare loop."""
    from engine.outbox import enqueue, enqueue_for_obligation
    from engine.store.db import migrate, session_scope
    from engine.store.models import OutboxMessage
    from notifications.render import render_message
    from tests.notifications_factory import make_world

    migrate(url)
    now = dt.datetime.now(dt.UTC)
    with session_scope(url) as session:
        obligation = make_world(session).obligation
        template = enqueue_for_obligation(session, obligation, "assignment", now=now, settings=conf)
        context = dict(template.context)
        session.delete(template)
        rows: list[OutboxMessage] = []
        for i in range(count):
            rows.append(
                enqueue(
                    session,
                    kind="assignment",
                    idempotency_key=f"bench:{i}",
                    to_addrs=[f"unit{i}@bench.example"],
                    context=context,
                    obligation_id=obligation.id,
                    plan_id=obligation.cycle.instance.plan_id,
                    unit_id=obligation.unit_id,
                    now=now,
                    settings=conf,
                ).row
            )
        return [render_message(r, conf).raw for r in rows]


async def measure(url: str, conf, messages: list[bytes], rounds: int) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    """Alternate bare and dispatcher rounds so both see the same machine load.

    Returns wall seconds and process CPU seconds for each side."""
    import aiosmtplib

    from notifications.dispatch import dispatch_pending

    totals: dict[str, Any] = {"bare_wall": 0.0, "bare_cpu": 0.0, "disp_wall": 0.0, "disp_cpu": 0.0}
    totals["pairs"] = []  # (bare seconds, dispatcher seconds) of each pair of rounds
    client = aiosmtplib.SMTP(hostname="127.0.0.1", port=conf.smtp_port, start_tls=False, timeout=30)
    await client.connect()
    for data in messages[:50]:  # warm-up, not timed
        await client.sendmail(conf.mail_from, ["warmup@bench.example"], data)
    per_round = -(-len(messages) // rounds)
    sent = 0
    for start in range(0, len(messages), per_round):
        chunk = messages[start : start + per_round]
        wall, cpu = time.perf_counter(), time.process_time()
        for i, data in enumerate(chunk, start):
            await client.sendmail(conf.mail_from, [f"unit{i}@bench.example"], data)
        bare_wall = time.perf_counter() - wall
        totals["bare_wall"] += bare_wall
        totals["bare_cpu"] += time.process_time() - cpu

        wall, cpu = time.perf_counter(), time.process_time()
        stats = await dispatch_pending(url, conf, limit=len(chunk))
        disp_wall = time.perf_counter() - wall
        totals["disp_wall"] += disp_wall
        totals["disp_cpu"] += time.process_time() - cpu
        totals["pairs"].append((bare_wall, disp_wall))
        if stats.sent != len(chunk):
            raise SystemExit(f"dispatcher sent {stats.sent} of {len(chunk)}: {stats}")
        sent += stats.sent
    await client.quit()
    return totals


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=3500)
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--database", default="sqlite", help="comma list: sqlite, postgres")
    parser.add_argument("--sink", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.sink:
        run_sink(args.sink)
        return 0
    databases = [d.strip() for d in args.database.split(",") if d.strip()]
    if not databases or set(databases) - {"sqlite", "postgres"}:
        parser.error("--database takes sqlite, postgres or both")

    from tests.notifications_factory import make_settings

    port = free_port()
    sink = subprocess.Popen(
        [sys.executable, __file__, "--sink", str(port)], stdout=subprocess.PIPE, text=True
    )
    ok = True
    try:
        assert sink.stdout is not None and sink.stdout.readline().strip() == "ready"
        conf = make_settings(
            smtp_host="127.0.0.1",
            smtp_port=port,
            smtp_connections=args.connections,
            smtp_rate_per_second=0.0,
            mail_hours="any",  # whatever the hour the benchmark runs at
        )
        for database in databases:
            with _store(database) as url:
                messages = prepare(url, args.messages, conf)
                totals = asyncio.run(measure(url, conf, messages, args.rounds))
            ok = _report(database, args, messages, totals) and ok
    finally:
        sink.terminate()
        sink.wait(10)
    return 0 if ok else 1


@contextlib.contextmanager
def _store(database: str) -> Iterator[str]:
    """A fresh store's URL: a SQLite file, or a throw-away PostgreSQL database."""
    if database == "postgres":
        sys.path.insert(0, str(ROOT / "benchmarks"))
        from bench_portal import postgres_database

        with postgres_database() as url:
            yield url
        return
    with tempfile.TemporaryDirectory() as tmp:
        yield f"sqlite:///{tmp}/bench.sqlite"


def _report(
    database: str, args: argparse.Namespace, messages: list[bytes], totals: dict[str, Any]
) -> bool:
    n = args.messages
    size = sum(map(len, messages)) / len(messages)
    bare, rate = n / totals["bare_wall"], n / totals["disp_wall"]
    ratio = rate / bare
    store = "SQLite" if database == "sqlite" else "PostgreSQL"
    print(
        f"[{database}] messages: {n} assignment emails ({size / 1024:.1f} KiB, with .ics), loopback,"
    )
    print(f"          {args.rounds} alternating rounds (the same load on both sides)")
    print(
        f"bare aiosmtplib loop, 1 reused connection:        {bare:7.0f} msg/s"
        f"  ({totals['bare_cpu'] / n * 1000:.2f} ms CPU/msg in this process)"
    )
    print(
        f"dispatcher ({store} outbox, render, {args.connections} connections): {rate:7.0f} msg/s"
        f"  ({totals['disp_cpu'] / n * 1000:.2f} ms CPU/msg in this process)"
    )
    paired = [bare_s / disp_s for bare_s, disp_s in totals["pairs"]]
    print(f"ratio of each pair of rounds: {' '.join(f'{r:.0%}' for r in paired)}")
    print(f"ratio: {ratio:.0%} (target >= 70%) {'OK' if ratio >= 0.7 else 'BELOW TARGET'}")
    return ratio >= 0.7


if __name__ == "__main__":
    raise SystemExit(main())
