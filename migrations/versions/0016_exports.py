"""export jobs (issue 13)

/ml/exports builds an archive of a snapshot in one format (COCO, YOLO, Label Studio,
instruction JSONL) in a worker: `export_job` holds its status and progress, the
snapshot it exports, and the object-store key and size of the finished .zip
(app.exports.tables).

Revision ID: b8export1
Revises: b7import1
Create Date: 2026-12-09 10:00:00+00:00

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "b8export1"
down_revision: str | Sequence[str] | None = "b7import1"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""
    op.create_table(
        "export_job",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("format", sa.String(length=20), nullable=False),
        sa.Column("split", sa.Boolean(), nullable=False),
        sa.Column("snapshot_id", sa.BigInteger(), nullable=True),
        sa.Column("instruction_snapshot_id", sa.String(length=64), nullable=True),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("phase", sa.String(length=20), nullable=True),
        sa.Column("progress_done", sa.Integer(), nullable=False),
        sa.Column("progress_total", sa.Integer(), nullable=False),
        sa.Column("images", sa.Integer(), nullable=True),
        sa.Column("boxes", sa.Integer(), nullable=True),
        sa.Column("archive_key", sa.String(length=300), nullable=True),
        sa.Column("size_bytes", sa.BigInteger(), nullable=True),
        sa.Column("archive_sha256", sa.String(length=64), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("created_by_id", sa.BigInteger(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "status IN ('queued', 'running', 'succeeded', 'failed')",
            name=op.f("export_job_status_check"),
        ),
        sa.CheckConstraint(
            "format IN ('coco', 'yolo', 'labelstudio', 'instructions')",
            name=op.f("export_job_format_check"),
        ),
        sa.CheckConstraint(
            "phase IS NULL OR phase IN ('snapshot', 'photos', 'archive', 'upload')",
            name=op.f("export_job_phase_check"),
        ),
        sa.CheckConstraint(
            "(format = 'instructions') = (instruction_snapshot_id IS NOT NULL) "
            "AND (instruction_snapshot_id IS NULL OR snapshot_id IS NULL)",
            name=op.f("export_job_one_source_check"),
        ),
        sa.ForeignKeyConstraint(
            ["snapshot_id"], ["dataset_snapshot.id"], name=op.f("export_job_snapshot_id_fkey")
        ),
        sa.ForeignKeyConstraint(
            ["instruction_snapshot_id"],
            ["instruction_snapshot.id"],
            name=op.f("export_job_instruction_snapshot_id_fkey"),
        ),
        sa.ForeignKeyConstraint(
            ["created_by_id"], ["user.id"], name=op.f("export_job_created_by_id_fkey")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("export_job_pkey")),
    )
    op.create_index("export_job_created_at_idx", "export_job", ["created_at"], unique=False)


def downgrade() -> None:
    """Downgrade schema."""
    op.drop_index("export_job_created_at_idx", table_name="export_job")
    op.drop_table("export_job")
