"""A local Prefect server on SQLite for the demo, the simulation and the benchmark.

``ensure_server(home)`` reuses the server this home started (pid file) and otherwise
starts ``prefect server start`` as a detached subprocess with ``PREFECT_HOME=home``; it
keeps running after the command ends, so the UI stays useful; ``stop_server(home)``
stops it. It is the fallback of the demo and development only: a configured API
(``KEHOACH_PREFECT_API_URL``, ``PREFECT_API_URL``) is used as it is, checked with
:func:`api_problem`, never replaced.
This module does not import Prefect: the server runs in its own process.
"""

from __future__ import annotations

import base64
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 4200


@dataclass
class LocalPrefect:
    api_url: str
    home: Path | None
    log_path: Path | None
    pid: int | None
    started_here: bool
    startup_seconds: float = 0.0
    asked_port: int | None = None  # the port asked for, when something else held it

    def moved_note(self) -> str | None:
        """In Vietnamese, once: the port asked for was taken, so the server is elsewhere."""
        if self.asked_port is None:
            return None
        return port_moved_note(
            self.asked_port,
            f"máy chủ Prefect cục bộ đã chạy ở {self.ui_url}",
            "các đường dẫn bên dưới theo địa chỉ này",
        )

    @property
    def ui_url(self) -> str:
        return self.api_url.removesuffix("/api")

    @property
    def operator_url(self) -> str:
        """The UI operators are sent to: Prefect's V2 UI (the V1 UI draws run timelines
        with an ASCII-only bitmap font and drops every Vietnamese letter)."""
        return f"{self.ui_url}/v2"

    def stop(self) -> None:
        if self.started_here and self.pid:
            _kill_group(self.pid)


def healthy(api_url: str, timeout: float = 1.5) -> bool:
    try:
        with urllib.request.urlopen(f"{api_url.rstrip('/')}/health", timeout=timeout) as resp:
            return resp.status == 200
    except OSError:
        return False


def api_problem(
    api_url: str, timeout: float = 3.0, auth_string: str | None = None, credentials: bool = True
) -> str | None:
    """Why ``api_url`` cannot be used, in Vietnamese, or None when it is a Prefect API
    that answers and accepts this process's credentials.

    Two short requests: ``GET /health`` (open even on a server with an auth string), then
    ``GET /admin/version`` with ``PREFECT_API_AUTH_STRING`` (``auth_string``) as basic
    authentication, which a server with ``PREFECT_SERVER_API_AUTH_STRING`` refuses (401)
    unless the strings match; ``credentials=False`` stops after the first.
    """
    base = api_url.rstrip("/")
    try:
        with urllib.request.urlopen(f"{base}/health", timeout=timeout) as resp:
            if resp.status != 200:
                return f"{base}/health trả lời {resp.status}"
    except urllib.error.HTTPError as exc:
        return f"{base}/health trả lời {exc.code} (địa chỉ này không phải Prefect API?)"
    except (OSError, ValueError) as exc:  # refused, timed out, unknown host, malformed URL
        reason = getattr(exc, "reason", None) or exc
        return f"không trả lời trong {timeout:g} giây ({reason})"
    if not credentials:
        return None
    auth = os.environ.get("PREFECT_API_AUTH_STRING") if auth_string is None else auth_string
    if auth and not auth.isascii():  # prefect 3.9.1 compares with hmac on str: 500
        return (
            "PREFECT_API_AUTH_STRING có ký tự ngoài ASCII (chữ có dấu), Prefect không so được "
            "(trả lời 500): dùng chữ không dấu, số và dấu câu cho chuỗi này ở cả hai phía"
        )
    request = urllib.request.Request(f"{base}/admin/version")
    if auth:
        token = base64.b64encode(auth.encode("utf-8")).decode("ascii")
        request.add_header("Authorization", f"Basic {token}")
    try:
        with urllib.request.urlopen(request, timeout=timeout):
            return None
    except urllib.error.HTTPError as exc:
        if exc.code == 401:
            return (
                "máy chủ từ chối xác thực (401): đặt PREFECT_API_AUTH_STRING đúng bằng "
                "PREFECT_SERVER_API_AUTH_STRING của máy chủ (và bỏ PREFECT_API_KEY)"
            )
        return f"{base}/admin/version trả lời {exc.code}"
    except (OSError, ValueError) as exc:
        return f"không trả lời trong {timeout:g} giây ({getattr(exc, 'reason', None) or exc})"


def _port_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def free_port(host: str = DEFAULT_HOST) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def _kill_group(pid: int, timeout: float = 10.0) -> None:
    try:
        pgid = os.getpgid(pid)
    except ProcessLookupError:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)
        time.sleep(0.1)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGKILL)


