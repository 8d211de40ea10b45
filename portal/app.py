"""The units' portal: FastAPI routes behind signed links.

Routes
  GET  /                                   what this site is (no data)
  GET  /o/{token}                          the obligation: plan, tasks, deadline, history, form
  POST /o/{token}/submit                   the answer (multipart, CSRF-protected)
  POST /o/{token}/draft                    the form saved as a draft, not sent (portal.drafts)
  GET  /o/{token}/receipt/{version}        the receipt of one version
  GET  /o/{token}/files/{file_id}          a file of this obligation's submissions
  GET  /p/{token}                          a supporting unit's page for a tracked task
  POST /p/{token}/contribute               its contribution to the lead (portal.support)
  POST /link/request                       mail a fresh link to the unit's registered address
  GET  /operator/plans/{plan}/cycles/{c}   read-only four-state status (HTTP Basic)
  GET  /healthz                            liveness (no database access)
  GET  /static/...                         the stylesheet

GET never writes to the database. Every POST is in the audit log.
"""

from __future__ import annotations

import datetime as dt
import gc
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager

from anyio import to_thread
from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.formparsers import MultiPartException
from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response
from starlette.staticfiles import StaticFiles

from engine.clock import Clock, clock_from_env
from engine.config import Settings
from engine.config import settings as default_settings
from engine.links import signing_secret
from portal import (
    csrf,
    drafts,
    freshlink,
    messages,
    obligation,
    operator,
    posting,
    review_report,
    support,
)
from portal.access import DEFAULT_MAX_AGE
from portal.handoff import Handoff
from portal.hardening import (
    AccessLog,
    AddressLimit,
    BodyLimit,
    CrashGuard,
    Scope,
    SecurityHeaders,
    client_address,
)
from portal.link import Answered, FileLink, PostedOnLink, ReceiptLink, valid_nonce
from portal.pages import STATIC, Pages
from portal.ratelimit import Limiters, PortalLimits
from portal.state import PortalState

log = logging.getLogger("kehoach.portal")


def _freeze_startup_objects() -> None:
    """What the process built to start (modules, SQLAlchemy's mappers and compiled
    statements, FastAPI's routes, the Jinja templates, the plan cache) is kept out of the
    collector's full passes (``gc.freeze``): each such pass scanned all of it while every
    request of the process waited, holding the plan's audit chain head for the other
    process too. Measured with gc callbacks at 100 answers/s on PostgreSQL with 2 workers
    (benchmarks/bench_portal.py, 2/12/2026): full passes of 116-270 ms before, 21-40 ms
    after; POST p99 290/236/68 ms before and 156/135/391 ms after in alternating runs (the
    rest of the tail is not the collector)."""
    gc.collect()
    gc.freeze()


def _lifespan(
    state: PortalState, runner: Handoff | None, *, recover_intake: bool, own_process: bool
) -> Callable[[FastAPI], AbstractAsyncContextManager[None]]:
    """The app's start-up and shutdown: request threads, the intake hand-off's warm-up and
    recovery, the collector's freeze; the refusal counts and the hand-off at the end."""

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        # Every request's database work and page run in this pool (run_in_threadpool,
        # sync routes). Measured at 100 answers/s on PostgreSQL with 2 workers
        # (benchmarks/bench_portal.py, 2/12/2026): anyio's 40 threads reached 76-80/s,
        # p50 2.8-4.4 s, the threads waiting on the interpreter lock and on the plan's
        # audit chain head; 8 threads reached 99.4-99.9/s (p50 25-436 ms) in three runs and
        # 80-88/s in three later ones. Later, with an answer in one transaction, 4 threads
        # (the default) kept the POST p99 at 40-120 ms where 8 gave 38-391 ms
        # (tests/test_portal_serving.py). A request beyond them waits in the event loop, in
        # arrival order.
        to_thread.current_default_thread_limiter().total_tokens = state.conf.portal_threads
        if runner is not None:
            await run_in_threadpool(runner.warm_up)
        if runner is not None and recover_intake:
            try:
                recovered = await run_in_threadpool(runner.recover)
                if recovered:
                    log.warning("handing %s submission(s) left without intake over", recovered)
            except Exception:
                log.exception("could not look for submissions left without intake")
        if own_process:
            _freeze_startup_objects()
        yield
        try:  # the counts of refusal rows not written (portal.audit.RefusalAudit)
            await run_in_threadpool(lambda: state.refusals.flush(state.now()))
        except Exception:
            log.exception("could not write the counts of refusals not audited")
        if runner is not None:
            await run_in_threadpool(runner.shutdown)

    return lifespan


