"""learning loop: trigger checks, dataset snapshots, the frozen test set, training runs (issue 6)

Revision ID: a6learning01
Revises: a5feedback01
Create Date: 2026-11-21 14:00:00+00:00

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "a6learning01"
down_revision: str | Sequence[str] | None = "a5feedback01"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# A snapshot is what a model was trained and judged on; rewriting its counts or its
# manifest's address afterwards would make every run that names it a lie.
IMMUTABLE_FUNCTION = """
CREATE FUNCTION dataset_snapshot_immutable() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'dataset_snapshot % is immutable; take a new snapshot', OLD.id;
END
$$ LANGUAGE plpgsql
"""
# The registry refuses to alias a version that failed its gate (app.registry.service);
# the database refuses it too, for writers that skip the service.
GATE_FUNCTION = """
CREATE FUNCTION model_alias_gate_passed() RETURNS trigger AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM model_version
               WHERE id = NEW.model_version_id AND gate->>'passed' = 'false') THEN
        RAISE EXCEPTION 'model_version % failed its evaluation gate and may not serve',
            NEW.model_version_id;
    END IF;
    RETURN NEW;
END
$$ LANGUAGE plpgsql
"""


def _jsonb() -> postgresql.JSONB:
    return postgresql.JSONB(astext_type=sa.Text())


def upgrade() -> None:
    """Upgrade schema."""
    _dataset_snapshot()
    _test_set()
    _training_run()
    _trigger_check()
    _model_version_lineage()


def _dataset_snapshot() -> None:
    op.create_table(
        "dataset_snapshot",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("manifest_key", sa.String(length=300), nullable=False),
        sa.Column("manifest_sha256", sa.String(length=64), nullable=False),
        sa.Column("samples", sa.Integer(), nullable=False),
        sa.Column("inspections", sa.Integer(), nullable=False),
        sa.Column("split_counts", _jsonb(), nullable=False),
        sa.Column("class_counts", _jsonb(), nullable=False),
        sa.Column("val_share", sa.Float(), nullable=False),
        sa.Column("max_decision_id", sa.BigInteger(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("dataset_snapshot_pkey")),
        sa.UniqueConstraint("manifest_sha256", name=op.f("dataset_snapshot_manifest_sha256_key")),
    )
    op.execute(IMMUTABLE_FUNCTION)
    op.execute(
        "CREATE TRIGGER dataset_snapshot_immutable BEFORE UPDATE ON dataset_snapshot "
        "FOR EACH ROW EXECUTE FUNCTION dataset_snapshot_immutable()"
    )


def _test_set() -> None:
    op.create_table(
        "test_set_item",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("inspection_id", sa.Uuid(), nullable=False),
        sa.Column("added_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("added_by_id", sa.BigInteger(), nullable=True),
        sa.ForeignKeyConstraint(
            ["inspection_id"], ["inspection.id"], name=op.f("test_set_item_inspection_id_fkey")
        ),
        sa.ForeignKeyConstraint(
            ["added_by_id"], ["user.id"], name=op.f("test_set_item_added_by_id_fkey")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("test_set_item_pkey")),
        sa.UniqueConstraint("inspection_id", name=op.f("test_set_item_inspection_id_key")),
    )
    op.create_table(
        "trained_item",
        sa.Column("inspection_id", sa.Uuid(), nullable=False),
        sa.Column("snapshot_id", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["inspection_id"], ["inspection.id"], name=op.f("trained_item_inspection_id_fkey")
        ),
        sa.ForeignKeyConstraint(
            ["snapshot_id"], ["dataset_snapshot.id"], name=op.f("trained_item_snapshot_id_fkey")
        ),
        sa.PrimaryKeyConstraint("inspection_id", name=op.f("trained_item_pkey")),
    )
    op.create_index(op.f("trained_item_snapshot_id_idx"), "trained_item", ["snapshot_id"])


def _training_run() -> None:
    op.create_table(
        "training_run",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("trigger", sa.String(length=10), nullable=False),
        sa.Column("triggered_by_id", sa.BigInteger(), nullable=True),
        sa.Column("snapshot_id", sa.BigInteger(), nullable=True),
        sa.Column("epoch", sa.Float(), nullable=True),
        sa.Column("step", sa.Integer(), nullable=False),
        sa.Column("total_steps", sa.Integer(), nullable=True),
        sa.Column("loss", sa.Float(), nullable=True),
        sa.Column("eta_s", sa.Float(), nullable=True),
        sa.Column("phase", sa.String(length=30), nullable=False),
        sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("refusal_reasons", _jsonb(), nullable=False),
        sa.Column("metrics", _jsonb(), nullable=False),
        sa.Column("gate", _jsonb(), nullable=True),
        sa.Column("model_version_id", sa.BigInteger(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "status IN ('queued', 'running', 'succeeded', 'failed', 'refused')",
            name=op.f("training_run_status_check"),
        ),
        sa.CheckConstraint(
            "trigger IN ('beat', 'cli', 'page')", name=op.f("training_run_trigger_check")
        ),
        sa.ForeignKeyConstraint(
            ["triggered_by_id"], ["user.id"], name=op.f("training_run_triggered_by_id_fkey")
        ),
        sa.ForeignKeyConstraint(
            ["snapshot_id"], ["dataset_snapshot.id"], name=op.f("training_run_snapshot_id_fkey")
        ),
        sa.ForeignKeyConstraint(
            ["model_version_id"],
            ["model_version.id"],
            name=op.f("training_run_model_version_id_fkey"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("training_run_pkey")),
    )
    # At most one run queued or running, whoever writes the row.
    op.create_index(
        "training_run_one_active_key",
        "training_run",
        [sa.text("(true)")],
        unique=True,
        postgresql_where=sa.text("status IN ('queued', 'running')"),
    )
    op.create_index("training_run_created_at_idx", "training_run", ["created_at"])


def _trigger_check() -> None:
    op.create_table(
        "trigger_check",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("checked_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("new_verified_samples", sa.Integer(), nullable=False),
        sa.Column("reviewed", sa.Integer(), nullable=False),
        sa.Column("disagreements", sa.Integer(), nullable=False),
        sa.Column("window_days", sa.Float(), nullable=False),
        sa.Column("class_precision", _jsonb(), nullable=False),
        sa.Column("class_support", _jsonb(), nullable=False),
        sa.Column("fired", sa.Boolean(), nullable=False),
        sa.Column("reasons", _jsonb(), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("training_run_id", sa.BigInteger(), nullable=True),
        sa.ForeignKeyConstraint(
            ["training_run_id"],
            ["training_run.id"],
            name=op.f("trigger_check_training_run_id_fkey"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("trigger_check_pkey")),
    )
    op.create_index("trigger_check_checked_at_idx", "trigger_check", ["checked_at"])


def _model_version_lineage() -> None:
    op.add_column("model_version", sa.Column("training_run_id", sa.BigInteger(), nullable=True))
    op.add_column("model_version", sa.Column("snapshot_id", sa.BigInteger(), nullable=True))
    op.add_column("model_version", sa.Column("gate", _jsonb(), nullable=True))
    op.add_column("model_version", sa.Column("prompt_version", sa.String(length=50)))
    op.create_foreign_key(
        op.f("model_version_training_run_id_fkey"),
        "model_version",
        "training_run",
        ["training_run_id"],
        ["id"],
    )
    op.create_foreign_key(
        op.f("model_version_snapshot_id_fkey"),
        "model_version",
        "dataset_snapshot",
        ["snapshot_id"],
        ["id"],
    )
    op.execute(GATE_FUNCTION)
    op.execute(
        "CREATE TRIGGER model_alias_gate_passed BEFORE INSERT OR UPDATE ON model_alias "
        "FOR EACH ROW EXECUTE FUNCTION model_alias_gate_passed()"
    )


def downgrade() -> None:
    """Downgrade schema."""
    op.execute("DROP TRIGGER model_alias_gate_passed ON model_alias")
    op.execute("DROP FUNCTION model_alias_gate_passed()")
    op.drop_constraint(op.f("model_version_snapshot_id_fkey"), "model_version", type_="foreignkey")
    op.drop_constraint(
        op.f("model_version_training_run_id_fkey"), "model_version", type_="foreignkey"
    )
    for column in ("prompt_version", "gate", "snapshot_id", "training_run_id"):
        op.drop_column("model_version", column)
    op.drop_index("trigger_check_checked_at_idx", table_name="trigger_check")
    op.drop_table("trigger_check")
    op.drop_index("training_run_created_at_idx", table_name="training_run")
    op.drop_index("training_run_one_active_key", table_name="training_run")
    op.drop_table("training_run")
    op.drop_index(op.f("trained_item_snapshot_id_idx"), table_name="trained_item")
    op.drop_table("trained_item")
    op.drop_table("test_set_item")
    op.execute("DROP TRIGGER dataset_snapshot_immutable ON dataset_snapshot")
    op.execute("DROP FUNCTION dataset_snapshot_immutable()")
    op.drop_table("dataset_snapshot")