def server_env(home: Path, host: str, port: int, ui: bool = True) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env.update(
        PREFECT_HOME=str(home),
        PREFECT_SERVER_API_HOST=host,
        PREFECT_SERVER_API_PORT=str(port),
        PREFECT_SERVER_DATABASE_CONNECTION_URL=f"sqlite+aiosqlite:///{home / 'prefect.db'}",
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
        PREFECT_SERVER_UI_ENABLED="true" if ui else "false",
        PREFECT_SERVER_LOGGING_LEVEL="WARNING",
        PYTHONUNBUFFERED="1",
    )
    return env


def start_command(home: Path, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT) -> str:
    """The shell command a person can paste to (re)start the same server."""
    return (
        f"PREFECT_HOME={Path(home).resolve()} PREFECT_SERVER_ANALYTICS_ENABLED=false "
        f"{sys.executable} -m prefect server start --host {host} --port {port}"
    )


def ensure_server(
    home: Path,
    *,
    host: str = DEFAULT_HOST,
    port: int | None = DEFAULT_PORT,
    ui: bool = True,
    reuse_env: bool = False,
    timeout: float = 90.0,
) -> LocalPrefect:
    """A healthy local Prefect API: the one this ``home`` started (its pid file), or a new
    one on ``port`` (any free port when that one is taken or ``port`` is None).

    A server that merely answers on the port is not taken over: it may be anyone's, and
    deploying there would change their deployments. ``reuse_env`` (benchmarks) also
    takes the server at ``PREFECT_API_URL`` when it answers.
    """
    env_url = os.environ.get("PREFECT_API_URL")
    home = Path(home).resolve()
    if reuse_env and env_url and healthy(env_url):
        return LocalPrefect(env_url, None, None, None, started_here=False)
    recorded, pid = _read_port(home), _read_pid(home)
    if recorded is not None and pid is not None and _alive(pid):
        api_url = f"http://{host}:{recorded}/api"
        if healthy(api_url):  # the server this home started earlier, on whatever port
            return LocalPrefect(api_url, home, home / "server.log", pid, False)
    port, asked = choose_port(host, port)
    home.mkdir(parents=True, exist_ok=True)
    api_url = f"http://{host}:{port}/api"
    log_path = home / "server.log"
    cmd = [sys.executable, "-m", "prefect", "server", "start", "--host", host]
    cmd += ["--port", str(port), "--analytics-off"]
    if not ui:
        cmd.append("--no-ui")
    started = time.monotonic()
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(
            cmd,
            env=server_env(home, host, port, ui),
            cwd=str(home),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # survives this command; stopped by its group
        )
    (home / "server.pid").write_text(f"{proc.pid}\n{port}\n")
    deadline = started + timeout
    while not healthy(api_url, timeout=1.0):
        if proc.poll() is not None:
            tail = log_path.read_text(errors="replace").splitlines()[-20:]
            raise RuntimeError(
                f"prefect server exited with code {proc.returncode}; log {log_path}:\n"
                + "\n".join(tail)
            )
        if time.monotonic() > deadline:
            _kill_group(proc.pid)
            raise RuntimeError(f"prefect server did not answer {api_url} in {timeout:.0f}s")
        time.sleep(0.25)
    return LocalPrefect(
        api_url,
        home,
        log_path,
        proc.pid,
        True,
        startup_seconds=time.monotonic() - started,
        asked_port=asked,
    )


def port_moved_note(asked_port: int, where: str, consequence: str) -> str:
    """The warning a local server that could not have ``asked_port`` prints once:
    ``where`` it runs instead, and what follows from it (all in Vietnamese)."""
    return f"Cảnh báo: cổng {asked_port} đang do chương trình khác dùng; {where} ({consequence})."


def choose_port(host: str, port: int | None) -> tuple[int, int | None]:
    """(the port to start on, the port asked for when something else holds it, else None):
    any free port when ``port`` is None or taken."""
    if port is None:
        return free_port(host), None
    if _port_free(host, port):
        return port, None
    return free_port(host), port


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, another user's
        return True
    return True


def _read_pid(home: Path) -> int | None:
    try:
        return int((home / "server.pid").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def _read_port(home: Path) -> int | None:
    try:
        return int((home / "server.pid").read_text().split()[1])
    except (OSError, ValueError, IndexError):
        return None


def stop_server(home: Path) -> bool:
    """Stop the server started by :func:`ensure_server` with this home; True if one ran."""
    pid = _read_pid(home)
    if pid is None:
        return False
    _kill_group(pid)
    (home / "server.pid").unlink(missing_ok=True)
    return True


@contextlib.contextmanager
def use_api(api_url: str) -> Iterator[None]:
    """Point this process's Prefect client at ``api_url`` (env and settings context)."""
    saved = os.environ.get("PREFECT_API_URL")
    os.environ["PREFECT_API_URL"] = api_url
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    try:
        import prefect.settings

        with prefect.settings.temporary_settings(
            updates={prefect.settings.PREFECT_API_URL: api_url}
        ):
            yield
    finally:
        if saved is None:
            os.environ.pop("PREFECT_API_URL", None)
        else:
            os.environ["PREFECT_API_URL"] = saved
