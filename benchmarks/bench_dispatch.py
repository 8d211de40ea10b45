"""Dispatcher throughput against the limit of this machine: a bare aiosmtplib loop.

    .venv/bin/python benchmarks/bench_dispatch.py [--messages 3500] [--connections 4]

An aiosmtpd server that accepts and discards runs in its own process on loopback.
Both measurements send the same messages (assignment emails with an .ics part):

- bare: pre-rendered bytes, one reused aiosmtplib connection, one after the other;
  no database, no templates (what the SMTP path alone allows here);
- dispatcher: ``dispatch_pending`` from pending outbox rows in SQLite: claims,
  renders every message, sends over its connection pool, records each outcome and
  the sent bytes.

Prints messages per second for both and the ratio (target: at least 70 %).
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import datetime as dt
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

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
    from engine.store.db import migrate, session_scope
    from engine.store.models import OutboxMessage
    from notifications.outbox import enqueue, enqueue_for_obligation
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
                )
            )
        return [render_message(r, conf).raw for r in rows]


async def bare_loop(port: int, messages: list[bytes], sender: str) -> float:
    import aiosmtplib

    client = aiosmtplib.SMTP(hostname="127.0.0.1", port=port, start_tls=False, timeout=30)
    await client.connect()
    for data in messages[:50]:  # warm-up, not timed
        await client.sendmail(sender, ["warmup@bench.example"], data)
    started = time.perf_counter()
    for i, data in enumerate(messages):
        await client.sendmail(sender, [f"unit{i}@bench.example"], data)
    elapsed = time.perf_counter() - started
    await client.quit()
    return len(messages) / elapsed


async def dispatcher(url: str, conf, expected: int) -> tuple[float, object]:  # type: ignore[no-untyped-def]
    from notifications.dispatch import dispatch_pending

    started = time.perf_counter()
    stats = await dispatch_pending(url, conf)
    elapsed = time.perf_counter() - started
    if stats.sent != expected:
        raise SystemExit(f"dispatcher sent {stats.sent} of {expected}: {stats}")
    return expected / elapsed, stats


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=3500)
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument("--sink", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.sink:
        run_sink(args.sink)
        return 0

    from tests.notifications_factory import make_settings

    port = free_port()
    sink = subprocess.Popen(
        [sys.executable, __file__, "--sink", str(port)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert sink.stdout is not None and sink.stdout.readline().strip() == "ready"
        conf = dataclasses.replace(
            make_settings(),
            smtp_host="127.0.0.1",
            smtp_port=port,
            smtp_connections=args.connections,
            smtp_rate_per_second=0.0,
        )
        with tempfile.TemporaryDirectory() as tmp:
            url = f"sqlite:///{tmp}/bench.sqlite"
            messages = prepare(url, args.messages, conf)
            size = sum(map(len, messages)) / len(messages)
            bare = asyncio.run(bare_loop(port, messages, conf.mail_from))
            rate, stats = asyncio.run(dispatcher(url, conf, args.messages))
    finally:
        sink.terminate()
        sink.wait(10)

    ratio = rate / bare
    print(f"messages: {args.messages} assignment emails, {size / 1024:.1f} KiB each, loopback")
    print(f"bare aiosmtplib loop, 1 reused connection: {bare:8.0f} msg/s")
    print(
        f"dispatcher (SQLite outbox, render, {args.connections} connections): {rate:8.0f} msg/s"
        f"  [{stats.connections} connections opened, {stats.seconds:.2f} s]"
    )
    print(f"ratio: {ratio:.0%} (target >= 70%) {'OK' if ratio >= 0.7 else 'BELOW TARGET'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
