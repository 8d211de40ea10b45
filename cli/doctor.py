"""``kehoach doctor``: check a configuration end to end, and say what to do.

Each check uses the real component, with a short timeout: the store (reachable, its
schema at this version's newest migration), the Prefect API (answers, its database
ready, accepts this process's ``PREFECT_API_AUTH_STRING``), the ``kehoach`` work pool
(exists, not paused, a worker whose heartbeat is recent), the SMTP server (greets,
STARTTLS/TLS and login as configured), the portal's signing key (set, long enough).
A line per check, in Vietnamese: what was found, or what is wrong and what to do.
Exit 0 only when every check passes, 1 otherwise (2: a setting written wrong).

The checks read the settings of ``environ`` (default: the process environment), so a
test can check another configuration in-process: :func:`run_checks`.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import datetime as dt
import json
import os
import ssl
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from cli.common import out
from engine.config import ConfigError, Settings, load_settings, prefect_api

TIMEOUT = 5.0  # seconds, each network check
HEARTBEAT_MISSES = 3  # a worker is live while its last heartbeat is within 3 intervals


@dataclass(frozen=True)
class Check:
    """One check's outcome: ``problem`` is None when it passed."""

    name: str
    found: str = ""
    problem: str | None = None

    @property
    def ok(self) -> bool:
        return self.problem is None

    def line(self) -> str:
        if self.ok:
            return f"[ĐẠT]  {self.name}: {self.found}"
        return f"[LỖI]  {self.name}: {self.problem}"


# What drivers say in English, said in Vietnamese (the driver's words follow in brackets).
_REASONS = (
    (
        ("connection refused", "connect call failed", "errno 111"),
        "kết nối bị từ chối: không có máy chủ nào nghe ở địa chỉ và cổng này",
    ),
    (
        (
            "name or service not known",
            "nodename nor servname",
            "temporary failure in name",
            "could not translate host name",
        ),
        "không tìm thấy tên máy",
    ),
    (("timed out", "timeout"), f"không trả lời trong {TIMEOUT:g} giây"),
    (("password authentication failed",), "sai tài khoản hoặc mật khẩu"),
    (("does not exist",), "cơ sở dữ liệu hoặc tài khoản không tồn tại"),
    (("certificate", "ssl", "tls"), "lỗi TLS (chứng chỉ hoặc chế độ mã hóa không khớp)"),
)


def why(exc: BaseException) -> str:
    """A failure in Vietnamese, with the driver's own words after it."""
    words = str(getattr(exc, "orig", None) or exc).strip().splitlines()
    raw = (words[0] if words else type(exc).__name__)[:200]
    lower = f"{type(exc).__name__} {raw}".lower()
    for needles, said in _REASONS:
        if any(n in lower for n in needles):
            return f"{said} [{raw}]"
    return f"{type(exc).__name__}: {raw}"


# ---------------------------------------------------------------- the store


def _shown(url: str) -> str:
    """The URL without its password."""
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # a malformed URL is reported by the connection attempt
        return url


