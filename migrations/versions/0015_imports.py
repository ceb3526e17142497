"""imports: a site's labeled history as verified ground truth or as items to inspect (issue 13)

- inspection.source: "import:<name>" for photos `loupe import` brought in, NULL for a
  station's upload.
- inspection.reference_labels: the labels an import brought for an item it sent to the
  models (--as inspect), kept to compare the models with.
- decision.user_id becomes optional: an imported label (--as verified) is a decision in
  effect that no person made, so it is nobody's work (per-inspector numbers join the
  user) and no judgement of a model (model_verdict NULL, no error cases).
- photo_content_hash_idx: an import asks "is this photo already here?" for every image.

Revision ID: b7import1
Revises: b6hooks1
Create Date: 2026-12-04 09:00:00+00:00

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "b7import1"
down_revision: str | Sequence[str] | None = "b6hooks1"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

IMPORTED = "SELECT id FROM decision WHERE user_id IS NULL"


def upgrade() -> None:
    """Upgrade schema."""
    op.add_column("inspection", sa.Column("source", sa.String(length=100), nullable=True))
    op.add_column(
        "inspection",
        sa.Column("reference_labels", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
    )
    op.alter_column("decision", "user_id", existing_type=sa.BigInteger(), nullable=True)
    op.create_index(op.f("photo_content_hash_idx"), "photo", ["content_hash"])


def downgrade() -> None:
    """Downgrade schema."""
    op.drop_index(op.f("photo_content_hash_idx"), table_name="photo")
    # The older schema has no decision without a person: imported labels go (their
    # inspections and photos stay, as items without a decision; re-import to get them back).
    op.execute(f"UPDATE review_task SET decision_id = NULL WHERE decision_id IN ({IMPORTED})")
    op.execute(f"DELETE FROM decision_region WHERE decision_id IN ({IMPORTED})")
    op.execute("DELETE FROM decision WHERE user_id IS NULL")
    op.alter_column("decision", "user_id", existing_type=sa.BigInteger(), nullable=False)
    op.drop_column("inspection", "reference_labels")
    op.drop_column("inspection", "source")
