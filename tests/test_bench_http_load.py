"""The portal benchmark's load generator (benchmarks/http_load.py) measures honestly.

Against a real asyncio HTTP server on loopback: the latency of a request runs from its
scheduled moment, so a server slower than the rate shows its queue (no coordinated
omission); statuses are counted as answered; a connection that drops counts as an
error; the pre-built request bytes are what a browser sends.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from urllib.parse import parse_qs

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

from http_load import Pool, get_bytes, open_loop, percentile, post_form_bytes  # noqa: E402


async def _server(handler):  # type: ignore[no-untyped-def]
    """One request at a time per connection; ``handler(head, body)`` -> (delay, status)."""

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            try:
                head = await reader.readuntil(b"\r\n\r\n")
            except (asyncio.IncompleteReadError, ConnectionError):
                break
            length = 0
            for line in head.decode("latin-1").split("\r\n"):
                if line.lower().startswith("content-length:"):
                    length = int(line.split(":", 1)[1])
            body = await reader.readexactly(length) if length else b""
            delay, status = handler(head, body)
            if status is None:  # drop the connection without answering
                writer.close()
                return
            await asyncio.sleep(delay)
            payload = b"ok"
            writer.write(
                f"HTTP/1.1 {status} X\r\ncontent-length: {len(payload)}\r\n"
                "set-cookie: a=1\r\nset-cookie: b=2\r\n\r\n".encode()
                + payload
            )
            await writer.drain()
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[1]


def test_a_slow_server_shows_its_queue_in_the_latency():
    """One connection, a server taking 20 ms a request, 100 requests/s: each request
    waits for the ones before it; latency from the scheduled moment grows to ~1 s for
    the last of 100 (measured from the actual send it would stay near 20 ms)."""

    async def main():  # type: ignore[no-untyped-def]
        server, port = await _server(lambda head, body: (0.02, 200))
        pool = Pool("127.0.0.1", port, size=1)
        await pool.open(1)
        run = await open_loop(pool, [get_bytes(f"127.0.0.1:{port}", "/x")] * 100, rate=100)
        pool.close()
        server.close()
        return run

    run = asyncio.run(main())
    assert run.statuses == {200: 100}
    assert len(run.latencies) == 100
    assert percentile(run.latencies, 50) > 400  # about 500 ms: half the queue
    assert percentile(run.latencies, 99) > 900
    assert percentile(run.lags, 99) < 100  # the client sent on time; the server was late


def test_a_fast_server_is_measured_near_its_service_time_and_statuses_are_counted():
    seen: list[bytes] = []
    form = {"csrf": "f.mac", "f-ket-qua": "Đã rà soát & tuyên truyền"}

    def handler(head: bytes, body: bytes):  # type: ignore[no-untyped-def]
        seen.append(head + body)
        return 0.0, 303 if head.startswith(b"POST") else 200

    async def main():  # type: ignore[no-untyped-def]
        server, port = await _server(handler)
        pool = Pool("127.0.0.1", port, size=4)
        await pool.open(2)
        host = f"127.0.0.1:{port}"
        first = await pool.request(get_bytes(host, "/o/t", "kh_nonce=n"))
        requests = [post_form_bytes(host, "/o/t/submit", form, "kh_nonce=n")] * 50
        run = await open_loop(pool, requests, rate=200)
        pool.close()
        server.close()
        return first, run

    first, run = asyncio.run(main())
    assert first.status == 200 and first.body == b"ok"
    assert first.headers["set-cookie"] == "a=1\nb=2"
    assert run.statuses == {303: 50}
    assert percentile(run.latencies, 50) < 50
    head, _, body = seen[-1].partition(b"\r\n\r\n")
    assert b"Cookie: kh_nonce=n" in head and b"Content-Length: %d" % len(body) in head
    assert parse_qs(body.decode()) == {"csrf": ["f.mac"], "f-ket-qua": [form["f-ket-qua"]]}


def test_a_dropped_connection_is_an_error_not_a_missing_sample():
    calls = {"n": 0}

    def handler(head: bytes, body: bytes):  # type: ignore[no-untyped-def]
        calls["n"] += 1
        return 0.0, None if calls["n"] % 2 == 0 else 200

    async def main():  # type: ignore[no-untyped-def]
        server, port = await _server(handler)
        pool = Pool("127.0.0.1", port, size=2)
        run = await open_loop(pool, [get_bytes(f"127.0.0.1:{port}", "/x")] * 20, rate=100)
        pool.close()
        server.close()
        return run

    run = asyncio.run(main())
    assert sum(run.statuses.values()) == 20 == len(run.latencies)
    assert run.statuses.get(-1, 0) > 0 and run.statuses.get(200, 0) > 0
