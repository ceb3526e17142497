"""review queue: region edits, tags, undo, key bindings (issue 4)

Revision ID: a4review0001
Revises: a3models0001
Create Date: 2026-11-21 07:15:00+00:00

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "a4review0001"
down_revision: str | Sequence[str] | None = "a3models0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OPEN = sa.text("decided_at IS NULL")


def upgrade() -> None:
    """Upgrade schema."""
    _user_preferences()
    _audit_event()
    _decision_ground_truth()
    _review_task_priority()


def _user_preferences() -> None:
    op.add_column(
        "user",
        sa.Column(
            "key_bindings",
            postgresql.JSONB(astext_type=sa.Text()),
            nullable=False,
            server_default=sa.text("'{}'::jsonb"),
        ),
    )
    op.add_column(
        "user",
        sa.Column("keyboard_layout", sa.String(length=10), nullable=False, server_default="qwerty"),
    )
    op.create_check_constraint(
        op.f("user_keyboard_layout_check"),
        "user",
        "keyboard_layout IN ('qwerty', 'azerty', 'qwertz')",
    )


def _audit_event() -> None:
    op.create_table(
        "audit_event",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("actor_id", sa.BigInteger(), nullable=True),
        sa.Column("action", sa.String(length=50), nullable=False),
        sa.Column("subject", sa.String(length=200), nullable=False),
        sa.Column("details", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["actor_id"], ["user.id"], name=op.f("audit_event_actor_id_fkey")),
        sa.PrimaryKeyConstraint("id", name=op.f("audit_event_pkey")),
    )
    op.create_index(op.f("audit_event_created_at_idx"), "audit_event", ["created_at"])


def _decision_ground_truth() -> None:
    op.add_column(
        "decision",
        sa.Column(
            "tags",
            postgresql.ARRAY(sa.String(length=50)),
            nullable=False,
            server_default=sa.text("'{}'"),
        ),
    )
    op.add_column("decision", sa.Column("supersedes_id", sa.BigInteger(), nullable=True))
    op.add_column("decision", sa.Column("model_verdict", sa.String(length=10), nullable=True))
    op.add_column(
        "decision",
        sa.Column("is_audit", sa.Boolean(), nullable=False, server_default=sa.false()),
    )
    op.add_column("decision", sa.Column("detector_version", sa.String(length=200)))
    op.add_column("decision", sa.Column("classifier_version", sa.String(length=200)))
    op.add_column("decision", sa.Column("prompt_version", sa.String(length=50)))
    # Decisions made before this revision: copy what the inspection knows.
    op.execute(
        "UPDATE decision d SET is_audit = i.is_audit, detector_version = i.detector_version, "
        "classifier_version = i.classifier_version, prompt_version = i.prompt_version "
        "FROM inspection i WHERE i.id = d.inspection_id"
    )
    op.create_foreign_key(
        op.f("decision_supersedes_id_fkey"), "decision", "decision", ["supersedes_id"], ["id"]
    )
    op.create_check_constraint(
        op.f("decision_model_verdict_check"),
        "decision",
        "model_verdict IS NULL OR model_verdict IN ('pass', 'reject')",
    )
    op.create_index("decision_user_id_created_at_idx", "decision", ["user_id", "created_at"])
    op.create_index("decision_created_at_idx", "decision", ["created_at"])
    _decision_region()
    _decision_undo()


def _decision_region() -> None:
    op.create_table(
        "decision_region",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("decision_id", sa.BigInteger(), nullable=False),
        sa.Column("region_id", sa.BigInteger(), nullable=True),
        sa.Column("photo_id", sa.BigInteger(), nullable=False),
        sa.Column("x1", sa.Float(), nullable=False),
        sa.Column("y1", sa.Float(), nullable=False),
        sa.Column("x2", sa.Float(), nullable=False),
        sa.Column("y2", sa.Float(), nullable=False),
        sa.Column("defect_type", sa.String(length=50), nullable=False),
        sa.Column("severity", sa.String(length=20), nullable=True),
        sa.Column("outcome", sa.String(length=20), nullable=False),
        sa.CheckConstraint(
            "outcome IN ('confirmed', 'changed', 'not_defect', 'added')",
            name=op.f("decision_region_outcome_check"),
        ),
        sa.CheckConstraint(
            "(outcome = 'added') = (region_id IS NULL)",
            name=op.f("decision_region_region_for_outcome_check"),
        ),
        sa.CheckConstraint("x1 < x2 AND y1 < y2", name=op.f("decision_region_box_check")),
        sa.ForeignKeyConstraint(
            ["decision_id"], ["decision.id"], name=op.f("decision_region_decision_id_fkey")
        ),
        sa.ForeignKeyConstraint(
            ["photo_id"], ["photo.id"], name=op.f("decision_region_photo_id_fkey")
        ),
        sa.ForeignKeyConstraint(
            ["region_id"], ["region.id"], name=op.f("decision_region_region_id_fkey")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("decision_region_pkey")),
    )
    op.create_index(op.f("decision_region_decision_id_idx"), "decision_region", ["decision_id"])
    op.create_index(op.f("decision_region_region_id_idx"), "decision_region", ["region_id"])


def _decision_undo() -> None:
    op.create_table(
        "decision_undo",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("decision_id", sa.BigInteger(), nullable=False),
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["decision_id"], ["decision.id"], name=op.f("decision_undo_decision_id_fkey")
        ),
        sa.ForeignKeyConstraint(["user_id"], ["user.id"], name=op.f("decision_undo_user_id_fkey")),
        sa.PrimaryKeyConstraint("id", name=op.f("decision_undo_pkey")),
        sa.UniqueConstraint("decision_id", name=op.f("decision_undo_decision_id_key")),
    )


def _review_task_priority() -> None:
    op.add_column("review_task", sa.Column("priority_key", sa.BigInteger(), nullable=True))
    op.add_column("review_task", sa.Column("claimed_at", sa.DateTime(timezone=True)))
    op.add_column("review_task", sa.Column("decision_id", sa.BigInteger(), nullable=True))
    # Existing tasks: the key app.review.priority computes (100 aging points per SLA, the
    # SLA they were created with), and the decision in effect (the latest one).
    op.execute(
        "UPDATE review_task SET priority_key = round(confidence * 100)::bigint + floor("
        "extract(epoch FROM created_at) * 100 / "
        "greatest(extract(epoch FROM due_at - created_at), 1))::bigint"
    )
    op.execute(
        "UPDATE review_task t SET decision_id = (SELECT max(d.id) FROM decision d "
        "WHERE d.review_task_id = t.id) WHERE t.decided_at IS NOT NULL"
    )
    op.alter_column("review_task", "priority_key", nullable=False)
    op.create_foreign_key(
        op.f("review_task_decision_id_fkey"), "review_task", "decision", ["decision_id"], ["id"]
    )
    op.drop_index("review_task_open_idx", table_name="review_task", postgresql_where=OPEN)
    op.create_index(
        "review_task_open_idx",
        "review_task",
        ["priority_key", sa.literal_column("severity_rank DESC"), "created_at"],
        postgresql_where=OPEN,
    )
    op.create_index("review_task_due_idx", "review_task", ["due_at"], postgresql_where=OPEN)


def downgrade() -> None:
    """Downgrade schema (region answers, undos, tags and the audit log are lost)."""
    op.drop_index("review_task_due_idx", table_name="review_task", postgresql_where=OPEN)
    op.drop_index("review_task_open_idx", table_name="review_task", postgresql_where=OPEN)
    op.create_index(
        "review_task_open_idx",
        "review_task",
        ["confidence", sa.literal_column("severity_rank DESC"), "created_at"],
        postgresql_where=OPEN,
    )
    op.drop_constraint(op.f("review_task_decision_id_fkey"), "review_task", type_="foreignkey")
    for column in ("decision_id", "claimed_at", "priority_key"):
        op.drop_column("review_task", column)
    op.drop_table("decision_undo")
    op.drop_index(op.f("decision_region_region_id_idx"), table_name="decision_region")
    op.drop_index(op.f("decision_region_decision_id_idx"), table_name="decision_region")
    op.drop_table("decision_region")
    op.drop_index("decision_created_at_idx", table_name="decision")
    op.drop_index("decision_user_id_created_at_idx", table_name="decision")
    op.drop_constraint(op.f("decision_model_verdict_check"), "decision", type_="check")
    op.drop_constraint(op.f("decision_supersedes_id_fkey"), "decision", type_="foreignkey")
    for column in (
        "prompt_version",
        "classifier_version",
        "detector_version",
        "is_audit",
        "model_verdict",
        "supersedes_id",
        "tags",
    ):
        op.drop_column("decision", column)
    op.drop_index(op.f("audit_event_created_at_idx"), table_name="audit_event")
    op.drop_table("audit_event")
    op.drop_constraint(op.f("user_keyboard_layout_check"), "user", type_="check")
    op.drop_column("user", "keyboard_layout")
    op.drop_column("user", "key_bindings")
