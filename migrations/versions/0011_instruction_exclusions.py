"""instruction examples the ML team excluded (issue 12)

Who took which examples out of an instruction snapshot, why, and the snapshot that left
(app.instructions.exclusions); later builds leave those examples out too. Like the
snapshots themselves, the rows are never updated.

Revision ID: b3exclude1
Revises: b2instruct1
Create Date: 2026-12-04 10:00:00+00:00

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "b3exclude1"
down_revision: str | Sequence[str] | None = "b2instruct1"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# An exclusion is an audit record and what every later build obeys: it must not change.
IMMUTABLE_FUNCTION = """
CREATE FUNCTION instruction_exclusion_immutable() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'instruction_exclusion % is immutable', OLD.id;
END
$$ LANGUAGE plpgsql
"""


def upgrade() -> None:
    """Upgrade schema."""
    op.create_table(
        "instruction_exclusion",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("source_id", sa.String(length=64), nullable=False),
        sa.Column("result_id", sa.String(length=64), nullable=False),
        sa.Column("example_ids", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("reason", sa.String(length=500), nullable=False),
        sa.Column("actor_id", sa.BigInteger(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["source_id"],
            ["instruction_snapshot.id"],
            name=op.f("instruction_exclusion_source_id_fkey"),
        ),
        sa.ForeignKeyConstraint(
            ["result_id"],
            ["instruction_snapshot.id"],
            name=op.f("instruction_exclusion_result_id_fkey"),
        ),
        sa.ForeignKeyConstraint(
            ["actor_id"], ["user.id"], name=op.f("instruction_exclusion_actor_id_fkey")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("instruction_exclusion_pkey")),
    )
    for column in ("source_id", "result_id"):
        op.create_index(
            op.f(f"instruction_exclusion_{column}_idx"), "instruction_exclusion", [column]
        )
    op.execute(IMMUTABLE_FUNCTION)
    op.execute(
        "CREATE TRIGGER instruction_exclusion_immutable BEFORE UPDATE ON instruction_exclusion "
        "FOR EACH ROW EXECUTE FUNCTION instruction_exclusion_immutable()"
    )


def downgrade() -> None:
    """Downgrade schema."""
    op.execute("DROP TRIGGER instruction_exclusion_immutable ON instruction_exclusion")
    op.execute("DROP FUNCTION instruction_exclusion_immutable()")
    for column in ("source_id", "result_id"):
        op.drop_index(
            op.f(f"instruction_exclusion_{column}_idx"), table_name="instruction_exclusion"
        )
    op.drop_table("instruction_exclusion")
