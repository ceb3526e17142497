"""routing band (issue 14)

The review band an ml user applied (app.thresholds.tables): proposals from `loupe
thresholds recommend --propose`, and every band applied in turn, rollbacks included.

Revision ID: c1band1
Revises: b9arrive1
Create Date: 2026-12-03 07:30:00+00:00

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "c1band1"
down_revision: str | Sequence[str] | None = "b9arrive1"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

STATES = "state IN ('proposed', 'applied', 'dismissed')"
SOURCES = "source IN ('recommend', 'manual', 'rollback')"


def upgrade() -> None:
    """Upgrade schema."""
    op.create_table(
        "routing_band",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("high", sa.Float(), nullable=False),
        sa.Column("low", sa.Float(), nullable=False),
        sa.Column("state", sa.String(length=20), nullable=False),
        sa.Column("source", sa.String(length=20), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("proposed_by", sa.BigInteger(), nullable=True),
        sa.Column("proposed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("decided_by", sa.BigInteger(), nullable=True),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(STATES, name=op.f("routing_band_state_check")),
        sa.CheckConstraint(SOURCES, name=op.f("routing_band_source_check")),
        sa.CheckConstraint(
            "0 <= low AND low < high AND high <= 1", name=op.f("routing_band_band_check")
        ),
        sa.ForeignKeyConstraint(
            ["proposed_by"], ["user.id"], name=op.f("routing_band_proposed_by_fkey")
        ),
        sa.ForeignKeyConstraint(
            ["decided_by"], ["user.id"], name=op.f("routing_band_decided_by_fkey")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("routing_band_pkey")),
    )
    op.create_index("routing_band_applied_idx", "routing_band", ["decided_at", "id"])


def downgrade() -> None:
    """Downgrade schema."""
    op.drop_index("routing_band_applied_idx", table_name="routing_band")
    op.drop_table("routing_band")
