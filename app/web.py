"""The web app: settings checks, sessions, error pages and the routers of each area.

`uvicorn app.web:create_app --factory` serves it. Pages are rendered by app.pages, which
the areas' views import (this module imports the views).
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Mapping

from fastapi import APIRouter, Depends, FastAPI, HTTPException, Request, Response
from fastapi.exception_handlers import (
    http_exception_handler,
    request_validation_exception_handler,
)
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles
from sqlalchemy import exc as sa_exc
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.sessions import SessionMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.admin.token_views import router as admin_token_router
from app.admin.views import router as admin_router
from app.auth.deps import (
    SESSION_COOKIE,
    CurrentUser,
    LoginRequired,
    is_api,
    is_htmx,
    login_url,
    verify_csrf,
)
from app.auth.views import router as auth_router
from app.config import Settings, get_settings
from app.dashboard.views import router as dashboard_router
from app.db import RowId, SessionDep
from app.deps import StoreDep, settings_for_pages
from app.exports.views import router as exports_router
from app.health import router as health_router
from app.i18n import translator
from app.inspections.history_views import router as history_router
from app.inspections.tables import Photo
from app.inspections.views import router as inspections_router
from app.instructions.views import router as instructions_router
from app.pages import ROOT, language_for, render, stored_image
from app.registry.views import router as models_router
from app.review.keys_views import router as review_keys_router
from app.review.lead_views import router as review_lead_router
from app.review.views import router as review_router
from app.spec import LOGIN_REQUIRED, PAGE, allowed_methods, document, page
from app.storage import ObjectNotFound
from app.telemetry.collector import QueueCollector
from app.telemetry.logs import configure_web
from app.telemetry.requests import RequestTrail
from app.telemetry.views import router as metrics_router
from app.text_input import refuse_nul
from app.thresholds.views import router as bands_router
from app.webhooks.views import router as webhooks_router

log = logging.getLogger(__name__)

STATIC_DIR = ROOT / "static"
# An inspector's working day: the cookie is renewed on every response, so this is idle time.
SESSION_MAX_AGE_S = 12 * 3600
REVIEWER_ROLES = ("inspector", "lead", "admin")

# --- pages that belong to no single area --------------------------------------------------

pages = APIRouter(
    tags=["pages"], default_response_class=HTMLResponse, responses={**PAGE, **LOGIN_REQUIRED}
)
# Raster photos under their own type, anything else as a download (photo() says why).
PHOTO = {
    "description": "The photo's bytes.",
    "content": {"image/*": {}, "application/octet-stream": {}},
}


@pages.get("/", name="home")
def home(request: Request, user: CurrentUser) -> Response:
    """Reviewers go straight to their queue; other roles see what is there for them."""
    if user.role in REVIEWER_ROLES:
        return RedirectResponse("/review", status_code=303)
    if user.role == "ml":
        return RedirectResponse("/dashboard", status_code=303)
    return render(request, "home.html", {"user": user})


@pages.get(
    "/photos/{photo_id}", name="photo", response_class=Response, responses={200: PHOTO, **page(404)}
)
def photo(photo_id: RowId, session: SessionDep, user: CurrentUser, store: StoreDep) -> Response:
    """A photo's bytes from the object store, for any logged-in user."""
    row = session.get(Photo, photo_id)
    if row is None:
        raise HTTPException(404, "no such photo")
    try:
        data = store.get(row.object_key)
    except ObjectNotFound as exc:
        raise HTTPException(404, "the photo's file is missing from the object store") from exc
    # Only raster images go out under their own type; anything else (SVG can carry script)
    # is served as a download.
    raster = row.content_type.startswith("image/") and "svg" not in row.content_type
    return stored_image(data, row.content_type if raster else "application/octet-stream")


# --- errors ---------------------------------------------------------------------------------


def _login_redirect(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, LoginRequired)
    target = login_url(exc.next_url)
    if is_htmx(request):
        # htmx would follow a 303 inside the XHR and swap the login form into a fragment.
        return Response(status_code=204, headers={"HX-Redirect": target})
    return RedirectResponse(target, status_code=303)


def _error_page(
    request: Request, status_code: int, headers: Mapping[str, str] | None = None
) -> Response:
    t = translator(language_for(request))
    messages = {
        400: t("error.bad_request"),
        422: t("error.bad_request"),  # a value the page refused (a week that does not exist)
        403: t("error.forbidden"),
        404: t("error.not_found"),
    }
    message = messages.get(status_code) or t("error.generic")
    # htmx does not swap error responses; reloading the page shows the error, or recovers
    # when a stale fragment (an old CSRF token, a lost session) caused it.
    # The exception's own headers stay: Allow on a 405, WWW-Authenticate on a 401.
    headers = {**(headers or {}), **({"HX-Refresh": "true"} if is_htmx(request) else {})}
    return render(
        request, "error.html", {"message": message}, status_code=status_code, headers=headers
    )


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    if exc.status_code == 405:
        exc.headers = {
            **(exc.headers or {}),
            "Allow": allowed_methods(request.app, request.url.path),
        }
    if is_api(request) or exc.status_code < 400:
        return await http_exception_handler(request, exc)
    return _error_page(request, exc.status_code, exc.headers)


