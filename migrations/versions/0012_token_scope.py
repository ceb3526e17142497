"""station token scopes (issue 13)

A token is a station's (sends photos, reads its own inspections) or the site's warehouse
system's (reads every station's inspections, sends nothing). Existing tokens are stations'.

Revision ID: b4scope1
Revises: b3exclude1
Create Date: 2026-12-08 10:00:00+00:00

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "b4scope1"
down_revision: str | Sequence[str] | None = "b3exclude1"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""
    op.add_column(
        "station_token",
        sa.Column("scope", sa.String(length=20), server_default="station", nullable=False),
    )
    op.create_check_constraint(
        op.f("station_token_scope_check"), "station_token", "scope IN ('station', 'warehouse')"
    )


def downgrade() -> None:
    """Downgrade schema."""
    op.drop_constraint(op.f("station_token_scope_check"), "station_token", type_="check")
    op.drop_column("station_token", "scope")
