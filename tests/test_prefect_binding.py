"""Prefect is the configured server or nothing, and in production it asks for credentials.

Measured before the fix: with ``PREFECT_API_URL`` pointing at nothing, ``kehoach deploy``
deployed to whatever Prefect answered on the local fallback port (un-pausing its
deployments). Here a real server answers on the port this home's pid file records
(what the fallback took) while the configured URL points at a dead port.

The second part starts a real server the way the README's production section says
(``PREFECT_SERVER_API_AUTH_STRING``, ``PREFECT_SERVER_API_CSRF_PROTECTION_ENABLED``):
an unauthenticated client cannot resume a suspended review run, the kehoach client
with ``PREFECT_API_AUTH_STRING`` deploys.
"""

from __future__ import annotations

import base64
import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from engine.config import settings
from tests.fixtures.prefect_server import _free_port, _stop_process_group, start_prefect_server
from tests.test_workflows import SEED, SEED_FILES, new_store

pytestmark = pytest.mark.prefect

ROOT = Path(__file__).resolve().parents[1]
# ASCII: Prefect 3.9.1 answers 500 to a non-ASCII auth string (hmac.compare_digest on
# str), which kehoach says before trying (workflows.server.api_problem)
AUTH = "kehoach-ops:Thu-Nghiem-2023"


