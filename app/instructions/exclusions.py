"""Taking examples out of an instruction snapshot: a new snapshot, and who did it and why.

Snapshots never change, so excluding examples stores the manifest less those examples as
a snapshot of its own (app.instructions.manifest.without_examples). Its id is its content
hash: the same examples taken out of the same snapshot give the same snapshot again.
Each exclusion is recorded (instruction_exclusion, and the site's audit log), and every
later build reads the recorded ids and leaves them out too (app.instructions.service), so
a bad example does not come back with the next build.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.auth.tables import AuditEvent, User
from app.instructions.manifest import without_examples
from app.instructions.snapshots import save_snapshot
from app.instructions.tables import InstructionExclusion, InstructionSnapshot
from app.storage import ObjectStore

MAX_REASON = 500


class BadReason(ValueError):
    """The reason is missing or too long; `code` says which ("missing" or "too_long")."""

    def __init__(self, code: str) -> None:
        super().__init__(f"the reason is {code.replace('_', ' ')} (at most {MAX_REASON} chars)")
        self.code = code


class NotInSnapshot(LookupError):
    """An example id the snapshot does not hold."""


class NothingLeft(ValueError):
    """Excluding these examples would leave the snapshot without any."""


@dataclass(frozen=True)
class Exclusion:
    snapshot: InstructionSnapshot  # the snapshot without the examples
    created: bool  # False: the same examples were taken out of the same snapshot before
    removed: list[str]


@dataclass(frozen=True)
class Made:
    """One exclusion that made a snapshot, as the page shows it."""

    source_id: str
    examples: int
    reason: str
    actor: str | None
    created_at: datetime


def clean_reason(text: str) -> str:
    """The reason as stored: one line, trimmed; BadReason when empty or too long."""
    reason = " ".join(text.split())
    if not reason:
        raise BadReason("missing")
    if len(reason) > MAX_REASON:
        raise BadReason("too_long")
    return reason


def exclude_examples(
    *,
    session: Session,
    store: ObjectStore,
    source: InstructionSnapshot,
    manifest: dict[str, Any],
    example_ids: Collection[str],
    reason: str,
    actor_id: int | None,
) -> Exclusion:
    """Store `manifest` (the source snapshot's) less these examples, and record who took
    them out and why. Not committed."""
    wanted = sorted(set(example_ids))
    held = {example["id"] for example in manifest["examples"]}
    if not wanted or any(i not in held for i in wanted):
        raise NotInSnapshot(f"snapshot {source.id[:12]} holds no example {wanted!r}")
    reason = clean_reason(reason)
    smaller = without_examples(manifest, wanted)
    if not smaller["examples"]:
        raise NothingLeft(f"excluding {len(wanted)} examples would leave no example")
    snapshot, created = save_snapshot(session=session, store=store, manifest=smaller)
    session.add(
        InstructionExclusion(source_id=source.id, result_id=snapshot.id, example_ids=wanted,
                             reason=reason, actor_id=actor_id)
    )  # fmt: skip
    details = {"result": snapshot.id, "examples": wanted, "reason": reason}
    subject = f"instruction_snapshot:{source.id}"
    session.add(AuditEvent(actor_id=actor_id, action="instructions.exclude", subject=subject,
                           details=details))  # fmt: skip
    session.flush()
    return Exclusion(snapshot, created, wanted)


def excluded_example_ids(*, session: Session) -> frozenset[str]:
    """Every example id ever excluded: what a build leaves out."""
    return frozenset(i for ids in session.scalars(select(InstructionExclusion.example_ids))
                     for i in ids)  # fmt: skip


def exclusions_making(*, session: Session, snapshot_ids: Sequence[str]) -> dict[str, list[Made]]:
    """The exclusions that made each of these snapshots, oldest first."""
    query = (
        select(InstructionExclusion, User.username)
        .outerjoin(User, User.id == InstructionExclusion.actor_id)
        .where(InstructionExclusion.result_id.in_(snapshot_ids))
        .order_by(InstructionExclusion.id)
    )
    made: dict[str, list[Made]] = {}
    for row, username in session.execute(query):
        made.setdefault(row.result_id, []).append(
            Made(row.source_id, len(row.example_ids), row.reason, username, row.created_at)
        )
    return made
