"""/ml/exports: the ML team downloads a snapshot as COCO, YOLO, Label Studio or
instruction JSONL.

Thin: a request queues a job (app.exports.jobs.start_job, with its outbox message) and
returns; a worker builds the archive; the jobs block polls itself while one is running;
the download streams the finished .zip from the object store.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, HTTPException, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse, StreamingResponse
from sqlalchemy.orm import Session

from app.auth.deps import MlDep, is_htmx
from app.auth.tables import User
from app.db import RowId, SessionDep, utcnow
from app.deps import StoreDep, TranslatorDep
from app.exports import jobs
from app.exports.formats import BOX_FORMATS, FORMATS
from app.exports.objects import open_chunks
from app.exports.selection import detector_snapshot, detector_snapshots
from app.exports.tables import ACTIVE_STATUSES, ExportJob
from app.i18n import Translator
from app.instructions.snapshots import recent_snapshots
from app.instructions.tables import InstructionSnapshot
from app.pages import render
from app.spec import ROLE_PAGE, SEE_OTHER, page
from app.storage import ObjectNotFound

router = APIRouter(tags=["exports"], default_response_class=HTMLResponse, responses=ROLE_PAGE)

PATH = "/ml/exports"
FLASH_KEY = "exports_flash"
MAX_JOBS = 20
MAX_SNAPSHOTS = 20
MAX_SOURCE = 64
NOW = "now"  # the source that asks the worker to snapshot the verified data first
ZIP = {"description": "The export as a .zip archive.", "content": {"application/zip": {}}}


def _page(request: Request, session: Session, user: User) -> Response:
    found = jobs.recent_jobs(session=session, limit=MAX_JOBS)
    context = {
        "user": user,
        "jobs": found,
        "active": any(job.status in ACTIVE_STATUSES for job in found),
        "stale": {job.id for job in found if jobs.is_stale(job, utcnow())},
        "names": {job.id: jobs.archive_name(job) for job in found},
    }
    if is_htmx(request):
        # The jobs block polls itself every 2 s while a job runs: it reads the jobs only.
        return render(request, "ml_exports.html", context, block="jobs")
    context |= {
        "box_formats": BOX_FORMATS,
        "snapshots": detector_snapshots(session=session, limit=MAX_SNAPSHOTS),
        "instruction_snapshots": recent_snapshots(session=session, limit=MAX_SNAPSHOTS),
        "flash": request.session.pop(FLASH_KEY, None),
    }
    return render(request, "ml_exports.html", context, block="jobs")


@router.get(PATH, name="ml_exports")
def exports_page(request: Request, session: SessionDep, user: MlDep) -> Response:
    """The exports: start one from a snapshot, follow it, download it."""
    return _page(request, session, user)


def _refuse(request: Request, message: str) -> Response:
    """400 with the reason (app.web's error page says only that the request was not valid)."""
    headers = {"HX-Refresh": "true"} if is_htmx(request) else None
    return render(request, "error.html", {"message": message}, status_code=400, headers=headers)


def _source(session: Session, fmt: str, source: str, t: Translator) -> dict[str, Any] | str:
    """The job's snapshot columns for the form's values, or why they are refused."""
    if fmt == "instructions":
        if session.get(InstructionSnapshot, source) is None:
            return t("exports.unknown_instructions", source=source)
        return {"instruction_snapshot_id": source}
    if source == NOW:
        return {"snapshot_id": None}
    digits = source.isascii() and source.isdigit()  # int("²") would raise
    snapshot_id = int(source) if digits and 0 < int(source) < 2**63 else None
    if snapshot_id is None or detector_snapshot(session=session, snapshot_id=snapshot_id) is None:
        return t("exports.unknown_snapshot", source=source)
    return {"snapshot_id": snapshot_id}


@router.post(PATH, name="ml_exports_start", **SEE_OTHER)
def start_export(
    request: Request,
    session: SessionDep,
    user: MlDep,
    t: TranslatorDep,
    fmt: Annotated[str, Form(alias="format", max_length=20)],
    source: Annotated[str, Form(max_length=MAX_SOURCE)],
    split: Annotated[bool, Form()] = False,
) -> Response:
    """Queue an export of a snapshot (or of the verified data now, snapshotted first)."""
    if fmt not in FORMATS:
        return _refuse(request, t("exports.bad_format", allowed=", ".join(FORMATS)))
    columns = _source(session, fmt, source.strip().lower(), t)
    if isinstance(columns, str):
        return _refuse(request, columns)
    started = jobs.start_job(session=session, fmt=fmt, user_id=user.id, split=split,
                             **columns)  # fmt: skip
    session.commit()
    key = "exports.started" if started.created else "exports.already_running"
    request.session[FLASH_KEY] = t(key, job=started.job.id)
    return RedirectResponse(PATH, status_code=303)


@router.get(
    PATH + "/{job_id}/download",
    name="ml_export_download",
    response_class=Response,
    responses={200: ZIP, **page(404)},
)
def download(job_id: RowId, session: SessionDep, user: MlDep, store: StoreDep) -> Response:
    """A finished export's archive, streamed from the object store."""
    job = session.get(ExportJob, job_id)
    if job is None or job.status != "succeeded" or job.archive_key is None:
        raise HTTPException(404, "no finished export with that number")
    try:
        chunks = open_chunks(store, job.archive_key)
    except ObjectNotFound as exc:
        raise HTTPException(404, "the export's archive is gone from the object store") from exc
    headers = {"Content-Disposition": f'attachment; filename="{jobs.archive_name(job)}"'}
    if job.size_bytes is not None:
        headers["Content-Length"] = str(job.size_bytes)
    return StreamingResponse(chunks, media_type="application/zip", headers=headers)
