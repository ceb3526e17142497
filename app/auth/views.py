"""Log in, log out and pick the UI language: thin HTTP adapters over app.auth.service."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, HTTPException, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse

from app.auth import service, throttle
from app.auth.deps import SESSION_VERSION_KEY, safe_next
from app.auth.tables import LANGUAGES
from app.db import SessionDep, utcnow
from app.i18n import duration
from app.pages import render
from app.spec import PAGE, SEE_OTHER, page

router = APIRouter(tags=["auth"], default_response_class=HTMLResponse, responses=PAGE)

# Generous caps: they only stop absurd bodies from reaching the password hasher.
MAX_USERNAME = 100
MAX_PASSWORD = 1024


@router.get("/login", name="login")
def login_form(request: Request, next: str = "/") -> Response:
    """The login form; a logged-in user goes on to `next` directly."""
    if isinstance(request.session.get("user_id"), int):
        return RedirectResponse(safe_next(next), status_code=303)
    return render(request, "login.html", {"next": safe_next(next)})


@router.post("/login", **SEE_OTHER, responses=page(401, 403, 429))
def login(
    request: Request,
    session: SessionDep,
    username: Annotated[str, Form(max_length=MAX_USERNAME)] = "",
    password: Annotated[str, Form(max_length=MAX_PASSWORD)] = "",
    next: Annotated[str, Form()] = "/",
) -> Response:
    """Check the credentials, start a fresh session and go on to a local `next` page.

    Failed logins slow the account and the address down, then lock them out for a while
    (app.policy.throttle): an attempt that comes too soon is refused with 429 and
    Retry-After before its password is even checked.
    """
    name, address, now = username.strip(), client_address(request), utcnow()
    context = {"next": safe_next(next), "username": username, "duration": duration}
    wait = throttle.wait_seconds(session=session, username=name, address=address, now=now)
    if wait:
        return _too_soon(request, context, wait)
    user = service.authenticate(session=session, username=name, password=password)
    if user is None:
        wait = throttle.record_failure(session=session, username=name, address=address, now=now)
        session.commit()
        # One message for every failure: it must not tell which usernames exist.
        context |= {"failed": True, "retry_after": wait}
        return render(request, "login.html", context, status_code=401)
    throttle.record_success(session=session, username=name)
    session.commit()
    # A new session (and CSRF token) at login, so a token planted before it is worthless.
    request.session.clear()
    request.session["user_id"] = user.id
    request.session[SESSION_VERSION_KEY] = user.session_version
    request.session["language"] = user.language
    return RedirectResponse(safe_next(next), status_code=303)


def client_address(request: Request) -> str:
    """The caller's address as the server sees it (behind a proxy, uvicorn's
    --proxy-headers and --forwarded-allow-ips make it the real client's)."""
    return request.client.host if request.client else "unknown"


def _too_soon(request: Request, context: dict[str, object], wait: int) -> Response:
    context = context | {"too_soon": True, "retry_after": wait}
    response = render(request, "login.html", context, status_code=429)
    response.headers["Retry-After"] = str(wait)
    return response


@router.post("/logout", name="logout", **SEE_OTHER, responses=page(403))
def logout(request: Request, session: SessionDep) -> Response:
    """End the session, and give back the review items the user held."""
    from app.review.service import release_user_leases  # the review area depends on auth

    user_id = request.session.get("user_id")
    if isinstance(user_id, int):
        # Their colleagues need not wait for the leases to run out.
        release_user_leases(session=session, user_id=user_id)
    language = request.session.get("language")
    request.session.clear()
    if language:
        # The login page keeps speaking the language the user chose.
        request.session["language"] = language
    return RedirectResponse("/login", status_code=303)


@router.post("/language", name="language", **SEE_OTHER, responses=page(403))
def set_language(
    request: Request,
    session: SessionDep,
    language: Annotated[str, Form()],
    next: Annotated[str, Form()] = "/",
) -> Response:
    """Switch the UI language: saved on the user when logged in, else for this session."""
    if language not in LANGUAGES:
        raise HTTPException(400, f"unknown language {language!r}")
    user_id = request.session.get("user_id")
    user = service.get_user(session=session, user_id=user_id) if isinstance(user_id, int) else None
    if user is not None:
        user.language = language
        session.commit()
    request.session["language"] = language
    return RedirectResponse(safe_next(next), status_code=303)
