"""instruction dataset snapshots for the classifier (issue 12)

One row per content-addressed manifest of instruction examples built from verified
region answers (app.instructions); the id is the manifest's sha256.

Revision ID: b2instruct1
Revises: b1throttle1
Create Date: 2026-12-03 10:00:00+00:00

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "b2instruct1"
down_revision: str | Sequence[str] | None = "b1throttle1"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# A snapshot is what a classifier will have been tuned on; its counts and its manifest's
# address must never change under the runs that name it.
IMMUTABLE_FUNCTION = """
CREATE FUNCTION instruction_snapshot_immutable() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'instruction_snapshot % is immutable; build a new snapshot', OLD.id;
END
$$ LANGUAGE plpgsql
"""


def _jsonb() -> postgresql.JSONB:
    return postgresql.JSONB(astext_type=sa.Text())


def upgrade() -> None:
    """Upgrade schema."""
    op.create_table(
        "instruction_snapshot",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("manifest_key", sa.String(length=300), nullable=False),
        sa.Column("template_version", sa.String(length=50), nullable=False),
        sa.Column("prompt_version", sa.String(length=50), nullable=False),
        sa.Column("kinds", _jsonb(), nullable=False),
        sa.Column("languages", _jsonb(), nullable=False),
        sa.Column("crops", sa.Integer(), nullable=False),
        sa.Column("examples", sa.Integer(), nullable=False),
        sa.Column("samples", sa.Integer(), nullable=False),
        sa.Column("counts", _jsonb(), nullable=False),
        sa.Column("balance", _jsonb(), nullable=False),
        sa.Column("max_decision_id", sa.BigInteger(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("instruction_snapshot_pkey")),
    )
    op.create_index("instruction_snapshot_created_at_idx", "instruction_snapshot", ["created_at"])
    op.execute(IMMUTABLE_FUNCTION)
    op.execute(
        "CREATE TRIGGER instruction_snapshot_immutable BEFORE UPDATE ON instruction_snapshot "
        "FOR EACH ROW EXECUTE FUNCTION instruction_snapshot_immutable()"
    )


def downgrade() -> None:
    """Downgrade schema."""
    op.execute("DROP TRIGGER instruction_snapshot_immutable ON instruction_snapshot")
    op.execute("DROP FUNCTION instruction_snapshot_immutable()")
    op.drop_index("instruction_snapshot_created_at_idx", table_name="instruction_snapshot")
    op.drop_table("instruction_snapshot")
