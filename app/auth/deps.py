"""Request dependencies: who is calling, with which role, and CSRF checks."""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated
from urllib.parse import quote, urlsplit

from fastapi import Depends, Header, HTTPException, Request, status

from app.auth import service
from app.auth.tables import User
from app.db import SessionDep
from models import logs

API_PREFIX = "/api/"
HEALTH_PATH = "/healthz"
METRICS_PATH = "/metrics"  # app.telemetry.views: for scrapers, its refusal is JSON too
CSRF_SESSION_KEY = "csrf"
SESSION_VERSION_KEY = "session_version"  # the user's session_version when they logged in
CSRF_FORM_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")
# The cookie name SessionMiddleware uses (app.web keeps the default).
SESSION_COOKIE = "session"


@dataclass(frozen=True)
class Caller:
    """Who is calling the station API: a station, or the site's warehouse system."""

    station: str
    scope: str  # station | warehouse (app.auth.tables.TOKEN_SCOPES)

    @property
    def reads_all(self) -> bool:
        return self.scope == "warehouse"


def require_caller(
    session: SessionDep, authorization: Annotated[str | None, Header()] = None
) -> Caller:
    """The token behind a valid `Authorization: Bearer <station token>` header."""
    scheme, _, token = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "missing station token: send 'Authorization: Bearer <token>'",
            headers={"WWW-Authenticate": "Bearer"},
        )
    row = service.token_for(session=session, token=token.strip())
    if row is None:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "the station token is not valid or was revoked",
            headers={"WWW-Authenticate": "Bearer"},
        )
    logs.bind(station=row.station)
    return Caller(station=row.station, scope=row.scope)


CallerDep = Annotated[Caller, Depends(require_caller)]


async def require_station(caller: CallerDep) -> str:
    """The station behind a token that may send photos; a warehouse token only reads."""
    if caller.reads_all:
        raise HTTPException(
            status.HTTP_403_FORBIDDEN,
            "a warehouse token only reads inspections; send photos with a station's token",
        )
    return caller.station


StationDep = Annotated[str, Depends(require_station)]


class LoginRequired(Exception):
    """A page needs a logged-in user; app.web turns this into a redirect to /login."""

    def __init__(self, next_url: str) -> None:
        super().__init__("login required")
        self.next_url = next_url


def is_api(request: Request) -> bool:
    """A request to the JSON API (its errors are JSON, never a page): /api/... and the
    health check that monitors call, both in /openapi.json."""
    path = request.url.path
    return path.startswith(API_PREFIX) or path in (HEALTH_PATH, METRICS_PATH)


def is_htmx(request: Request) -> bool:
    """An HTMX request for a fragment (a history restore wants the whole page)."""
    headers = request.headers
    return headers.get("HX-Request") == "true" and "HX-History-Restore-Request" not in headers


def safe_next(target: str | None, default: str = "/") -> str:
    """`target` if it is a path on this site, else `default`: no open redirects after login."""
    if not target or not target.startswith("/") or target.startswith(("//", "/\\")):
        return default
    if any(ord(ch) < 0x20 or ch == "\\" for ch in target):
        return default
    parts = urlsplit(target)
    return target if not parts.scheme and not parts.netloc else default


def login_url(next_url: str) -> str:
    return "/login?next=" + quote(next_url, safe="/")


def _return_path(request: Request) -> str:
    """Where to come back after logging in: the page the user was on, for HTMX requests."""
    if is_htmx(request):
        current = urlsplit(request.headers.get("HX-Current-URL", ""))
        candidate = current.path + (f"?{current.query}" if current.query else "")
        return safe_next(candidate)
    if request.method != "GET":
        return "/"
    query = request.url.query
    return request.url.path + (f"?{query}" if query else "")


def current_user(request: Request, session: SessionDep) -> User:
    """The logged-in, active user; pages redirect to the login form, the API answers 401."""
    user_id = request.session.get("user_id")
    user = service.get_user(session=session, user_id=user_id) if isinstance(user_id, int) else None
    # A session started before the user's password, role or status changed has ended.
    if user is not None and request.session.get(SESSION_VERSION_KEY, 0) == user.session_version:
        logs.bind(user_id=user.id)  # this request's log lines name who made it
        return user
    # A deactivated or deleted user loses the session on the next request.
    request.session.pop("user_id", None)
    if is_api(request):
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "login required")
    raise LoginRequired(_return_path(request))


CurrentUser = Annotated[User, Depends(current_user)]


def require_role(*roles: str) -> Callable[[User], Awaitable[User]]:
    """A dependency that lets through users with one of `roles`; an admin passes every check."""

    async def check_role(user: CurrentUser) -> User:  # async: no thread hop (app.deps)
        if user.role != "admin" and user.role not in roles:
            raise HTTPException(status.HTTP_403_FORBIDDEN, "your role may not use this page")
        return user

    return check_role


# Who may use which pages; an admin passes every check (tests/integration/test_web_routes.py
# holds the whole table of routes and roles).
ReviewerDep = Annotated[User, Depends(require_role("inspector", "lead"))]
LeadDep = Annotated[User, Depends(require_role("lead"))]
AdminDep = Annotated[User, Depends(require_role("admin"))]
MlDep = Annotated[User, Depends(require_role("ml"))]


def csrf_token(request: Request) -> str:
    """This session's CSRF token, created on first use (templates put it in every form)."""
    token = request.session.get(CSRF_SESSION_KEY)
    if not isinstance(token, str) or not token:
        token = secrets.token_urlsafe(32)
        request.session[CSRF_SESSION_KEY] = token
    return token


def _csrf_exempt(request: Request) -> bool:
    if request.method in SAFE_METHODS:
        return True
    # The station API authenticates with a bearer token that a browser never sends on its
    # own, so a forged cross-site request cannot use it; CSRF needs an ambient credential.
    if is_api(request):
        return "authorization" in request.headers or SESSION_COOKIE not in request.cookies
    return False


async def verify_csrf(request: Request) -> None:
    """Refuse (403) a state-changing request without this session's CSRF token."""
    if _csrf_exempt(request):
        return
    sent = request.headers.get(CSRF_HEADER)
    content_type = request.headers.get("content-type", "")
    if not sent and content_type.startswith(FORM_TYPES):
        # Starlette caches the parsed form, so the route reads it again for free.
        value = (await request.form()).get(CSRF_FORM_FIELD)
        sent = value if isinstance(value, str) else None
    expected = request.session.get(CSRF_SESSION_KEY)
    if not sent or not isinstance(expected, str):
        raise HTTPException(status.HTTP_403_FORBIDDEN, "missing or invalid CSRF token")
    # Bytes, because compare_digest refuses non-ASCII str (a forged token may hold some).
    if not secrets.compare_digest(sent.encode(), expected.encode()):
        raise HTTPException(status.HTTP_403_FORBIDDEN, "missing or invalid CSRF token")