def create_app(
    settings: Settings | None = None,
    db_url: str | None = None,
    *,
    clock: Clock | None = None,
    limits: PortalLimits | None = None,
    link_max_age: dt.timedelta | None = DEFAULT_MAX_AGE,
    handoff: Callable[[int], None] | None = None,
    intake_flow: bool = True,
    recover_intake: bool = True,
    own_process: bool = False,
) -> FastAPI:
    """The portal as an ASGI app.

    ``clock`` defaults to ``KEHOACH_NOW`` or the system clock; ``handoff`` (a callable
    taking a submission id) defaults to the intake flow with the in-process fallback;
    ``intake_flow=False`` always runs intake in-process (no Prefect). ``own_process``:
    the app is its process's one (``kehoach portal``, a uvicorn worker), whose start-up
    objects are then frozen out of the collector (:func:`_freeze_startup_objects`).
    """
    conf = settings or default_settings()
    url = db_url or conf.database
    clock = clock or clock_from_env()
    runner = (
        Handoff(url, clock, use_flow=intake_flow, batch_seconds=conf.intake_batch_seconds)
        if handoff is None
        else None
    )
    state = PortalState(
        conf=conf,
        db_url=url,
        clock=clock,
        limiters=Limiters(limits or PortalLimits()),
        link_max_age=link_max_age,
        files_dir=conf.files_dir.resolve(),
        # a test's callable or the Handoff: both are called with a submission id
        handoff=handoff or runner,  # type: ignore[arg-type]
        pages=Pages(),
        csrf_key=csrf.derive_key(signing_secret(conf)),
        secure_cookies=conf.portal_base_url.startswith("https://"),
    )

    lifespan = _lifespan(state, runner, recover_intake=recover_intake, own_process=own_process)
    app = FastAPI(
        title="kehoach portal",
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
        lifespan=lifespan,
    )
    app.state.portal = state
    app.state.handoff = runner
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    _routes(app, state)
    _error_handlers(app, state)
    _middleware(app, state)
    return app


def _middleware(app: FastAPI, state: PortalState) -> None:
    """The ASGI middleware around the routes, with the pages they answer with."""

    def body_refusal(scope: Scope) -> tuple[int, bytes]:
        path = scope.get("path", "")
        back = path.rsplit("/submit", 1)[0] if path.startswith("/o/") else None
        if path.startswith("/p/"):  # a supporting unit's contribution (portal.support)
            back = path.rsplit("/contribute", 1)[0]
        title = "Dữ liệu gửi lên quá lớn"
        message = (
            f"Tệp đính kèm vượt giới hạn {state.conf.portal_max_upload_mb:g} MB cho một lần gửi. "
            "Chưa có gì được lưu. Vui lòng giảm kích thước tệp (nén hoặc chia nhỏ) rồi gửi lại."
        )
        html = state.pages.html("error.html.j2", title=title, message=message, back=back)
        return 413, html.encode()

    def rate_refusal(_scope: Scope) -> tuple[int, bytes]:
        return 429, state.pages.error_bytes(429)

    def crash_page(_scope: Scope) -> tuple[int, bytes]:
        return 500, state.pages.error_bytes(500)

    # Added innermost first; a request meets them in the reverse order: security
    # headers on every answer, the per-address limit, the size limit, the crash guard.
    app.add_middleware(CrashGuard, render=crash_page)
    app.add_middleware(BodyLimit, max_bytes=state.max_body_bytes, render=body_refusal)
    app.add_middleware(AddressLimit, limiter=state.limiters.per_address, render=rate_refusal)
    app.add_middleware(SecurityHeaders, hsts=state.secure_cookies)
    app.add_middleware(AccessLog)


