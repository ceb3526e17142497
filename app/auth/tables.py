"""People who log in, the tokens camera stations use for the API, and the audit log of
what people changed (users, tokens, leases, re-reviews)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, CheckConstraint, DateTime, ForeignKey, Identity, String
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, utcnow

ROLES = ("inspector", "lead", "ml", "admin")
LANGUAGES = ("en", "ko")
# Which labels the review page prints on its keys; the keys themselves are physical
# positions (KeyboardEvent.code), so they work whatever the layout (app.review.keys).
KEYBOARD_LAYOUTS = ("qwerty", "azerty", "qwertz")
# What a station token may do: a station's sends photos and reads its own inspections; the
# site's warehouse system reads every station's and sends nothing.
TOKEN_SCOPES = ("station", "warehouse")


class User(Base):
    __tablename__ = "user"
    __table_args__ = (
        CheckConstraint(f"role IN {ROLES}", name="role"),
        CheckConstraint(f"language IN {LANGUAGES}", name="language"),
        CheckConstraint(f"keyboard_layout IN {KEYBOARD_LAYOUTS}", name="keyboard_layout"),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    username: Mapped[str] = mapped_column(String(100), unique=True)
    password_hash: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(20))
    language: Mapped[str] = mapped_column(String(5), default="en")
    is_active: Mapped[bool] = mapped_column(default=True)
    # Only the actions the user re-bound: {"pass": "KeyF"}; the rest keep the defaults.
    key_bindings: Mapped[dict[str, str]] = mapped_column(JSONB, default=dict)
    keyboard_layout: Mapped[str] = mapped_column(String(10), default="qwerty")
    # Rises when the password, role or status changes; a session started under another
    # number has ended (app.auth.deps.current_user).
    session_version: Mapped[int] = mapped_column(default=0, server_default="0")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class StationToken(Base):
    """Only a hash of the token is stored; the token itself is shown once, at creation."""

    __tablename__ = "station_token"
    __table_args__ = (CheckConstraint(f"scope IN {TOKEN_SCOPES}", name="scope"),)

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    station: Mapped[str] = mapped_column(String(100))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    scope: Mapped[str] = mapped_column(String(20), default="station", server_default="station")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class AuditEvent(Base):
    """Who changed what: one row per administrative or lead action. Never updated."""

    __tablename__ = "audit_event"

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    # NULL when the command line did it (`loupe users ...`), where nobody is logged in.
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"))
    action: Mapped[str] = mapped_column(String(50))  # user.create, lease.release, ...
    subject: Mapped[str] = mapped_column(String(200))  # "user:12", "review_task:40"
    details: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, index=True
    )


class LoginFailure(Base):
    """Recent failed logins of one account or one client address (app.policy.throttle).

    `key` is "account:<username>" or "address:<ip>". A row is deleted when its account
    logs in, when an admin unlocks it, and is simply outlived otherwise.
    """

    __tablename__ = "login_failure"

    key: Mapped[str] = mapped_column(String(160), primary_key=True)
    failures: Mapped[int]
    last_failed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    locked_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
