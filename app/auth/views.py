"""Log in, log out and pick the UI language: thin HTTP adapters over app.auth.service."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, HTTPException, Request, Response
from fastapi.responses import RedirectResponse

from app.auth import service
from app.auth.deps import safe_next
from app.auth.tables import LANGUAGES
from app.db import SessionDep
from app.web import render

router = APIRouter(tags=["auth"])

# Generous caps: they only stop absurd bodies from reaching the password hasher.
MAX_USERNAME = 100
MAX_PASSWORD = 1024


@router.get("/login", name="login")
def login_form(request: Request, next: str = "/") -> Response:
    """The login form; a logged-in user goes on to `next` directly."""
    if isinstance(request.session.get("user_id"), int):
        return RedirectResponse(safe_next(next), status_code=303)
    return render(request, "login.html", {"next": safe_next(next), "failed": False})


@router.post("/login")
def login(
    request: Request,
    session: SessionDep,
    username: Annotated[str, Form(max_length=MAX_USERNAME)] = "",
    password: Annotated[str, Form(max_length=MAX_PASSWORD)] = "",
    next: Annotated[str, Form()] = "/",
) -> Response:
    """Check the credentials, start a fresh session and go on to a local `next` page."""
    user = service.authenticate(session=session, username=username.strip(), password=password)
    if user is None:
        # One message for every failure: it must not tell which usernames exist.
        context = {"next": safe_next(next), "failed": True, "username": username}
        return render(request, "login.html", context, status_code=401)
    # A new session (and CSRF token) at login, so a token planted before it is worthless.
    request.session.clear()
    request.session["user_id"] = user.id
    request.session["language"] = user.language
    return RedirectResponse(safe_next(next), status_code=303)


@router.post("/logout", name="logout")
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


@router.post("/language", name="language")
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
