"""the band an inspection was routed with (issue 14)

An ml user may apply another review band at any time (routing_band); the review of an
item weighs its regions by the band that routed it, recorded here. NULL for items routed
before: review uses the settings' band for them, as it did.

Revision ID: c2band2
Revises: c1band1
Create Date: 2026-12-03 08:05:00+00:00

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "c2band2"
down_revision: str | Sequence[str] | None = "c1band1"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""
    op.add_column("inspection", sa.Column("band_high", sa.Float(), nullable=True))
    op.add_column("inspection", sa.Column("band_low", sa.Float(), nullable=True))


def downgrade() -> None:
    """Downgrade schema."""
    op.drop_column("inspection", "band_low")
    op.drop_column("inspection", "band_high")