def check_store(conf: Settings) -> Check:
    """Reachable, and at the newest migration this version knows."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.pool import NullPool

    from engine.store.db import schema_revisions

    url = conf.database
    name = f"Cơ sở dữ liệu kehoach ({_shown(url)})"
    where = "KEHOACH_DATABASE_URL" if conf.database_url else "KEHOACH_HOME"
    if url.startswith("sqlite"):
        path = url.split(":///", 1)[-1]
        if path and path != ":memory:" and not os.path.exists(path):
            return Check(
                name,
                problem=f"không có tệp {path}. Kiểm tra {where}; nếu đây là lần đầu, nạp "
                "định nghĩa bằng `kehoach load TỆP…` (lệnh này tạo cơ sở dữ liệu).",
            )
    args = {} if url.startswith("sqlite") else {"connect_timeout": int(TIMEOUT)}
    try:
        engine = create_engine(url, poolclass=NullPool, connect_args=args)
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
            current, heads = schema_revisions(connection)
        engine.dispose()
    except Exception as exc:  # refused, unknown host, wrong password, malformed URL
        return Check(
            name,
            problem=f"không kết nối được ({why(exc)}). Kiểm tra máy chủ cơ sở dữ liệu đang "
            f"chạy và địa chỉ, cổng, tên, tài khoản trong {where}.",
        )
    if not current:
        return Check(
            name,
            problem="kết nối được nhưng chưa có cấu trúc bảng của kehoach (chưa nâng cấp). "
            "Chạy `kehoach load TỆP…` hoặc `kehoach plans` một lần (mọi lệnh kehoach tự "
            "nâng cấp cấu trúc), rồi chạy lại `kehoach doctor`.",
        )
    unknown = sorted(set(current) - set(heads))
    if unknown:
        return Check(
            name,
            problem=f"cấu trúc ở phiên bản {', '.join(unknown)} mà bản kehoach này không "
            "biết (một bản mới hơn đã nâng cấp nó): cài cùng phiên bản kehoach trên máy này.",
        )
    if set(current) != set(heads):
        return Check(
            name,
            problem=f"cấu trúc ở phiên bản {', '.join(current)}, bản này cần "
            f"{', '.join(heads)}: chạy `kehoach plans` một lần để nâng cấp.",
        )
    return Check(name, found=f"kết nối được, cấu trúc mới nhất ({', '.join(heads)})")


# ---------------------------------------------------------------- Prefect


class _Api:
    """Prefect's REST API with the auth string and, for POSTs, a CSRF token."""

    def __init__(self, api_url: str, auth: str) -> None:
        self.base = api_url.rstrip("/")
        self.headers = {"Content-Type": "application/json"}
        if auth:
            token = base64.b64encode(auth.encode("utf-8")).decode("ascii")
            self.headers["Authorization"] = f"Basic {token}"
        self._csrf: dict[str, str] | None = None

    def call(self, path: str, body: dict[str, Any] | None = None) -> Any:
        headers = dict(self.headers)
        if body is not None:
            headers.update(self._csrf_headers())
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(f"{self.base}{path}", data=data, headers=headers)
        with urllib.request.urlopen(request, timeout=TIMEOUT) as response:
            return json.loads(response.read() or b"null")

    def _csrf_headers(self) -> dict[str, str]:
        if self._csrf is None:
            self._csrf = {}
            try:  # 422 when the server has no CSRF protection: nothing to send
                token = self.call("/csrf-token?client=kehoach-doctor")
                self._csrf = {
                    "Prefect-Csrf-Token": token["token"],
                    "Prefect-Csrf-Client": "kehoach-doctor",
                }
            except urllib.error.HTTPError:
                pass
        return self._csrf


def check_prefect(conf: Settings, environ: Mapping[str, str]) -> list[Check]:
    """The API, its database, the credentials, then the work pool and its workers."""
    from workflows.server import api_problem

    configured = prefect_api(conf, environ)
    name = "Prefect API"
    if configured is None:
        return [
            Check(
                name,
                problem="chưa cấu hình: đặt PREFECT_API_URL (hoặc KEHOACH_PREFECT_API_URL) là "
                "địa chỉ API của máy chủ Prefect, ví dụ http://prefect.internal:4200/api.",
            )
        ]
    api_url, origin = configured
    name = f"Prefect API ({origin}={api_url})"
    reachable = _health(api_url)
    if reachable is not None:
        return [
            Check(
                name,
                problem=f"{reachable}. Khởi động máy chủ Prefect (`prefect server start`) "
                f"hoặc sửa {origin}.",
            )
        ]
    checks = [Check(name, found="trả lời")]
    checks.append(_prefect_database(api_url))
    auth = environ.get("PREFECT_API_AUTH_STRING", "")
    refused = api_problem(api_url, timeout=TIMEOUT, auth_string=auth)
    label = "Xác thực với Prefect (PREFECT_API_AUTH_STRING)"
    if refused is not None:
        return [*checks, Check(label, problem=refused)]
    checks.append(Check(label, found="được chấp nhận" if auth else "máy chủ không đòi xác thực"))
    checks.append(check_pool(_Api(api_url, auth)))
    return checks


