"""inspection arrival index (issue 13)

/inspections pages newest first by arrival (created_at, then id) and the station API
lists the other statuses oldest first by the same keys: without an index either one
sorts the whole table for every page.

Revision ID: b9arrive1
Revises: b8export1
Create Date: 2026-12-03 07:20:00+00:00

"""

from collections.abc import Sequence

from alembic import op

revision: str = "b9arrive1"
down_revision: str | Sequence[str] | None = "b8export1"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""
    op.create_index("inspection_created_at_idx", "inspection", ["created_at", "id"])


def downgrade() -> None:
    """Downgrade schema."""
    op.drop_index("inspection_created_at_idx", table_name="inspection")
