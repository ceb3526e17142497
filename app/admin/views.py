"""Administration pages: people who log in, and the tokens of camera stations.

Thin adapters over app.auth.service, which writes every change to the audit log.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, HTTPException, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.auth import service, throttle
from app.auth.deps import SESSION_VERSION_KEY, AdminDep
from app.auth.tables import LANGUAGES, ROLES, User
from app.db import RowId, SessionDep, utcnow
from app.deps import TranslatorDep
from app.pages import render
from app.spec import ROLE_PAGE, SEE_OTHER, page

router = APIRouter(
    prefix="/admin", tags=["admin"], default_response_class=HTMLResponse, responses=ROLE_PAGE
)

FLASH_KEY = "admin_flash"
MAX_NAME = 100
MAX_PASSWORD = 1024


def _users_page(
    request: Request, session: Session, user: User, *, error: str | None = None,
    form: dict[str, str] | None = None, status_code: int = 200,
) -> Response:  # fmt: skip
    context: dict[str, Any] = {
        "user": user,
        "users": service.list_users(session=session),
        "locks": throttle.locks(session=session, now=utcnow()),
        "roles": ROLES,
        "languages_all": LANGUAGES,
        "error": error,
        "flash": request.session.pop(FLASH_KEY, None),
        "form": form or {},
    }
    return render(request, "admin_users.html", context, status_code=status_code)


def _back(request: Request, path: str, message: str) -> Response:
    request.session[FLASH_KEY] = message
    return RedirectResponse(path, status_code=303)


def _keep_own_session(request: Request, user: User, target: User) -> None:
    """An admin who changes their own password or role stays logged in here; their other
    sessions end like anyone's."""
    if target.id == user.id:
        request.session[SESSION_VERSION_KEY] = target.session_version


def _target(session: Session, user_id: int) -> User:
    target = session.get(User, user_id)
    if target is None:
        raise HTTPException(404, f"no user {user_id}")
    return target


@router.get("", name="admin", **SEE_OTHER)
def admin_home(user: AdminDep) -> Response:
    """The administration starts with the users."""
    return RedirectResponse("/admin/users", status_code=303)


@router.get("/users", name="admin_users")
def users_page(request: Request, session: SessionDep, user: AdminDep) -> Response:
    """Every user with their role, language and state, and a form to add one."""
    return _users_page(request, session, user)


@router.post("/users", **SEE_OTHER)
def create_user(
    request: Request,
    session: SessionDep,
    user: AdminDep,
    t: TranslatorDep,
    username: Annotated[str, Form(max_length=MAX_NAME)],
    role: Annotated[str, Form()],
    password: Annotated[str, Form(max_length=MAX_PASSWORD)],
    language: Annotated[str, Form()] = "en",
) -> Response:
    """Add a user; they log in with the password given here."""
    form = {"username": username, "role": role, "language": language}
    try:
        service.create_user(
            session=session, username=username.strip(), password=password, role=role,
            language=language, actor_id=user.id,
        )  # fmt: skip
        session.commit()
    except service.InvalidInput as exc:
        session.rollback()
        error = t(f"admin.invalid.{exc.field}")
        return _users_page(request, session, user, error=error, form=form, status_code=400)
    except IntegrityError:
        session.rollback()
        error = t("admin.user_exists", name=username)
        return _users_page(request, session, user, error=error, form=form, status_code=400)
    return _back(request, "/admin/users", t("admin.user_created", name=username.strip()))


@router.post("/users/{user_id}/role", **SEE_OTHER, responses=page(404))
def set_role(
    request: Request,
    user_id: RowId,
    session: SessionDep,
    user: AdminDep,
    t: TranslatorDep,
    role: Annotated[str, Form()],
) -> Response:
    """Give a user another role (takes effect on their next request)."""
    target = _target(session, user_id)
    try:
        service.set_role(session=session, user=target, role=role, actor_id=user.id)
        session.commit()
        _keep_own_session(request, user, target)
    except service.LastAdmin:
        session.rollback()
        return _back(request, "/admin/users", t("admin.last_admin"))
    except service.InvalidInput as exc:
        raise HTTPException(400, str(exc)) from exc
    return _back(request, "/admin/users", t("admin.role_set", name=target.username))


@router.post("/users/{user_id}/active", **SEE_OTHER, responses=page(404))
def set_active(
    request: Request,
    user_id: RowId,
    session: SessionDep,
    user: AdminDep,
    t: TranslatorDep,
    active: Annotated[bool, Form()],
) -> Response:
    """Disable a user (logged out at once) or enable them again."""
    target = _target(session, user_id)
    try:
        service.set_active(session=session, user=target, active=active, actor_id=user.id)
        session.commit()
    except service.LastAdmin:
        session.rollback()
        return _back(request, "/admin/users", t("admin.last_admin"))
    key = "admin.user_enabled" if active else "admin.user_disabled"
    return _back(request, "/admin/users", t(key, name=target.username))


@router.post("/users/{user_id}/password", **SEE_OTHER, responses=page(404))
def reset_password(
    request: Request,
    user_id: RowId,
    session: SessionDep,
    user: AdminDep,
    t: TranslatorDep,
    password: Annotated[str, Form(max_length=MAX_PASSWORD)],
) -> Response:
    """Set a new password for a user who forgot theirs."""
    target = _target(session, user_id)
    try:
        service.set_password(session=session, user=target, password=password, actor_id=user.id)
        session.commit()
        _keep_own_session(request, user, target)
    except service.InvalidInput as exc:
        session.rollback()
        error = t(f"admin.invalid.{exc.field}")
        return _users_page(request, session, user, error=error, status_code=400)
    return _back(request, "/admin/users", t("admin.password_set", name=target.username))


@router.post("/logins/unlock", **SEE_OTHER)
def unlock_login(
    request: Request,
    session: SessionDep,
    user: AdminDep,
    t: TranslatorDep,
    key: Annotated[str, Form(max_length=200)],
) -> Response:
    """Let a locked-out account (or address) try again at once."""
    throttle.unlock(session=session, key=key, actor_id=user.id)
    session.commit()
    return _back(request, "/admin/users", t("admin.unlocked", name=throttle.who(key)))
