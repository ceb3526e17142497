"""training runs: each refusal reason's message key and parameters (session 4)

Refusal reasons were stored in English only; the page shows them in the reader's
language from these codes. Older runs have none and show their reasons as written.

Revision ID: a9refusal1
Revises: a8classifier1
Create Date: 2026-11-21 18:00:00+00:00

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "a9refusal1"
down_revision: str | Sequence[str] | None = "a8classifier1"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""
    op.add_column(
        "training_run",
        sa.Column(
            "refusal_codes",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'[]'::jsonb"),
            nullable=False,
        ),
    )


def downgrade() -> None:
    """Downgrade schema."""
    op.drop_column("training_run", "refusal_codes")
