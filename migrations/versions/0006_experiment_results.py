"""experiments: how each ended, and the last analysis (issue 6); review_task.decided_at index

The index serves the weekly report's backlog (issue 5): without it the query scanned every
review task (bench/dashboard_report.py, 60-80 ms at a year of data).

Revision ID: a7experiment1
Revises: a6learning01
Create Date: 2026-11-21 13:00:00+00:00

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "a7experiment1"
down_revision: str | Sequence[str] | None = "a6learning01"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""
    op.add_column("experiment", sa.Column("result", sa.String(length=20), nullable=True))
    op.add_column(
        "experiment",
        sa.Column("analysis", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
    )
    op.create_index(op.f("review_task_decided_at_idx"), "review_task", ["decided_at"])
    op.create_check_constraint(
        op.f("experiment_result_check"),
        "experiment",
        "result IS NULL OR result IN ('promoted', 'rolled_back')",
    )


def downgrade() -> None:
    """Downgrade schema."""
    op.drop_constraint(op.f("experiment_result_check"), "experiment", type_="check")
    op.drop_index(op.f("review_task_decided_at_idx"), table_name="review_task")
    op.drop_column("experiment", "analysis")
    op.drop_column("experiment", "result")
