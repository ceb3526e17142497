"""training runs of a classifier candidate: what a run produces, and which candidate (issue 6)

A classifier candidate (weights and prompts) is evaluated on verified crops and gated
like a fine-tuned detector; it shares the one training slot, so it is a training run.

Revision ID: a8classifier1
Revises: a7experiment1
Create Date: 2026-11-21 15:00:00+00:00

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "a8classifier1"
down_revision: str | Sequence[str] | None = "a7experiment1"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""
    op.add_column(
        "training_run",
        sa.Column("kind", sa.String(length=20), server_default="detector", nullable=False),
    )
    op.add_column(
        "training_run",
        sa.Column("candidate", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
    )
    op.create_check_constraint(
        op.f("training_run_kind_check"), "training_run", "kind IN ('detector', 'classifier')"
    )


def downgrade() -> None:
    """Downgrade schema."""
    op.drop_constraint(op.f("training_run_kind_check"), "training_run", type_="check")
    op.drop_column("training_run", "candidate")
    op.drop_column("training_run", "kind")
