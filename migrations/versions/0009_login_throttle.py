"""login throttle and ending sessions (issue 16)

Failed logins per account and per client address (app.policy.throttle), and a number on
each user that ends their sessions when their password, role or status changes.

Revision ID: b1throttle1
Revises: a9refusal1
Create Date: 2026-12-02 20:20:00+00:00

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "b1throttle1"
down_revision: str | Sequence[str] | None = "a9refusal1"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""
    op.create_table(
        "login_failure",
        sa.Column("key", sa.String(length=160), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("last_failed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("locked_until", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_login_failure")),
    )
    op.add_column(
        "user", sa.Column("session_version", sa.Integer(), server_default="0", nullable=False)
    )


def downgrade() -> None:
    """Downgrade schema."""
    op.drop_column("user", "session_version")
    op.drop_table("login_failure")
