"""webhooks: endpoints, events, deliveries and their attempts (issue 13)

- webhook_endpoint: a receiver an admin registered, the events it listens to, and the
  secret Loupe signs with (kept as it is: a hash cannot sign; app.webhooks.tables);
  removing one keeps the row and its log (`removed_at`).
- webhook_event: an inspection's outcome became final or changed, written in the
  deciding transaction; `body` is the JSON as sent, built on the first delivery.
- webhook_delivery: one event owed to one endpoint, and where its delivery stands.
- webhook_attempt: each POST and what the receiver answered (the delivery log).

Revision ID: b6hooks1
Revises: b5tune1
Create Date: 2026-12-09 09:00:00+00:00

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "b6hooks1"
down_revision: str | Sequence[str] | None = "b5tune1"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

STATUSES = "status IN ('pending', 'retrying', 'delivered', 'failed')"


def _id() -> sa.Column[int]:
    return sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False)


def upgrade() -> None:
    """Upgrade schema."""
    op.create_table(
        "webhook_endpoint",
        _id(),
        sa.Column("url", sa.String(length=2000), nullable=False),
        sa.Column("events", postgresql.ARRAY(sa.String(length=50)), nullable=False),
        sa.Column("secret", sa.String(length=200), nullable=False),
        sa.Column("created_by_id", sa.BigInteger(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("removed_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["created_by_id"], ["user.id"], name=op.f("webhook_endpoint_created_by_id_fkey")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("webhook_endpoint_pkey")),
    )
    op.create_table(
        "webhook_event",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("type", sa.String(length=50), nullable=False),
        sa.Column("inspection_id", sa.Uuid(), nullable=False),
        sa.Column("decision_id", sa.BigInteger(), nullable=True),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("body", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["inspection_id"], ["inspection.id"], name=op.f("webhook_event_inspection_id_fkey")
        ),
        sa.ForeignKeyConstraint(
            ["decision_id"], ["decision.id"], name=op.f("webhook_event_decision_id_fkey")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("webhook_event_pkey")),
    )
    op.create_table(
        "webhook_delivery",
        _id(),
        sa.Column("endpoint_id", sa.BigInteger(), nullable=False),
        sa.Column("event_id", sa.Uuid(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("replays", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_status_code", sa.Integer(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("delivered_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(STATUSES, name=op.f("webhook_delivery_status_check")),
        sa.ForeignKeyConstraint(
            ["endpoint_id"],
            ["webhook_endpoint.id"],
            name=op.f("webhook_delivery_endpoint_id_fkey"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["event_id"], ["webhook_event.id"], name=op.f("webhook_delivery_event_id_fkey")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("webhook_delivery_pkey")),
        sa.UniqueConstraint(
            "endpoint_id", "event_id", name=op.f("webhook_delivery_endpoint_id_key")
        ),
    )
    op.create_index("webhook_delivery_endpoint_id_idx", "webhook_delivery", ["endpoint_id", "id"])
    op.create_index(
        "webhook_delivery_open_idx",
        "webhook_delivery",
        ["next_attempt_at"],
        postgresql_where=sa.text("status IN ('pending', 'retrying')"),
    )
    op.create_table(
        "webhook_attempt",
        _id(),
        sa.Column("delivery_id", sa.BigInteger(), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("replay", sa.Integer(), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("duration_ms", sa.Float(), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["delivery_id"],
            ["webhook_delivery.id"],
            name=op.f("webhook_attempt_delivery_id_fkey"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("webhook_attempt_pkey")),
    )
    op.create_index("webhook_attempt_delivery_id_idx", "webhook_attempt", ["delivery_id"])


def downgrade() -> None:
    """Downgrade schema."""
    op.drop_index("webhook_attempt_delivery_id_idx", table_name="webhook_attempt")
    op.drop_table("webhook_attempt")
    op.drop_index("webhook_delivery_open_idx", table_name="webhook_delivery")
    op.drop_index("webhook_delivery_endpoint_id_idx", table_name="webhook_delivery")
    op.drop_table("webhook_delivery")
    op.drop_table("webhook_event")
    op.drop_table("webhook_endpoint")
