"""classifier tuning: adapters in the registry, tuned-on items, classifier trigger checks (issue 12)

- model_version.adapter_uri: a tuned classifier is its base weights (`uri`) plus a LoRA
  adapter; NULL for every other version.
- trained_item: an item a tuning run trained on is recorded by the instruction snapshot
  it came from, so a test-set freeze never picks it; `snapshot_id` (the detector's
  dataset snapshot) becomes optional, and exactly one of the two is set.
- trigger_check.kind: the detector's and the classifier's checks are recorded apart;
  `measures` holds the numbers a classifier check saw (errors, false positives per
  1,000 normal crops, new verified crops).

Revision ID: b5tune1
Revises: b4scope1
Create Date: 2026-12-03 04:00:00+00:00

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "b5tune1"
down_revision: str | Sequence[str] | None = "b4scope1"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""
    op.add_column("model_version", sa.Column("adapter_uri", sa.Text(), nullable=True))
    op.alter_column("trained_item", "snapshot_id", existing_type=sa.BigInteger(), nullable=True)
    op.add_column(
        "trained_item",
        sa.Column(
            "instruction_snapshot_id",
            sa.String(length=64),
            sa.ForeignKey(
                "instruction_snapshot.id",
                name=op.f("trained_item_instruction_snapshot_id_fkey"),
            ),
            nullable=True,
        ),
    )
    op.create_check_constraint(
        op.f("trained_item_one_snapshot_check"),
        "trained_item",
        "(snapshot_id IS NULL) <> (instruction_snapshot_id IS NULL)",
    )
    op.add_column(
        "trigger_check",
        sa.Column("kind", sa.String(length=20), server_default="detector", nullable=False),
    )
    op.create_check_constraint(
        op.f("trigger_check_kind_check"), "trigger_check", "kind IN ('detector', 'classifier')"
    )
    op.add_column(
        "trigger_check",
        sa.Column("measures", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
    )


def downgrade() -> None:
    """Downgrade schema."""
    op.drop_column("trigger_check", "measures")
    op.drop_constraint(op.f("trigger_check_kind_check"), "trigger_check", type_="check")
    op.drop_column("trigger_check", "kind")
    op.drop_constraint(op.f("trained_item_one_snapshot_check"), "trained_item", type_="check")
    op.drop_column("trained_item", "instruction_snapshot_id")
    op.execute("DELETE FROM trained_item WHERE snapshot_id IS NULL")
    op.alter_column("trained_item", "snapshot_id", existing_type=sa.BigInteger(), nullable=False)
    op.drop_column("model_version", "adapter_uri")