def _health(api_url: str) -> str | None:
    """Why ``GET /health`` fails, or None (open even on a server with an auth string)."""
    base = api_url.rstrip("/")
    try:
        with urllib.request.urlopen(f"{base}/health", timeout=TIMEOUT):
            return None
    except urllib.error.HTTPError as exc:
        return f"{base}/health trả lời {exc.code} (địa chỉ này không phải Prefect API?)"
    except (OSError, ValueError) as exc:  # refused, timed out, unknown host, malformed URL
        return f"không dùng được ({why(exc)})"


def _prefect_database(api_url: str) -> Check:
    name = "Cơ sở dữ liệu của Prefect"
    try:
        with urllib.request.urlopen(f"{api_url.rstrip('/')}/ready", timeout=TIMEOUT):
            return Check(name, found="sẵn sàng (GET /api/ready)")
    except urllib.error.HTTPError as exc:
        reason = f"máy chủ Prefect trả lời {exc.code} ở /api/ready"
    except OSError as exc:
        reason = f"/api/ready không trả lời ({why(exc)})"
    return Check(
        name,
        problem=f"{reason}: máy chủ Prefect chưa kết nối được cơ sở dữ liệu của nó. Kiểm "
        "tra PREFECT_API_DATABASE_CONNECTION_URL của máy chủ và máy chủ PostgreSQL.",
    )


def check_pool(api: _Api, pool: str | None = None) -> Check:
    """The work pool exists, is not paused and has a worker with a recent heartbeat."""
    from workflows.register import WORK_POOL

    pool = pool or WORK_POOL
    name = f"Work pool '{pool}'"
    start = f"`prefect worker start --pool {pool}` trên máy chạy flow"
    try:
        found = api.call(f"/work_pools/{pool}")
        workers = api.call(f"/work_pools/{pool}/workers/filter", {})
    except urllib.error.HTTPError as exc:
        if exc.code == 404:
            return Check(
                name,
                problem=f"chưa có. Chạy `kehoach deploy all` (tạo pool và các deployment), "
                f"rồi {start}.",
            )
        return Check(name, problem=f"máy chủ Prefect trả lời {exc.code} khi đọc work pool.")
    except OSError as exc:
        return Check(name, problem=f"không đọc được ({why(exc)}).")
    if found.get("is_paused"):
        return Check(
            name,
            problem=f"đang tạm dừng: không worker nào nhận lượt chạy. Bỏ tạm dừng: "
            f"`prefect work-pool resume {pool}`.",
        )
    live = [w["name"] for w in workers if _live(w)]
    if not live:
        seen = f" ({len(workers)} worker đã từng kết nối, không còn tín hiệu)" if workers else ""
        return Check(
            name,
            problem=f"không có worker nào đang chạy{seen}: các lượt chạy sẽ chờ mãi. Chạy "
            f"{start}, với cùng cấu hình kehoach (KEHOACH_DATABASE_URL, SMTP, "
            "KEHOACH_PORTAL_SECRET) và PREFECT_API_URL, PREFECT_API_AUTH_STRING.",
        )
    return Check(name, found=f"kiểu {found.get('type')}, worker đang chạy: {', '.join(live)}")


def _live(worker: Mapping[str, Any], now: dt.datetime | None = None) -> bool:
    beat = worker.get("last_heartbeat_time")
    if worker.get("status") == "OFFLINE" or not beat:
        return False
    every = float(worker.get("heartbeat_interval_seconds") or 30)
    seen = dt.datetime.fromisoformat(str(beat).replace("Z", "+00:00"))
    age = (now or dt.datetime.now(dt.UTC)) - seen
    return age.total_seconds() <= HEARTBEAT_MISSES * every


