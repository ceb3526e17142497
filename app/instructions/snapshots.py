"""Instruction snapshots in the object store and their rows.

A manifest is written under its own sha256 (`instructions/<sha256>.json`) before its row,
so a rolled-back transaction leaves at most an unreferenced file, never a row that points
at nothing. Reading one back checks the bytes against the id.

/ml/instructions reads the same manifest for the page and for each crop on it: the last
few manifests read are kept in memory (cached_manifest). A snapshot never changes, and
its id is the hash of its bytes, so a kept manifest cannot go stale.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections import OrderedDict
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from app.instructions.manifest import manifest_bytes, manifest_counts, snapshot_id
from app.instructions.tables import InstructionSnapshot
from app.storage import ObjectStore

PREFIX = "instructions/"
MIN_PREFIX = 6  # characters of an id a person may type instead of all 64
# Manifests kept in memory: one a page reads, its crops read again, and the one an
# exclusion just made. Each is about 10 kB per crop.
CACHED_MANIFESTS = 4

_cache: OrderedDict[str, dict[str, Any]] = OrderedDict()
_cache_lock = threading.Lock()


class SnapshotCorrupt(RuntimeError):
    """The manifest in the object store does not hash to its snapshot's id."""


class UnknownSnapshot(LookupError):
    """No snapshot (or more than one) has the id a person gave."""


def save_snapshot(
    *, session: Session, store: ObjectStore, manifest: dict[str, Any]
) -> tuple[InstructionSnapshot, bool]:
    """The manifest to the store, then its row; (row, whether it is new). Not committed."""
    body = manifest_bytes(manifest)
    digest = snapshot_id(manifest)
    key = f"{PREFIX}{digest}.json"
    store.put(key, body, "application/json")
    counts = manifest_counts(manifest)
    created = session.execute(
        insert(InstructionSnapshot)
        .values(
            id=digest,
            manifest_key=key,
            template_version=manifest["templates"]["version"],
            prompt_version=manifest["prompts"],
            kinds=manifest["kinds"],
            languages=manifest["languages"],
            crops=counts["crops"],
            examples=counts["examples"],
            samples=counts["samples"],
            counts=counts,
            balance=manifest["balance"],
            max_decision_id=counts["max_decision_id"],
        )  # fmt: skip
        .on_conflict_do_nothing(index_elements=["id"])
        .returning(InstructionSnapshot.id)
    ).first()
    return session.get_one(InstructionSnapshot, digest), created is not None


def find_snapshot(*, session: Session, ident: str | None = None) -> InstructionSnapshot:
    """The snapshot whose id starts with `ident`, or the newest one when it is None."""
    query = select(InstructionSnapshot)
    if ident is None:
        found = session.scalars(query.order_by(InstructionSnapshot.created_at.desc()).limit(1))
        snapshot = found.first()
        if snapshot is None:
            raise UnknownSnapshot("no instruction snapshot yet: build one first")
        return snapshot
    ident = ident.strip().lower()
    if len(ident) < MIN_PREFIX or any(c not in "0123456789abcdef" for c in ident):
        raise UnknownSnapshot(f"{ident!r} is not a snapshot id (at least {MIN_PREFIX} hex digits)")
    matches = session.scalars(query.where(InstructionSnapshot.id.startswith(ident)).limit(2)).all()
    if len(matches) != 1:
        why = "no instruction snapshot" if not matches else "more than one snapshot"
        raise UnknownSnapshot(f"{why} has an id starting with {ident}")
    return matches[0]


def recent_snapshots(*, session: Session, limit: int = 20) -> list[InstructionSnapshot]:
    query = select(InstructionSnapshot).order_by(InstructionSnapshot.created_at.desc())
    return list(session.scalars(query.limit(limit)))


def load_manifest(*, store: ObjectStore, snapshot: InstructionSnapshot) -> dict[str, Any]:
    """The snapshot's manifest, checked against its id."""
    body = store.get(snapshot.manifest_key)
    if hashlib.sha256(body).hexdigest() != snapshot.id:
        raise SnapshotCorrupt(
            f"{snapshot.manifest_key} does not hash to its snapshot's id {snapshot.id}"
        )
    manifest: dict[str, Any] = json.loads(body)
    return manifest


def cached_manifest(*, store: ObjectStore, snapshot: InstructionSnapshot) -> dict[str, Any]:
    """load_manifest, kept for the next request that asks for the same snapshot. Callers
    must not change what they are given."""
    with _cache_lock:
        if snapshot.id in _cache:
            _cache.move_to_end(snapshot.id)
            return _cache[snapshot.id]
    manifest = load_manifest(store=store, snapshot=snapshot)
    with _cache_lock:
        _cache[snapshot.id] = manifest
        while len(_cache) > CACHED_MANIFESTS:
            _cache.popitem(last=False)
    return manifest
