"""Users, password hashes and station tokens."""

from __future__ import annotations

import hashlib
import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.auth.tables import LANGUAGES, ROLES, StationToken, User

_hasher = PasswordHasher()
# Verifying against a dummy hash for unknown users keeps login timing uniform.
_DUMMY_HASH = _hasher.hash("not-a-real-password")


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_user(
    *, session: Session, username: str, password: str, role: str, language: str = "en"
) -> User:
    """Create a user; the caller commits."""
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}; choose one of {', '.join(ROLES)}")
    if language not in LANGUAGES:
        raise ValueError(f"unknown language {language!r}; choose one of {', '.join(LANGUAGES)}")
    if len(password) < 8:
        raise ValueError("a password needs at least 8 characters")
    user = User(
        username=username, password_hash=_hasher.hash(password), role=role, language=language
    )
    session.add(user)
    session.flush()
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


def create_station_token(*, session: Session, station: str) -> str:
    """Create a token for a station and return it; only its hash is stored."""
    token = "lst_" + secrets.token_urlsafe(32)
    session.add(StationToken(station=station, token_hash=hash_token(token)))
    session.flush()
    return token


def station_for_token(*, session: Session, token: str) -> str | None:
    """The station a valid, unrevoked token belongs to, or None."""
    row = session.scalar(
        select(StationToken).where(
            StationToken.token_hash == hash_token(token), StationToken.revoked_at.is_(None)
        )
    )
    return row.station if row else None
