"""The consolidating unit's read-only status page, mirroring ``kehoach status``.

Behind HTTP Basic credentials from the settings (``operator_user`` /
``operator_password``). With no password configured the page is disabled: an
operator page with a default password would be worse than none. Failed logins are
rate limited per client address.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import logging

from starlette.requests import Request
from starlette.responses import Response

from engine.calendar import TZ
from engine.errors import NotFound
from engine.repository import plan_definition, plan_version
from engine.status import State, counts, note, status_table
from engine.vntext import short_date
from portal.hardening import client_address
from portal.state import PortalState
from portal.view import local_time, plan_summary, state_badge

log = logging.getLogger("kehoach.portal")

REALM = 'Basic realm="kehoach operator", charset="UTF-8"'


def _credentials(request: Request) -> tuple[str, str] | None:
    header = request.headers.get("authorization", "")
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() != "basic" or not encoded:
        return None
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    user, sep, password = decoded.partition(":")
    return (user, password) if sep else None


def _authorised(state: PortalState, request: Request) -> Response | None:
    """None when the request may see the page, else the response to send."""
    if not state.conf.operator_password:
        return state.pages.error(
            503,
            "Trang điều hành đang tắt",
            "Trang điều hành chưa được bật vì chưa đặt mật khẩu. Quản trị viên đặt biến môi "
            "trường KEHOACH_OPERATOR_PASSWORD (và KEHOACH_OPERATOR_USER nếu cần) rồi khởi "
            "động lại cổng.",
        )
    addr = client_address(request.scope)
    limiter = state.limiters.operator_auth_failures
    if limiter.exhausted(addr):
        return state.pages.error(429)
    given = _credentials(request)
    ok = given is not None and all(
        [
            hmac.compare_digest(given[0].encode(), state.conf.operator_user.encode()),
            hmac.compare_digest(given[1].encode(), state.conf.operator_password.encode()),
        ]
    )
    if ok:
        return None
    if given is not None:
        limiter.allow(addr)
        log.warning("operator login failed from %s", addr)
    response = state.pages.error(
        401,
        "Cần đăng nhập",
        "Trang điều hành chỉ dành cho đơn vị tổng hợp báo cáo. Vui lòng đăng nhập bằng tài "
        "khoản điều hành được cấp.",
    )
    response.headers["www-authenticate"] = REALM
    return response


def status_response(state: PortalState, request: Request, plan_id: str, cycle_key: str) -> Response:
    refused = _authorised(state, request)
    if refused is not None:
        return refused
    now = state.now()
    today = now.astimezone(TZ).date()
    with state.reading() as session:
        try:
            plan = plan_definition(plan_version(session, plan_id))
        except NotFound:
            return state.pages.error(
                404, "Không tìm thấy kế hoạch", f"Chưa có kế hoạch '{plan_id}' trong hệ thống."
            )
        rows = status_table(session, plan_id, cycle_key, today=today)
    tally = counts(rows)
    shown = [
        {
            "unit": row.unit_name,
            "deliverable": row.deliverable_title,
            "due": short_date(row.due_date),
            "state": row.state.value,
            "label": row.state.label,
            "colour": state_badge(row.state, row.days_left)["colour"],
            "submitted": local_time(row.submitted_at),
            "note": note(row),
        }
        for row in rows
    ]
    return state.pages.response(
        "operator.html.j2",
        plan=plan_summary(plan),
        cycle_key=cycle_key,
        closed=any(row.cycle_closed for row in rows),
        as_of=local_time(now),
        rows=shown,
        counts=[
            {"label": s.label, "colour": state_badge(s, None)["colour"], "count": tally[s]}
            for s in State
        ],
    )
