"""Schemathesis over the portal's OpenAPI: no 5xx, no traceback, nothing stored broken.

The portal publishes no OpenAPI document (its pages are for people, docs_url is off),
so the test generates FastAPI's own and completes it with what the routes read by
hand: the answer form (every field of the test plan's report template, the CSRF field
and the form id it carries) and the fresh-link request. Schemathesis then draws
requests for every operation. A quarter of the draws keep whatever schemathesis drew,
broken tokens included; a quarter use a valid link and a freshly issued CSRF field
(otherwise nearly every request would stop at the first check); a quarter send a valid
answer with one field replaced by the drawn value, so that odd values reach the
validation, the store and the pages that show them; a quarter send a valid answer
(a correction). The draws are derandomized: every run makes the same requests.

Checks: no answer is a 5xx or shows a Python traceback, and every stored answer can
still be shown: its page and receipt answer 200 afterwards.

``KEHOACH_FUZZ_EXAMPLES`` (default 30 per operation) sets the number of draws;
``KEHOACH_FUZZ_EXAMPLES=1000 scripts/run-tests tests/test_portal_fuzz.py`` is the long run.
"""

from __future__ import annotations

import os
import re
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.store.models import Submission
from portal.ratelimit import PortalLimits, Rate
from tests.test_portal_support import world_fixture

pytestmark = pytest.mark.filterwarnings("ignore:Using `httpx` with `starlette.testclient`")

EXAMPLES = int(os.environ.get("KEHOACH_FUZZ_EXAMPLES", "30"))
GOOD = {
    "f-so-vu-chay": "2",
    "f-ty-le-tap-huan": "95,5",
    "f-dan-phong": "Đã rà soát",
    "f-ngay-ra-soat": "2027-08-30",
    "f-ket-qua": "Tuyên truyền tại 12 thôn.",
}
FIELDS = list(GOOD)
UNLIMITED = Rate(1e6, 1e6)
LIMITS = PortalLimits(
    per_address=UNLIMITED,
    link_read=UNLIMITED,
    link_write=UNLIMITED,
    address_write=UNLIMITED,
    link_request_address=UNLIMITED,
    operator_auth_failures=UNLIMITED,
)


@pytest.fixture
def world(tmp_path, monkeypatch):  # type: ignore[no-untyped-def]
    yield from world_fixture(tmp_path, monkeypatch)


def _form(properties: list[str]) -> dict[str, Any]:
    text = {"type": "string", "maxLength": 30000}
    return {
        "required": True,
        "content": {
            "application/x-www-form-urlencoded": {
                "schema": {
                    "type": "object",
                    "properties": {name: text for name in properties},
                    "additionalProperties": False,
                }
            }
        },
    }


def openapi(app: Any) -> dict[str, Any]:
    """FastAPI's document, with the request bodies the routes read themselves."""
    document = app.openapi()
    paths = document["paths"]
    paths["/o/{token}/submit"]["post"]["requestBody"] = _form([*FIELDS, "csrf"])
    paths["/link/request"]["post"]["requestBody"] = _form(["email", "token"])
    return document


def _csrf(client: Any, token: str) -> str | None:
    page = client.get(f"/o/{token}")
    found = re.search(r'name="csrf" value="([^"]+)"', page.text)
    return found.group(1) if found else None


def test_no_request_breaks_the_portal(world) -> None:  # type: ignore[no-untyped-def]
    from starlette.testclient import TestClient

    app = world.app(limits=LIMITS)
    client = TestClient(app, raise_server_exceptions=False)
    schema = schemathesis.openapi.from_dict(openapi(app))
    token = world.token()
    seen: dict[str, int] = {}
    broken: list[str] = []
    operations = [op.ok() for op in schema.get_all_operations()]
    assert {f"{op.method.upper()} {op.path}" for op in operations} >= {
        "GET /o/{token}",
        "POST /o/{token}/submit",
        "GET /o/{token}/receipt/{version}",
        "POST /link/request",
    }

    for operation in operations:

        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            database=None,
            derandomize=True,  # the same draws on every run: a failure can be replayed
            suppress_health_check=list(HealthCheck),
        )
        @given(
            case=operation.as_strategy(),
            mode=st.sampled_from(["as drawn", "valid link", "one field drawn", "valid answer"]),
            field=st.sampled_from(FIELDS),
        )
        def one(case: Any, mode: str, field: str) -> None:
            if mode != "as drawn" and "token" in (case.path_parameters or {}):
                case.path_parameters["token"] = token
                if case.method.upper() == "POST" and isinstance(case.body, dict):
                    if mode == "one field drawn":  # a plausible answer with one odd value
                        case.body = {**GOOD, field: str(case.body.get(field, ""))}
                    if mode == "valid answer":  # a correction, as a unit sends one
                        case.body = dict(GOOD)
                    case.body["csrf"] = _csrf(client, token) or ""
            response = client.request(
                case.method,
                case.formatted_path,
                params=case.query or None,
                data=case.body if isinstance(case.body, dict) else None,
                headers={k: v for k, v in (case.headers or {}).items() if k.isascii()},
                follow_redirects=False,
            )
            key = f"{case.method.upper()} {case.operation.path} {response.status_code}"
            seen[key] = seen.get(key, 0) + 1
            if response.status_code >= 500 or "Traceback" in response.text:
                broken.append(f"{key}: {case.path_parameters} {str(case.body)[:300]}")

        one()

    stored = world.count(Submission)
    after = client.get(f"/o/{token}")
    receipts = [client.get(f"/o/{token}/receipt/{n}").status_code for n in range(1, stored + 1)]
    print(f"\nportal fuzz: {sum(seen.values())} requests, {stored} answers stored; {seen}")
    assert not broken, "\n".join(broken[:20])
    assert after.status_code == 200 and "Traceback" not in after.text
    assert all(code == 200 for code in receipts), receipts
    assert any(key.startswith("POST /o/{token}/submit 303") for key in seen), (
        "no drawn answer was ever accepted: the fuzzing never got past the checks"
    )
