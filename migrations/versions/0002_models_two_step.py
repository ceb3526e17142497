"""models: two-step classification, model versions and arms (issue 3)

Revision ID: a3models0001
Revises: eaeb3de233ac
Create Date: 2026-11-21 07:15:00+00:00

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "a3models0001"
down_revision: str | Sequence[str] | None = "eaeb3de233ac"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# A registered model version is what was evaluated; changing its URI, hash or metrics
# afterwards would make every result that names it a lie. The database refuses.
IMMUTABLE_FUNCTION = """
CREATE FUNCTION model_version_immutable() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'model_version % is immutable; register a new version', OLD.id;
END
$$ LANGUAGE plpgsql
"""


def upgrade() -> None:
    op.add_column("inspection", sa.Column("arm", sa.String(length=20), nullable=True))
    op.create_check_constraint(
        op.f("inspection_arm_check"),
        "inspection",
        "arm IS NULL OR arm IN ('champion', 'challenger')",
    )
    op.create_table(
        "model_version",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("version", sa.String(length=200), nullable=False),
        sa.Column("uri", sa.Text(), nullable=False),
        sa.Column("content_hash", sa.String(length=64), nullable=False),
        sa.Column("metrics", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "kind IN ('detector', 'classifier')", name=op.f("model_version_kind_check")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("model_version_pkey")),
        sa.UniqueConstraint("kind", "version", name=op.f("model_version_kind_key")),
    )
    op.execute(IMMUTABLE_FUNCTION)
    op.execute(
        "CREATE TRIGGER model_version_immutable BEFORE UPDATE ON model_version "
        "FOR EACH ROW EXECUTE FUNCTION model_version_immutable()"
    )
    op.create_table(
        "model_alias",
        sa.Column("alias", sa.String(length=20), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("model_version_id", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "alias IN ('champion', 'challenger')", name=op.f("model_alias_alias_check")
        ),
        sa.CheckConstraint(
            "kind IN ('detector', 'classifier')", name=op.f("model_alias_kind_check")
        ),
        sa.ForeignKeyConstraint(
            ["model_version_id"],
            ["model_version.id"],
            name=op.f("model_alias_model_version_id_fkey"),
        ),
        sa.PrimaryKeyConstraint("alias", "kind", name=op.f("model_alias_pkey")),
    )
    op.create_index(op.f("model_alias_model_version_id_idx"), "model_alias", ["model_version_id"])
    op.create_table(
        "experiment",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("challenger_share", sa.Float(), nullable=False),
        sa.Column("champion_detector_id", sa.BigInteger(), nullable=True),
        sa.Column("champion_classifier_id", sa.BigInteger(), nullable=False),
        sa.Column("challenger_detector_id", sa.BigInteger(), nullable=True),
        sa.Column("challenger_classifier_id", sa.BigInteger(), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "status IN ('running', 'stopped')", name=op.f("experiment_status_check")
        ),
        sa.CheckConstraint(
            "challenger_share > 0 AND challenger_share < 1",
            name=op.f("experiment_challenger_share_check"),
        ),
        *[
            sa.ForeignKeyConstraint(
                [column], ["model_version.id"], name=op.f(f"experiment_{column}_fkey")
            )
            for column in (
                "champion_detector_id",
                "champion_classifier_id",
                "challenger_detector_id",
                "challenger_classifier_id",
            )
        ],
        sa.PrimaryKeyConstraint("id", name=op.f("experiment_pkey")),
        sa.UniqueConstraint("name", name=op.f("experiment_name_key")),
    )
    op.create_index(
        "experiment_one_running_key",
        "experiment",
        ["status"],
        unique=True,
        postgresql_where=sa.text("status = 'running'"),
    )


def downgrade() -> None:
    op.drop_index("experiment_one_running_key", table_name="experiment")
    op.drop_table("experiment")
    op.drop_index(op.f("model_alias_model_version_id_idx"), table_name="model_alias")
    op.drop_table("model_alias")
    op.execute("DROP TRIGGER model_version_immutable ON model_version")
    op.execute("DROP FUNCTION model_version_immutable()")
    op.drop_table("model_version")
    op.drop_constraint(op.f("inspection_arm_check"), "inspection", type_="check")
    op.drop_column("inspection", "arm")