def kehoach(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    """``kehoach ARGS`` in a process of its own, with only ``env`` for Prefect/kehoach."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "KEHOACH_"))}
    clean.update(PREFECT_SERVER_ANALYTICS_ENABLED="false", **env)
    return subprocess.run(
        [sys.executable, "-m", "cli", *args],
        cwd=ROOT,
        env=clean,
        capture_output=True,
        text=True,
        timeout=120,
    )


def _deployments(api_url: str) -> list[tuple[str, str, str, bool]]:
    """(id, name, updated, paused) of every deployment on an open server."""
    found = httpx.post(f"{api_url}/deployments/filter", json={}, timeout=10).json()
    return sorted((d["id"], d["name"], d["updated"], d["paused"]) for d in found)


@pytest.fixture
def store(tmp_path: Path, prefect_server) -> dict[str, str]:
    """A loaded seed store whose home's pid file names the running Prefect server."""
    home = tmp_path / "home"
    (home / "prefect").mkdir(parents=True)
    pid = prefect_server.process.pid
    (home / "prefect" / "server.pid").write_text(f"{pid}\n{prefect_server.port}\n")
    url = new_store(tmp_path / "store", SEED_FILES)
    return {"KEHOACH_HOME": str(home), "KEHOACH_DATABASE_URL": url}


def test_deploy_refuses_a_dead_configured_api_and_touches_no_other(prefect_server, store):
    dead = f"http://127.0.0.1:{_free_port()}/api"
    before = _deployments(prefect_server.api_url)
    result = kehoach(["deploy", SEED], {**store, "PREFECT_API_URL": dead})
    assert result.returncode == 1, result.stdout + result.stderr
    assert f"Prefect API đã cấu hình (PREFECT_API_URL={dead}) không dùng được" in result.stderr
    assert "không trả lời trong 5 giây" in result.stderr and "Không làm gì cả" in result.stderr
    assert "Traceback" not in result.stderr
    # the kehoach setting wins over PREFECT_API_URL: the answering server is not used
    result = kehoach(
        ["deploy", SEED],
        {**store, "KEHOACH_PREFECT_API_URL": dead, "PREFECT_API_URL": prefect_server.api_url},
    )
    assert result.returncode == 1 and f"(KEHOACH_PREFECT_API_URL={dead})" in result.stderr
    result = kehoach(
        ["simulate", SEED, "--from", "2023-01-01", "--until", "2023-01-02"],
        {**store, "PREFECT_API_URL": dead},
    )
    assert result.returncode == 1 and "không dùng được" in result.stderr
    assert _deployments(prefect_server.api_url) == before


def test_the_portal_hands_over_only_to_the_configured_api(prefect_server, monkeypatch):
    from portal.handoff import _prefect_unreachable

    dead = f"http://127.0.0.1:{_free_port()}/api"
    try:
        monkeypatch.setenv("PREFECT_API_URL", prefect_server.api_url)
        settings.cache_clear()
        assert _prefect_unreachable() == (prefect_server.api_url, "")
        monkeypatch.setenv("KEHOACH_PREFECT_API_URL", dead)
        settings.cache_clear()
        api_url, reason = _prefect_unreachable()
        assert api_url == dead and "không trả lời" in reason
        monkeypatch.delenv("KEHOACH_PREFECT_API_URL")
        monkeypatch.setenv("PREFECT_API_URL", dead)
        settings.cache_clear()
        assert _prefect_unreachable()[0] == dead
    finally:
        settings.cache_clear()


# ---------------------------------------------------------------- production set-up


def _basic(auth: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(auth.encode()).decode()}


def _csrf(client: httpx.Client, auth: dict[str, str], name: str) -> dict[str, str]:
    token = client.get("/csrf-token", params={"client": name}, headers=auth)
    assert token.status_code == 200, token.text
    return {"Prefect-Csrf-Token": token.json()["token"], "Prefect-Csrf-Client": name}


def _suspended_review_run(client: httpx.Client, headers: dict[str, str]) -> str:
    """A run of the plan's review deployment in the state the review flow leaves it in."""
    found = client.post("/deployments/filter", json={}, headers=headers).json()
    flows = {
        f["id"]: f["name"] for f in client.post("/flows/filter", json={}, headers=headers).json()
    }
    [review] = [d for d in found if flows[d["flow_id"]] == "review" and d["name"] == SEED]
    run = client.post(
        f"/deployments/{review['id']}/create_flow_run",
        json={"parameters": {"submission_id": 1}},
        headers=headers,
    )
    assert run.status_code == 201, run.text
    run_id = run.json()["id"]
    paused = {"type": "PAUSED", "name": "Suspended", "state_details": {"pause_reschedule": True}}
    state = client.post(
        f"/flow_runs/{run_id}/set_state", json={"state": paused, "force": True}, headers=headers
    )
    assert state.status_code == 201, state.text
    return str(run_id)


def test_with_auth_and_csrf_only_the_kehoach_client_gets_in(tmp_path: Path):
    server = start_prefect_server(
        tmp_path / "prefect-auth",
        extra_env={
            "PREFECT_SERVER_API_AUTH_STRING": AUTH,
            "PREFECT_SERVER_API_CSRF_PROTECTION_ENABLED": "true",
        },
        services=False,  # the API is what is tested; the services only cost start time
    )
    try:
        env = {
            "KEHOACH_HOME": str(tmp_path / "home"),
            "KEHOACH_DATABASE_URL": new_store(tmp_path / "store", SEED_FILES),
            "PREFECT_API_URL": server.api_url,
        }
        refused = kehoach(["deploy", SEED], env)
        assert refused.returncode == 1
        assert "máy chủ từ chối xác thực (401)" in refused.stderr
        accented = kehoach(["deploy", SEED], {**env, "PREFECT_API_AUTH_STRING": "ops:mật-khẩu"})
        assert accented.returncode == 1 and "ngoài ASCII" in accented.stderr
        deployed = kehoach(["deploy", SEED], {**env, "PREFECT_API_AUTH_STRING": AUTH})
        assert deployed.returncode == 0, deployed.stdout + deployed.stderr
        assert f"review/{SEED}" in deployed.stdout

        client = httpx.Client(base_url=server.api_url, timeout=10)
        auth = _basic(AUTH)
        csrf = _csrf(client, auth, "kehoach-test")
        refused_csrf = client.post("/deployments/filter", json={}, headers=auth)
        assert (refused_csrf.status_code, refused_csrf.json()) == (
            403,
            {"detail": "Missing CSRF token."},
        )
        run_id = _suspended_review_run(client, {**auth, **csrf})
        accept = {"run_input": {"decision": "accept", "by": "kẻ lạ"}}
        assert client.get(f"/flow_runs/{run_id}").status_code == 401
        assert client.post(f"/flow_runs/{run_id}/resume", json=accept).status_code == 403
        # even with a CSRF token (issued to an authenticated client) no credentials: 401
        stolen = client.post(f"/flow_runs/{run_id}/resume", json=accept, headers=csrf)
        assert stolen.status_code == 401
        assert client.get(f"/flow_runs/{run_id}", headers=_basic("x:y")).status_code == 401
        state = client.get(f"/flow_runs/{run_id}", headers=auth).json()["state"]
        assert (state["type"], state["name"]) == ("PAUSED", "Suspended")
        resumed = client.post(f"/flow_runs/{run_id}/resume", json=accept, headers={**auth, **csrf})
        assert resumed.status_code == 201, resumed.text
        assert client.get(f"/flow_runs/{run_id}", headers=auth).json()["state"]["name"] == (
            "Resuming"
        )
    finally:
        _stop_process_group(server.process)


def test_a_taken_local_port_is_said_once_never_silently_replaced() -> None:
    """`kehoach demo --prefect-port N` with N held by another program: the local server
    goes to a free port, and the command says so in Vietnamese (it used to say nothing)."""
    import socket

    from workflows.server import LocalPrefect, choose_port

    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        taken = held.getsockname()[1]
        port, asked = choose_port("127.0.0.1", taken)
    assert port != taken and asked == taken
    free, none = choose_port("127.0.0.1", port)
    assert (free, none) == (port, None)  # a free port is taken as asked, nothing to say
    moved = LocalPrefect(f"http://127.0.0.1:{port}/api", None, None, None, True, asked_port=taken)
    note = moved.moved_note()
    assert note is not None and f"cổng {taken}" in note and f"127.0.0.1:{port}" in note
    assert LocalPrefect("http://127.0.0.1:4200/api", None, None, None, True).moved_note() is None
