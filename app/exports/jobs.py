"""Export jobs: queued by /ml/exports, built by a worker, downloaded as a .zip.

The page only writes a job row and its outbox message in one transaction (a web request
never builds an archive); the worker (workers/tasks/exports.py) runs `run_job`: it takes
the snapshot the job asked for ("now" becomes a real dataset snapshot first, so every
finished job names data that can be exported again), writes the export as `loupe export`
does into a temporary directory, zips it, puts the .zip into the object store and
records its key and size. Progress goes to the row in short transactions of its own,
which the page polls.
"""

from __future__ import annotations

import hashlib
import logging
import tempfile
import time
import zipfile
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from app.config import Settings, get_settings
from app.db import session_scope, utcnow
from app.exports.dataset import ExportReport, write_export
from app.exports.objects import upload_file
from app.exports.selection import Chosen, manifest_source, snapshot_manifest
from app.exports.tables import ACTIVE_STATUSES, ExportJob
from app.instructions.snapshots import load_manifest as load_instructions
from app.instructions.tables import InstructionSnapshot
from app.learning.snapshot import take_snapshot
from app.outbox import Outbox
from app.storage import ObjectStore, get_store
from app.task_names import EXPORT_DATASET

log = logging.getLogger(__name__)

PREFIX = "exports/"
# A running job whose progress has not moved for this long lost its worker: a redelivered
# message (acks_late) may start it again. Progress moves every photo, so this is generous.
STALE_AFTER = timedelta(minutes=10)
PROGRESS_EVERY_S = 1.0
ERROR_CHARS = 2000
# Photos and crops are compressed already: stored as they are, the rest deflated.
STORED_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".gif"}


@dataclass(frozen=True)
class Started:
    job: ExportJob
    created: bool  # False: the same export was already queued or running


def start_job(
    *, session: Session, fmt: str, user_id: int | None, snapshot_id: int | None = None,
    instruction_snapshot_id: str | None = None, split: bool = False,
    now: datetime | None = None,
) -> Started:  # fmt: skip
    """Queue an export with its outbox message (not committed). The same export already
    queued or running is returned instead of a second one."""
    split = split and fmt != "instructions"
    same = session.scalars(
        select(ExportJob).where(
            ExportJob.format == fmt, ExportJob.split == split,
            ExportJob.snapshot_id.is_not_distinct_from(snapshot_id),
            ExportJob.instruction_snapshot_id.is_not_distinct_from(instruction_snapshot_id),
            ExportJob.status.in_(ACTIVE_STATUSES),
        ).limit(1)
    ).first()  # fmt: skip
    if same is not None:
        return Started(same, created=False)
    now = now or utcnow()
    job = ExportJob(format=fmt, split=split, snapshot_id=snapshot_id,
                    instruction_snapshot_id=instruction_snapshot_id, status="queued",
                    created_by_id=user_id, created_at=now, updated_at=now)  # fmt: skip
    session.add(job)
    session.flush()
    session.add(Outbox(task=EXPORT_DATASET, payload={"job_id": job.id}, created_at=now))
    return Started(job, created=True)


def recent_jobs(*, session: Session, limit: int) -> list[ExportJob]:
    query = select(ExportJob).order_by(ExportJob.id.desc()).limit(limit)
    return list(session.scalars(query))


def is_stale(job: ExportJob, now: datetime | None = None) -> bool:
    """A running job whose worker stopped reporting."""
    return job.status == "running" and job.updated_at < (now or utcnow()) - STALE_AFTER


def claim(*, session: Session, job_id: int, now: datetime | None = None) -> ExportJob | None:
    """The job, now running, if it is queued (or running but stale); None for a job that
    another delivery of the same message holds or finished."""
    now = now or utcnow()
    taken = session.execute(
        update(ExportJob)
        .where(ExportJob.id == job_id)
        .where(or_(ExportJob.status == "queued",
                   (ExportJob.status == "running") & (ExportJob.updated_at < now - STALE_AFTER)))
        .values(status="running", started_at=now, updated_at=now, progress_done=0, error=None)
        .returning(ExportJob.id)
    ).first()  # fmt: skip
    return session.get(ExportJob, job_id) if taken else None


def _set(job_id: int, **values: Any) -> None:
    """Change the job in a transaction of its own: the page sees it at once."""
    with session_scope() as session:
        session.execute(
            update(ExportJob).where(ExportJob.id == job_id).values(updated_at=utcnow(), **values)
        )


