"""A cheap open-loop HTTP/1.1 load generator for loopback benchmarks.

The load generator shares the machine's cores with the server it measures, so it must
cost as little as possible: requests are pre-built bytes sent on keep-alive connections
by an asyncio protocol (no HTTP library, no per-request objects beyond a float), and
responses are parsed only as far as the status line and ``content-length``.

Open loop, honest about queueing: request ``i`` is *scheduled* at ``t0 + i / rate``
(``loop.call_at``) whatever earlier answers did, and its latency runs from that moment
to its last response byte, so a request that waits for a free connection or a slow
server counts its wait (no coordinated omission). ``lag`` is how late this process
itself wrote the request: a large lag says the generator, not the server, was slow.
"""

from __future__ import annotations

import asyncio
import collections
import time
from dataclasses import dataclass, field
from urllib.parse import urlencode


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    index = min(len(ordered) - 1, max(0, round(p / 100 * len(ordered) + 0.5) - 1))
    return ordered[index]


def get_bytes(host: str, path: str, cookie: str | None = None) -> bytes:
    lines = [f"GET {path} HTTP/1.1", f"Host: {host}", "Accept: text/html"]
    if cookie:
        lines.append(f"Cookie: {cookie}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def post_form_bytes(host: str, path: str, fields: dict[str, str], cookie: str | None) -> bytes:
    body = urlencode(fields).encode("ascii")
    lines = [
        f"POST {path} HTTP/1.1",
        f"Host: {host}",
        "Content-Type: application/x-www-form-urlencoded",
        f"Content-Length: {len(body)}",
    ]
    if cookie:
        lines.append(f"Cookie: {cookie}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


@dataclass
class Response:
    status: int
    headers: dict[str, str]
    body: bytes


class ProtocolError(Exception):
    pass


def parse_head(head: bytes) -> tuple[int, dict[str, str]]:
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/1."):
        raise ProtocolError(f"not an HTTP/1.x status line: {lines[0][:80]!r}")
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        key = name.strip().lower()
        # repeated headers (set-cookie) joined as a browser would read them one by one
        headers[key] = f"{headers[key]}\n{value.strip()}" if key in headers else value.strip()
    if headers.get("transfer-encoding", "").lower() == "chunked":
        raise ProtocolError("chunked responses are not handled by this client")
    return int(parts[1]), headers


class _Connection(asyncio.Protocol):
    """One keep-alive connection: one request in flight at a time."""

    def __init__(self, pool: Pool) -> None:
        self.pool = pool
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.head: tuple[int, dict[str, str]] | None = None
        self.length = 0
        self.done: collections.abc.Callable[[Response | Exception], None] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def send(self, data: bytes, done: collections.abc.Callable[[Response | Exception], None]):
        self.done = done
        assert self.transport is not None
        self.transport.write(data)

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        if self.head is None:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            try:
                self.head = parse_head(bytes(self.buffer[:end]))
            except (ProtocolError, ValueError) as exc:
                self._finish(exc)
                return
            self.length = int(self.head[1].get("content-length", "0"))
            del self.buffer[: end + 4]
        if len(self.buffer) >= self.length:
            status, headers = self.head
            body = bytes(self.buffer[: self.length])
            del self.buffer[: self.length]
            self.head = None
            self._finish(Response(status, headers, body))
            if headers.get("connection", "").lower() == "close":
                self.connection_lost(None)

    def _finish(self, outcome: Response | Exception) -> None:
        done, self.done = self.done, None
        if done is not None:
            done(outcome)
        if isinstance(outcome, Exception) or self.transport is None:
            return
        self.pool.release(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self.pool.lost(self)
        transport, self.transport = self.transport, None
        if transport is not None:
            transport.close()
        done, self.done = self.done, None
        if done is not None:
            done(exc or ProtocolError("connection closed before the response"))


@dataclass
class Pool:
    """Up to ``size`` keep-alive connections to ``host:port``; requests beyond them wait
    (in order) for the first connection free."""

    host: str
    port: int
    size: int = 64
    idle: collections.deque[_Connection] = field(default_factory=collections.deque)
    waiting: collections.deque[tuple[bytes, object]] = field(default_factory=collections.deque)
    opened: int = 0
    opening: int = 0

    async def open(self, count: int) -> None:
        loop = asyncio.get_running_loop()
        for _ in range(count):
            _, conn = await loop.create_connection(lambda: _Connection(self), self.host, self.port)
            self.opened += 1
            self.idle.append(conn)

    def submit(self, data: bytes, done) -> None:  # type: ignore[no-untyped-def]
        if self.idle:
            self.idle.popleft().send(data, done)
            return
        self.waiting.append((data, done))
        if self.opened + self.opening < self.size:
            self.opening += 1
            asyncio.ensure_future(self._grow())

    async def _grow(self) -> None:
        try:
            await self.open(1)
        except OSError as exc:
            if self.waiting:
                _, done = self.waiting.popleft()
                done(exc)  # type: ignore[operator]
            return
        finally:
            self.opening -= 1
        if self.waiting and self.idle:
            data, done = self.waiting.popleft()
            self.idle.popleft().send(data, done)  # type: ignore[arg-type]

    def release(self, conn: _Connection) -> None:
        if self.waiting:
            data, done = self.waiting.popleft()
            conn.send(data, done)  # type: ignore[arg-type]
        else:
            self.idle.append(conn)  # FIFO: every connection keeps being used

    def lost(self, conn: _Connection) -> None:
        if conn in self.idle:
            self.idle.remove(conn)
        if conn.transport is not None:
            self.opened -= 1

    def close(self) -> None:
        for conn in list(self.idle):
            if conn.transport is not None:
                conn.transport.close()

    async def request(self, data: bytes, timeout: float = 30.0) -> Response:
        future: asyncio.Future[Response] = asyncio.get_running_loop().create_future()

        def done(outcome: Response | Exception) -> None:
            if future.done():
                return
            if isinstance(outcome, Exception):
                future.set_exception(outcome)
            else:
                future.set_result(outcome)

        self.submit(data, done)
        return await asyncio.wait_for(future, timeout)


@dataclass
class Run:
    latencies: list[float]  # ms from the scheduled moment to the response
    lags: list[float]  # ms from the scheduled moment to the write
    statuses: dict[int, int]  # -1: an error (reset, timeout, unreadable answer)
    elapsed: float  # s from the first scheduled moment to the last response
    client_cpu: float  # s of this process's CPU during the run


async def open_loop(pool: Pool, requests: list[bytes], rate: float, timeout: float = 30.0) -> Run:
    """Send ``requests[i]`` at ``t0 + i / rate``; wait for every answer (or ``timeout``)."""
    loop = asyncio.get_running_loop()
    latencies: list[float] = []
    lags: list[float] = []
    statuses: dict[int, int] = {}
    left = len(requests)
    finished = loop.create_future()
    cpu_before = time.process_time()
    t0 = loop.time() + 0.2
    now = loop.time

    def fire(data: bytes, scheduled: float) -> None:
        lags.append((now() - scheduled) * 1000)

        def done(outcome: Response | Exception) -> None:
            nonlocal left
            latencies.append((now() - scheduled) * 1000)
            status = -1 if isinstance(outcome, Exception) else outcome.status
            statuses[status] = statuses.get(status, 0) + 1
            left -= 1
            if left == 0 and not finished.done():
                finished.set_result(None)

        pool.submit(data, done)

    for i, data in enumerate(requests):
        loop.call_at(t0 + i / rate, fire, data, t0 + i / rate)
    last = t0 + len(requests) / rate
    try:
        await asyncio.wait_for(finished, last - loop.time() + timeout)
    except TimeoutError:
        statuses[-1] = statuses.get(-1, 0) + left  # never answered: counted, not hidden
        latencies.extend([timeout * 1000.0] * left)
    return Run(latencies, lags, statuses, now() - t0, time.process_time() - cpu_before)


# ---------------------------------------------------------------- the server's side


def worker_of_connections(pid: int, port: int) -> dict[int, int]:
    """{client port: server process} for the established connections to ``port``."""
    import psutil

    root = psutil.Process(pid)
    owners: dict[int, int] = {}
    for proc in [root, *root.children(recursive=True)]:
        try:
            for c in proc.net_connections("tcp"):
                if c.status == "ESTABLISHED" and c.laddr and c.laddr.port == port and c.raddr:
                    owners[c.raddr.port] = proc.pid
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return owners


def connections_per_worker(pid: int, port: int) -> list[int]:
    """How many client connections each server process holds (the split of the load
    over the workers: a keep-alive connection stays with the worker that accepted it)."""
    counts: dict[int, int] = {}
    for owner in worker_of_connections(pid, port).values():
        counts[owner] = counts.get(owner, 0) + 1
    return sorted(counts.values(), reverse=True)


async def balance(pool: Pool, pid: int, port: int, workers: int, tries: int = 200) -> None:
    """Reconnect until every worker holds as many of the pool's connections (within one).

    The kernel hands a new connection to whichever worker accepts first, and one client's
    keep-alive connections then stay put: 24 of 32 went to one of two workers here, so
    that worker took three requests in four. Many browsers behind a proxy spread out;
    this stands in for that."""
    for _ in range(tries):
        owners = worker_of_connections(pid, port)
        by_worker: dict[int | None, list[_Connection]] = {}
        for conn in pool.idle:
            assert conn.transport is not None
            owner = owners.get(conn.transport.get_extra_info("sockname")[1])
            by_worker.setdefault(owner, []).append(conn)
        sizes = sorted(len(v) for v in by_worker.values())
        if len(by_worker) >= workers and sizes[-1] - sizes[0] <= 1:
            return
        heavy = max(by_worker.values(), key=len)
        pool.idle.remove(heavy[0])
        if heavy[0].transport is not None:
            heavy[0].transport.close()
        await pool.open(1)
        await asyncio.sleep(0.01)
