"""Webhooks: the endpoints an admin registered, the events Loupe owes them, and every
delivery and attempt, kept as the delivery log.

An event is written in the transaction that changed the inspection's outcome
(app.webhooks.events), with one delivery per listening endpoint; attempts are appended
by the `webhooks` queue's worker (app.webhooks.delivery).
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    DateTime,
    Float,
    ForeignKey,
    Identity,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.db import Base, utcnow

# pending: not tried yet (or replayed); retrying: failed, tried again at next_attempt_at;
# delivered: a 2xx answer; failed: every attempt failed (an admin may replay it).
STATUSES = ("pending", "retrying", "delivered", "failed")
OPEN = ("pending", "retrying")


class WebhookEndpoint(Base):
    """A receiver an admin registered.

    The secret is stored as it is, unlike a station token's hash: Loupe must sign with it,
    and a hash cannot sign. Whoever can read this table can forge events to the receiver
    (never read anything from Loupe); encrypting it with LOUPE_SECRET_KEY would only move
    the key next to it on the same machines and break every endpoint when that key is
    rotated. It is shown once, when created, and never again on a page or in a command.
    """

    __tablename__ = "webhook_endpoint"

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    url: Mapped[str] = mapped_column(String(2000))
    # Short names from app.policy.webhooks.EVENTS ("decided").
    events: Mapped[list[str]] = mapped_column(ARRAY(String(50)))
    secret: Mapped[str] = mapped_column(String(200))
    # NULL when the command line added it.
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    # A removed endpoint is kept with its log, never deleted: a decision that is writing a
    # delivery for it at that moment must not fail on a foreign key to a row that vanished.
    removed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class WebhookEvent(Base):
    """Something an endpoint is told: the outcome of an inspection became final or changed.

    `body` is the JSON sent, exactly (the signature covers these bytes); it is built on the
    first delivery from immutable rows (the decision named here, or the automatic route),
    so it says what the outcome was when the event occurred, and a replay sends it again
    unchanged.
    """

    __tablename__ = "webhook_event"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    type: Mapped[str] = mapped_column(String(50))
    inspection_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("inspection.id"))
    # The inspector's decision that is the outcome; NULL for an automatic route.
    decision_id: Mapped[int | None] = mapped_column(ForeignKey("decision.id"))
    occurred_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    body: Mapped[str | None] = mapped_column(Text)


class WebhookDelivery(Base):
    """One event owed to one endpoint, and where its delivery stands."""

    __tablename__ = "webhook_delivery"
    __table_args__ = (
        CheckConstraint(f"status IN {STATUSES}", name="status"),
        # One delivery per event and endpoint, whoever writes it twice.
        UniqueConstraint("endpoint_id", "event_id"),
        # The log of one endpoint, newest first.
        Index("webhook_delivery_endpoint_id_idx", "endpoint_id", "id"),
        # The sweep's "open and overdue" (app.webhooks.delivery.overdue): a few rows at most.
        Index(
            "webhook_delivery_open_idx",
            "next_attempt_at",
            postgresql_where=text("status IN ('pending', 'retrying')"),
        ),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    endpoint_id: Mapped[int] = mapped_column(ForeignKey("webhook_endpoint.id", ondelete="CASCADE"))
    event_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("webhook_event.id"))
    status: Mapped[str] = mapped_column(String(20), default="pending")
    # Attempts since the delivery was queued or last replayed (the backoff counts these).
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    replays: Mapped[int] = mapped_column(Integer, default=0)
    # When the next attempt is due; while one is being sent, when it will have timed out.
    next_attempt_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_status_code: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    delivered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    event: Mapped[WebhookEvent] = relationship(lazy="joined", innerjoin=True)
    attempt_log: Mapped[list[WebhookAttempt]] = relationship(
        order_by="WebhookAttempt.id", viewonly=True
    )


class WebhookAttempt(Base):
    """One POST to an endpoint: what it answered, or why there was no answer."""

    __tablename__ = "webhook_attempt"

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    delivery_id: Mapped[int] = mapped_column(
        ForeignKey("webhook_delivery.id", ondelete="CASCADE"), index=True
    )
    number: Mapped[int] = mapped_column(Integer)  # from 1, within its round
    replay: Mapped[int] = mapped_column(Integer, default=0)  # 0: the first round; n: replay n
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    duration_ms: Mapped[float] = mapped_column(Float)
    status_code: Mapped[int | None] = mapped_column(Integer)
    error: Mapped[str | None] = mapped_column(Text)  # truncated; None after a 2xx
