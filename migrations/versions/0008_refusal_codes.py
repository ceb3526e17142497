"""the message key and parameters beside each stored reason (session 4)

Training runs' refusal reasons and trigger checks' reasons and notes were stored in
English only; the page says them in the reader's language from these codes
(app.policy.problems). Older rows have none and read as written.

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
    for table, column in (("training_run", "refusal_codes"), ("trigger_check", "reason_codes")):
        op.add_column(table, sa.Column(column, _jsonb(), server_default=_EMPTY, nullable=False))
    op.add_column("trigger_check", sa.Column("note_code", _jsonb(), nullable=True))


def downgrade() -> None:
    """Downgrade schema."""
    op.drop_column("trigger_check", "note_code")
    op.drop_column("trigger_check", "reason_codes")
    op.drop_column("training_run", "refusal_codes")


_EMPTY = sa.text("'[]'::jsonb")


def _jsonb() -> postgresql.JSONB:
    return postgresql.JSONB(astext_type=sa.Text())