class _Progress:
    """Writes (done, total) to the job at most every PROGRESS_EVERY_S, and the last one."""

    def __init__(self, job_id: int) -> None:
        self.job_id = job_id
        self.last = 0.0

    def __call__(self, done: int, total: int) -> None:
        now = time.monotonic()
        if done == total or now - self.last >= PROGRESS_EVERY_S:
            self.last = now
            _set(self.job_id, progress_done=done, progress_total=total)


def run_job(
    job_id: int, *, settings: Settings | None = None, store: ObjectStore | None = None
) -> str:
    """Build a queued job's archive; "succeeded", "failed" or "skipped" (not queued)."""
    settings, store = settings or get_settings(), store or get_store()
    with session_scope() as session:
        if claim(session=session, job_id=job_id) is None:
            return "skipped"
    try:
        chosen, job = _choose(job_id, settings, store)
        with tempfile.TemporaryDirectory(prefix="loupe-export-") as tmp:
            _set(job_id, phase="photos")
            out = Path(tmp) / archive_name(job).removesuffix(".zip")
            report = write_export(fmt=job.format, manifest=chosen.manifest, source=chosen.source,
                                  out=out, store=store, split=job.split,
                                  progress=_Progress(job_id))  # fmt: skip
            _set(job_id, phase="archive")
            archive, size, digest = zip_folder(out)
            _set(job_id, phase="upload")
            key = f"{PREFIX}{job_id}/{archive.name}"
            upload_file(store, key, archive, "application/zip")
    except Exception as exc:
        log.exception("export job %s failed", job_id)
        _set(job_id, status="failed", phase=None, finished_at=utcnow(),
             error=f"{type(exc).__name__}: {exc}"[:ERROR_CHARS])  # fmt: skip
        return "failed"
    _set(job_id, status="succeeded", phase=None, finished_at=utcnow(), archive_key=key,
         size_bytes=size, archive_sha256=digest, **_counts(report))  # fmt: skip
    return "succeeded"


def _counts(report: ExportReport) -> dict[str, int]:
    return {"images": report.images, "boxes": report.boxes or report.examples}


def _choose(job_id: int, settings: Settings, store: ObjectStore) -> tuple[Chosen, ExportJob]:
    """The job's data; "the verified data now" becomes a dataset snapshot first."""
    with session_scope() as session:
        job = session.get_one(ExportJob, job_id)
        if job.instruction_snapshot_id is not None:
            row = session.get_one(InstructionSnapshot, job.instruction_snapshot_id)
            manifest = load_instructions(store=store, snapshot=row)
            return Chosen(manifest, {"kind": "instruction_snapshot", "snapshot": row.id}), job
        if job.snapshot_id is None:
            job.phase, job.updated_at = "snapshot", utcnow()
            session.commit()  # the page says so while the snapshot is taken
            snapshot, manifest = take_snapshot(session=session, store=store,
                                               val_share=settings.retrain_val_share)  # fmt: skip
            job.snapshot_id = snapshot.id
            return Chosen(manifest, manifest_source(snapshot, None)), job
        found, manifest = snapshot_manifest(session=session, store=store,
                                            snapshot_id=job.snapshot_id)  # fmt: skip
        return Chosen(manifest, manifest_source(found, None)), job


def archive_name(job: ExportJob) -> str:
    """The download's file name: what it holds, readable in a downloads folder."""
    if job.instruction_snapshot_id is not None:
        return f"loupe-instructions-{job.instruction_snapshot_id[:12]}.zip"
    split = "-split" if job.split else ""
    return f"loupe-{job.format}-snapshot-{job.snapshot_id}{split}.zip"


def zip_folder(folder: Path) -> tuple[Path, int, str]:
    """folder.zip beside the folder, everything under one top folder of the same name;
    (path, size, sha256). Files are streamed in, one at a time."""
    archive = folder.with_name(folder.name + ".zip")
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED, allowZip64=True) as zf:
        for path in sorted(p for p in folder.rglob("*") if p.is_file()):
            stored = path.suffix.lower() in STORED_SUFFIXES
            method = zipfile.ZIP_STORED if stored else zipfile.ZIP_DEFLATED
            zf.write(path, f"{folder.name}/{path.relative_to(folder).as_posix()}", method)
    digest = hashlib.sha256()
    with archive.open("rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return archive, archive.stat().st_size, digest.hexdigest()