def _routes(app: FastAPI, state: PortalState) -> None:
    @app.get("/", include_in_schema=False)
    def home() -> Response:
        return state.pages.error(
            200,
            "Cổng tiếp nhận kế hoạch, báo cáo",
            "Để gửi kế hoạch hoặc báo cáo, vui lòng mở đường dẫn riêng trong thư giao nhiệm "
            "vụ mà đơn vị đã nhận.",
        )

    @app.get("/healthz", include_in_schema=False)
    def healthz() -> Response:
        return PlainTextResponse("ok")

    @app.get("/favicon.ico", include_in_schema=False)
    def favicon() -> Response:
        return RedirectResponse("/static/favicon.svg", status_code=308)

    @app.get("/robots.txt", include_in_schema=False)
    def robots() -> Response:
        return PlainTextResponse("User-agent: *\nDisallow: /\n")

    # Behind a link, portal.link opens it once: the rate limit, the CSRF field, the token
    # and its obligation; it answers a refusal itself. The obligation page calls it in
    # its own thread hop and session (portal.obligation.view_response), the others
    # declare it as a dependency.
    @app.get("/o/{token}")
    async def view(token: str, request: Request) -> Response:
        return await run_in_threadpool(obligation.view_response, state, token, request)

    @app.get("/o/{token}/receipt/{version}")
    def receipt(version: int, link: ReceiptLink) -> Response:
        return obligation.receipt_response(state, link, version)

    @app.get("/o/{token}/files/{file_id}")
    def file(file_id: int, link: FileLink) -> Response:
        return obligation.file_response(state, link, file_id)

    @app.get("/o/{token}/submit")
    def submit_page(token: str) -> Response:
        # A reload of the form-with-errors page, or a bookmark: back to the obligation.
        return RedirectResponse(f"/o/{token}", status_code=303)

    @app.post("/o/{token}/submit")
    async def submit(posted: PostedOnLink) -> Response:
        response, submission_id = await run_in_threadpool(posting.take_answer, state, posted)
        if submission_id is not None:
            state.handoff(submission_id)
        return response

    @app.post("/o/{token}/message")
    async def message(posted: PostedOnLink) -> Response:
        return await run_in_threadpool(messages.take_message, posted)

    _draft_routes(app)
    _support_routes(app, state)

    @app.post("/link/request")
    async def link_request(request: Request) -> Response:
        try:
            form = await request.form(max_files=0, max_fields=10)
        except MultiPartException:
            return state.pages.error(400)
        token = form.get("token")
        given = form.get(csrf.FIELD)
        nonce = valid_nonce(request.cookies.get(csrf.COOKIE))
        return await run_in_threadpool(
            freshlink.request_link,
            state,
            token if isinstance(token, str) else "",
            given if isinstance(given, str) else None,
            nonce,
            client_address(request.scope),
        )

    review_report.routes(app, state)  # the consolidating unit's report (engine.approval)

    @app.get("/operator/plans/{plan_id}/cycles/{cycle_key}")
    def operator_status(plan_id: str, cycle_key: str, request: Request) -> Response:
        return operator.status_response(state, request, plan_id, cycle_key)


def _draft_routes(app: FastAPI) -> None:
    """ "Lưu nháp" on the answer form (portal.drafts): kept, not sent."""

    @app.post("/o/{token}/draft")
    async def draft(posted: PostedOnLink) -> Response:
        return await run_in_threadpool(drafts.save_draft, posted)

    @app.get("/o/{token}/draft")
    def draft_page(token: str) -> Response:
        return RedirectResponse(f"/o/{token}", status_code=303)


def _support_routes(app: FastAPI, state: PortalState) -> None:
    """A supporting unit's own link to a tracked task (portal.support), signed apart: the
    obligation routes refuse it, and these refuse an obligation's link."""

    @app.get("/p/{token}")
    def support_page(token: str, request: Request) -> Response:
        return support.support_response(state, token, request)

    @app.get("/p/{token}/contribute")
    def contribute_page(token: str) -> Response:
        return RedirectResponse(f"/p/{token}", status_code=303)

    @app.post("/p/{token}/contribute")
    async def contribute(token: str, request: Request) -> Response:
        return await support.read_contribution(state, token, request)


def _error_handlers(app: FastAPI, state: PortalState) -> None:
    @app.exception_handler(Answered)
    async def answered(request: Request, exc: Answered) -> Response:
        # A refusal or a limit, answered by portal.link before the handler ran.
        return exc.response

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        response = state.pages.error(exc.status_code if exc.status_code in (404, 405) else 400)
        if exc.status_code == 405:
            response.status_code = 405
        return response

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> Response:
        # e.g. /o/<token>/files/abc: a malformed address is a page that does not exist
        return state.pages.error(404)

    @app.exception_handler(Exception)
    async def crashed(request: Request, exc: Exception) -> Response:
        # A backstop: CrashGuard answers first (inside the security headers).
        log.error("unhandled error on %s", request.method, exc_info=exc)
        return state.pages.error(500)
