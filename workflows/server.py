"""A local Prefect server on SQLite for the demo, the simulation and the benchmark.

``ensure_server(home)`` reuses a server already answering at ``PREFECT_API_URL`` (or
on the chosen port) and otherwise starts ``prefect server start`` as a detached
subprocess with ``PREFECT_HOME=home``; it keeps running after the command ends, so
the UI stays useful.  ``stop_server(home)`` stops the one started here (pid file).
This module does not import Prefect: the server runs in its own process.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
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
    reuse_env: bool = True,
    timeout: float = 90.0,
) -> LocalPrefect:
    """A healthy Prefect API: the one at ``PREFECT_API_URL``, on ``port``, or a new one."""
    env_url = os.environ.get("PREFECT_API_URL")
    home = Path(home).resolve()
    if reuse_env and env_url and healthy(env_url):
        return LocalPrefect(env_url, None, None, None, started_here=False)
    recorded = _read_port(home)
    if recorded is not None:  # the server this home started earlier, on whatever port
        api_url = f"http://{host}:{recorded}/api"
        if healthy(api_url):
            return LocalPrefect(api_url, home, home / "server.log", _read_pid(home), False)
    if port is not None:
        api_url = f"http://{host}:{port}/api"
        if healthy(api_url):
            # Someone's server answers there; its home is ours only if our pid file says so.
            pid = _read_pid(home)
            return LocalPrefect(api_url, home if pid else None, home / "server.log", pid, False)
        if not _port_free(host, port):
            port = free_port(host)  # something else holds it: take any free port
    else:
        port = free_port(host)
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
        api_url, home, log_path, proc.pid, True, startup_seconds=time.monotonic() - started
    )


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
