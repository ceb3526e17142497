"""Users, password hashes and station tokens."""

from __future__ import annotations

import hashlib
import re
import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.auth.tables import LANGUAGES, ROLES, TOKEN_SCOPES, AuditEvent, StationToken, User
from app.db import utcnow

_hasher = PasswordHasher()
MIN_PASSWORD = 8
USERNAME = re.compile(r"[\w.@-]{1,100}")
# Verifying against a dummy hash for unknown users keeps login timing uniform.
_DUMMY_HASH = _hasher.hash("not-a-real-password")


class InvalidInput(ValueError):
    """A value the service refuses; `field` names it (the pages translate the message)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_user(
    *,
    session: Session,
    username: str,
    password: str,
    role: str,
    language: str = "en",
    actor_id: int | None = None,
) -> User:
    """Create a user; the caller commits."""
    if not USERNAME.fullmatch(username):
        raise InvalidInput("username", "a username is 1-100 letters, digits or . _ - @")
    if role not in ROLES:
        raise InvalidInput("role", f"unknown role {role!r}; choose one of {', '.join(ROLES)}")
    if language not in LANGUAGES:
        raise InvalidInput("language", f"unknown language {language!r}: {', '.join(LANGUAGES)}")
    if len(password) < MIN_PASSWORD:
        raise InvalidInput("password", f"a password needs at least {MIN_PASSWORD} characters")
    user = User(
        username=username, password_hash=_hasher.hash(password), role=role, language=language
    )
    session.add(user)
    session.flush()
    record(session=session, actor_id=actor_id, action="user.create", subject=f"user:{user.id}",
           username=username, role=role)  # fmt: skip
    return user


def authenticate(*, session: Session, username: str, password: str) -> User | None:
    """The active user with this username and password, or None."""
    user = session.scalar(select(User).where(User.username == username))
    try:
        _hasher.verify(user.password_hash if user else _DUMMY_HASH, password)
    except (VerificationError, InvalidHashError):
        return None
    if user is None or not user.is_active:
        return None
    return user


def get_user(*, session: Session, user_id: int) -> User | None:
    user = session.get(User, user_id)
    return user if user is not None and user.is_active else None


def create_station_token(
    *, session: Session, station: str, actor_id: int | None = None, scope: str = "station"
) -> str:
    """Create a token for a station (or, with scope "warehouse", for the site's warehouse
    system, which reads every station's inspections) and return it; only its hash is stored."""
    station = station.strip()
    # "/" separates a station from its cameras (app.inspections.service.recorded_station).
    if not station or len(station) > 100 or "/" in station:
        raise InvalidInput("station", "a station name is 1-100 characters, without '/'")
    if scope not in TOKEN_SCOPES:
        raise InvalidInput(
            "scope", f"unknown scope {scope!r}; choose one of {', '.join(TOKEN_SCOPES)}"
        )
    token = "lst_" + secrets.token_urlsafe(32)
    row = StationToken(station=station, token_hash=hash_token(token), scope=scope)
    session.add(row)
    session.flush()
    record(session=session, actor_id=actor_id, action="token.create",
           subject=f"station_token:{row.id}", station=station, scope=scope)  # fmt: skip
    return token


def token_for(*, session: Session, token: str) -> StationToken | None:
    """The valid, unrevoked token row this token is, or None."""
    return session.scalar(
        select(StationToken).where(
            StationToken.token_hash == hash_token(token), StationToken.revoked_at.is_(None)
        )
    )


def station_for_token(*, session: Session, token: str) -> str | None:
    """The station a valid, unrevoked token belongs to, or None."""
    row = token_for(session=session, token=token)
    return row.station if row else None


# --- administration: every change is written to the audit log -------------------------------


class LastAdmin(ValueError):
    """The change would leave nobody able to administer Loupe."""


def record(
    *, session: Session, actor_id: int | None, action: str, subject: str, **details: object
) -> None:
    """Add an audit event to the session (the caller commits with the change itself)."""
    session.add(AuditEvent(actor_id=actor_id, action=action, subject=subject, details=details))


def list_users(*, session: Session) -> list[User]:
    """Every user, active ones first, by name."""
    return list(session.scalars(select(User).order_by(User.is_active.desc(), User.username)))


def get_by_username(*, session: Session, username: str) -> User | None:
    return session.scalar(select(User).where(User.username == username))


def _active_admins(session: Session) -> int:
    return int(
        session.scalar(select(func.count()).where(User.role == "admin", User.is_active.is_(True)))
        or 0
    )


def set_role(*, session: Session, user: User, role: str, actor_id: int | None) -> None:
    """Give the user another role; the last active admin keeps theirs."""
    if role not in ROLES:
        raise InvalidInput("role", f"unknown role {role!r}; choose one of {', '.join(ROLES)}")
    if user.role == "admin" and role != "admin" and user.is_active and _active_admins(session) <= 1:
        raise LastAdmin("the last active admin cannot change role")
    record(session=session, actor_id=actor_id, action="user.role", subject=f"user:{user.id}",
           old=user.role, new=role)  # fmt: skip
    if role != user.role:
        end_sessions(user)
    user.role = role
    session.flush()


def set_active(*, session: Session, user: User, active: bool, actor_id: int | None) -> None:
    """Disable a user (their sessions end on their next request) or enable them again."""
    if not active and user.role == "admin" and user.is_active and _active_admins(session) <= 1:
        raise LastAdmin("the last active admin cannot be disabled")
    action = "user.enable" if active else "user.disable"
    record(session=session, actor_id=actor_id, action=action, subject=f"user:{user.id}")
    if active != user.is_active:
        end_sessions(user)
    user.is_active = active
    session.flush()


def set_password(*, session: Session, user: User, password: str, actor_id: int | None) -> None:
    """Replace the user's password (an admin's reset)."""
    if len(password) < MIN_PASSWORD:
        raise InvalidInput("password", f"a password needs at least {MIN_PASSWORD} characters")
    record(session=session, actor_id=actor_id, action="user.password", subject=f"user:{user.id}")
    user.password_hash = _hasher.hash(password)
    end_sessions(user)
    session.flush()


def end_sessions(user: User) -> None:
    """Every session the user has open ends on its next request: a new password, role or
    status must not leave an old session (perhaps on a shared floor PC) working."""
    user.session_version = (user.session_version or 0) + 1


def list_tokens(*, session: Session) -> list[StationToken]:
    """Every station token, live ones first, newest first (hashes only)."""
    return list(
        session.scalars(
            select(StationToken).order_by(
                StationToken.revoked_at.is_not(None), StationToken.created_at.desc()
            )
        )
    )


def revoke_token(*, session: Session, token_id: int, actor_id: int | None) -> StationToken | None:
    """Revoke a token at once; stations using it get 401 from then on."""
    row = session.get(StationToken, token_id)
    if row is None or row.revoked_at is not None:
        return None
    row.revoked_at = utcnow()
    record(session=session, actor_id=actor_id, action="token.revoke",
           subject=f"station_token:{row.id}", station=row.station)  # fmt: skip
    session.flush()
    return row