# ---------------------------------------------------------------- SMTP, portal


def check_smtp(conf: Settings) -> Check:
    """Connect, greet, STARTTLS/TLS and login as configured, NOOP, QUIT."""
    import aiosmtplib

    from notifications.smtp import client_for

    name = f"Máy chủ SMTP ({conf.smtp_host}:{conf.smtp_port}, {conf.smtp_security})"

    async def probe() -> str:
        client = client_for(conf.model_copy(update={"smtp_timeout": TIMEOUT}))
        await client.connect()
        try:
            code, _message = await client.noop()
            return f"trả lời ({code}){', đã đăng nhập' if conf.smtp_username else ''}"
        finally:
            await client.quit()

    try:
        return Check(name, found=asyncio.run(probe()))
    except aiosmtplib.SMTPAuthenticationError as exc:
        problem = (
            f"từ chối đăng nhập ({exc.code} {exc.message}): kiểm tra KEHOACH_SMTP_USERNAME và "
            "KEHOACH_SMTP_PASSWORD."
        )
    except (ssl.SSLError, aiosmtplib.SMTPException, OSError) as exc:
        problem = (
            f"không dùng được ({why(exc)}). Kiểm tra máy chủ thư đang chạy "
            "và KEHOACH_SMTP_HOST, KEHOACH_SMTP_PORT, KEHOACH_SMTP_SECURITY (none, starttls, "
            "tls), KEHOACH_SMTP_CA_FILE."
        )
    except TimeoutError:
        problem = f"không trả lời trong {TIMEOUT:g} giây: kiểm tra KEHOACH_SMTP_HOST và cổng."
    return Check(name, problem=problem)


def check_portal_secret(conf: Settings) -> Check:
    """Set (not the demo key) and at least 32 bytes, the old ones too."""
    from engine.links import MIN_SECRET_BYTES, NO_SECRET, signing_secrets

    name = "Khóa ký đường dẫn (KEHOACH_PORTAL_SECRET)"
    if not conf.portal_secret:
        return Check(name, problem=NO_SECRET)
    try:
        keys = signing_secrets(conf)
    except ConfigError as exc:
        return Check(name, problem=str(exc))
    old = f", {len(keys) - 1} khóa cũ còn nhận" if len(keys) > 1 else ""
    size = len(conf.portal_secret.encode("utf-8"))
    return Check(name, found=f"đã đặt, {size} byte (tối thiểu {MIN_SECRET_BYTES}){old}")


# ---------------------------------------------------------------- the command


def run_checks(
    environ: Mapping[str, str] | None = None, report: Callable[[Check], None] | None = None
) -> list[Check]:
    """Every check of the configuration in ``environ``; ``report`` sees each as it ends."""
    env = os.environ if environ is None else environ
    conf = load_settings(env)  # ConfigError (exit 2) names a setting written wrong
    checks: list[Check] = []

    def add(*found: Check) -> None:
        for check in found:
            checks.append(check)
            if report is not None:
                report(check)

    add(check_store(conf))
    add(*check_prefect(conf, env))
    add(check_smtp(conf))
    add(check_portal_secret(conf))
    return checks


def cmd_doctor(args: argparse.Namespace) -> int:
    """0 when every check passes, else 1; each check on its own line."""
    env = dict(os.environ)
    if getattr(args, "database_url", None):
        env["KEHOACH_DATABASE_URL"] = args.database_url
    checks = run_checks(env, report=lambda check: out(check.line()))
    failed = [c for c in checks if not c.ok]
    out("")
    if failed:
        out(f"{len(failed)}/{len(checks)} mục chưa đạt: sửa các dòng [LỖI] ở trên rồi chạy lại.")
        return 1
    out(f"Cả {len(checks)} mục đều đạt.")
    return 0
