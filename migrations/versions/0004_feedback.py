"""feedback: error cases and weekly reports (issue 5)

Revision ID: a5feedback01
Revises: a4review0001
Create Date: 2026-11-21 12:00:00+00:00

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "a5feedback01"
down_revision: str | Sequence[str] | None = "a4review0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""
    op.create_table(
        "error_case",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("decision_id", sa.BigInteger(), nullable=False),
        sa.Column("inspection_id", sa.Uuid(), nullable=False),
        sa.Column("kind", sa.String(length=30), nullable=False),
        sa.Column("scope", sa.String(length=10), nullable=False),
        sa.Column("region_id", sa.BigInteger(), nullable=True),
        sa.Column("photo_id", sa.BigInteger(), nullable=True),
        sa.Column("x1", sa.Float(), nullable=True),
        sa.Column("y1", sa.Float(), nullable=True),
        sa.Column("x2", sa.Float(), nullable=True),
        sa.Column("y2", sa.Float(), nullable=True),
        sa.Column("model_label", sa.String(length=50), nullable=True),
        sa.Column("human_label", sa.String(length=50), nullable=True),
        sa.Column("field", sa.String(length=10), nullable=True),
        sa.Column("from_value", sa.String(length=50), nullable=True),
        sa.Column("to_value", sa.String(length=50), nullable=True),
        sa.Column("tags", postgresql.ARRAY(sa.String(length=50)), nullable=False),
        sa.Column("is_audit", sa.Boolean(), nullable=False),
        sa.Column("detector_version", sa.String(length=200), nullable=True),
        sa.Column("classifier_version", sa.String(length=200), nullable=True),
        sa.Column("prompt_version", sa.String(length=50), nullable=True),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "kind IN ('false_positive', 'false_negative', 'classification_error')",
            name=op.f("error_case_kind_check"),
        ),
        sa.CheckConstraint("scope IN ('region', 'item')", name=op.f("error_case_scope_check")),
        sa.CheckConstraint(
            "field IS NULL OR field IN ('type', 'severity')", name=op.f("error_case_field_check")
        ),
        sa.ForeignKeyConstraint(
            ["decision_id"], ["decision.id"], name=op.f("error_case_decision_id_fkey")
        ),
        sa.ForeignKeyConstraint(
            ["inspection_id"], ["inspection.id"], name=op.f("error_case_inspection_id_fkey")
        ),
        sa.ForeignKeyConstraint(
            ["region_id"], ["region.id"], name=op.f("error_case_region_id_fkey")
        ),
        sa.ForeignKeyConstraint(["photo_id"], ["photo.id"], name=op.f("error_case_photo_id_fkey")),
        sa.PrimaryKeyConstraint("id", name=op.f("error_case_pkey")),
    )
    op.create_index(op.f("error_case_decided_at_idx"), "error_case", ["decided_at"])
    op.create_index(op.f("error_case_decision_id_idx"), "error_case", ["decision_id"])
    op.create_table(
        "weekly_report",
        sa.Column("week", sa.String(length=10), nullable=False),
        sa.Column("report", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("week", name=op.f("weekly_report_pkey")),
    )
    op.create_index(
        op.f("review_task_decision_id_key"), "review_task", ["decision_id"], unique=True
    )
    op.create_index(op.f("inspection_routed_at_idx"), "inspection", ["routed_at"])


def downgrade() -> None:
    """Downgrade schema."""
    op.drop_index(op.f("inspection_routed_at_idx"), table_name="inspection")
    op.drop_index(op.f("review_task_decision_id_key"), table_name="review_task")
    op.drop_table("weekly_report")
    op.drop_index(op.f("error_case_decision_id_idx"), table_name="error_case")
    op.drop_index(op.f("error_case_decided_at_idx"), table_name="error_case")
    op.drop_table("error_case")