# A station that gets 503 with Retry-After sends the photo again (with its Idempotency-Key);
# a 500 would tell it the photo is bad.
UNAVAILABLE_RETRY_AFTER_S = 5


async def _service_unavailable(request: Request, exc: Exception) -> Response:
    """The database could not be reached (restarting, failing over, out of connections)."""
    log.warning("database unavailable for %s %s: %s", request.method, request.url.path,
                str(exc).splitlines()[0][:200])  # fmt: skip
    headers = {"Retry-After": str(UNAVAILABLE_RETRY_AFTER_S)}
    if is_api(request):
        detail = "the database is unavailable for a moment; retry after a few seconds"
        return JSONResponse({"detail": detail}, status_code=503, headers=headers)
    if is_htmx(request):
        headers["HX-Refresh"] = "true"
    message = translator(language_for(request))("error.unavailable")
    return render(request, "error.html", {"message": message}, status_code=503, headers=headers)


async def _validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    if is_api(request):
        return await request_validation_exception_handler(request, exc)
    return _error_page(request, 400)


# --- the app --------------------------------------------------------------------------------


class SecurityHeaders:
    """Headers that make injected markup inert even if escaping were ever missed."""

    HEADERS = (
        (
            b"content-security-policy",
            b"default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'self'; "
            b"form-action 'self'; frame-ancestors 'none'",
        ),
        (b"x-content-type-options", b"nosniff"),
        (b"referrer-policy", b"same-origin"),
    )

    # FastAPI's API docs load Swagger UI and ReDoc from a CDN.
    EXEMPT_PATHS = frozenset({"/docs", "/docs/oauth2-redirect", "/redoc"})

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in self.EXEMPT_PATHS:
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {name.lower() for name, _ in headers}
                headers += [(k, v) for k, v in self.HEADERS if k not in present]
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)


class ServerTiming:
    """`Server-Timing: app;dur=<ms>` on every answer: the time the app took, as browsers'
    developer tools and bench/review_decide.py read it."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()

        async def send_with_timing(message: Message) -> None:
            if message["type"] == "http.response.start":
                ms = (time.perf_counter() - started) * 1000
                headers = list(message.get("headers", []))
                headers.append((b"server-timing", f"app;dur={ms:.1f}".encode()))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_timing)


def session_secret(settings: Settings) -> str:
    """The key that signs session cookies; only development may run without one."""
    if settings.secret_key:
        return settings.secret_key
    if settings.environment != "development":
        raise RuntimeError(f"LOUPE_SECRET_KEY must be set (environment={settings.environment})")
    log.warning("LOUPE_SECRET_KEY is empty: using a throwaway key; sessions end on restart")
    return secrets.token_urlsafe(32)


def create_app() -> FastAPI:
    """Build the web app from the current settings."""
    settings = get_settings()
    settings.check_secrets()
    configure_web(settings.log_format)
    checks = [Depends(settings_for_pages), Depends(verify_csrf), Depends(refuse_nul)]
    app = FastAPI(title="Loupe", dependencies=checks)
    app.add_middleware(
        SessionMiddleware,
        secret_key=session_secret(settings),
        session_cookie=SESSION_COOKIE,
        max_age=SESSION_MAX_AGE_S,
        same_site="lax",
        https_only=settings.environment == "production",
    )
    app.add_middleware(SecurityHeaders)
    app.add_exception_handler(LoginRequired, _login_redirect)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    # OperationalError: the server is gone or refused us; TimeoutError: no pooled connection.
    for unavailable in (sa_exc.OperationalError, sa_exc.InterfaceError, sa_exc.TimeoutError):
        app.add_exception_handler(unavailable, _service_unavailable)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    app.add_middleware(ServerTiming)
    # Outermost: every line logged while a request runs, errors included, carries its id.
    app.add_middleware(RequestTrail, access_lines=settings.log_format == "json")
    # The queue gauges, read at scrape time by the web app only (never by workers).
    app.state.queue_collector = QueueCollector(settings, settings.metrics_cache_s)
    routers = (
        health_router,
        metrics_router,
        inspections_router,
        auth_router,
        review_keys_router,
        review_lead_router,
        review_router,
        admin_router,
        admin_token_router,
        webhooks_router,
        dashboard_router,
        models_router,
        bands_router,
        instructions_router,
        exports_router,
        history_router,
        pages,
    )
    for router in routers:
        app.include_router(router)
    document(app)
    return app
