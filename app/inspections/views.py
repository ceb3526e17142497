"""The station API: thin HTTP adapters over app.inspections.service."""

from __future__ import annotations

import logging
import uuid
from typing import Annotated, Any, Literal

from fastapi import (
    APIRouter,
    File,
    Form,
    Header,
    HTTPException,
    Query,
    Request,
    Response,
    UploadFile,
)

from app.auth.deps import CallerDep, StationDep
from app.config import Settings
from app.db import SessionDep
from app.deps import SettingsDep, StoreDep
from app.inspections import listing, service
from app.inspections.schemas import Created, InspectionOut, InspectionPage
from app.inspections.validation import (
    ALLOWED_FORMATS,
    CheckedImage,
    InvalidImage,
    check_image,
)
from app.spec import API, OWN_BODY, api
from app.telemetry import metrics
from models import logs

log = logging.getLogger("loupe.inspections")
router = APIRouter(prefix="/api/v1", tags=["inspections"], responses=API)

MAX_TEXT = 200
MAX_STATION = 100  # the column's width
MAX_VIEW = 50  # the column's width
# The multipart form as the route reads it. FastAPI would derive `image` as optional (the
# route answers a missing one with its own 400, which says what to send); the spec says
# what a station must send (app.spec.OWN_BODY).
UPLOAD_FORM: dict[str, Any] = {
    "required": True,
    "content": {
        "multipart/form-data": {
            "schema": {
                "type": "object",
                "required": ["image"],
                "properties": {
                    "image": {
                        "type": "array",
                        "minItems": 1,
                        "items": {
                            "type": "string",
                            "format": "binary",
                            "contentMediaType": "application/octet-stream",
                        },
                        "description": "The garment's photos, one part each (JPEG, PNG, WebP, "
                        "BMP or TIFF). The site's limits: LOUPE_MAX_PHOTOS_PER_INSPECTION "
                        "photos (default 8), each LOUPE_MAX_UPLOAD_BYTES (default 20 MiB) "
                        "and LOUPE_MAX_IMAGE_PIXELS (default 40 MP).",
                    },
                    "view": {
                        "type": "array",
                        "items": {"type": "string", "maxLength": MAX_VIEW},
                        "description": "What each photo shows (front, back, detail, ...): "
                        "none, or one per image in the same order.",
                    },
                    "external_id": {
                        "type": "string",
                        "maxLength": MAX_TEXT,
                        "description": "The station's own id for the garment. Sent again "
                        "by the same station, it answers 200 with the inspection it made.",
                    },
                    "station": {
                        "type": "string",
                        "maxLength": MAX_STATION,
                        "description": "A camera under the token's station, recorded as "
                        "`<station>/<camera>` (at most 100 characters in all).",
                    },
                },
            },
            "encoding": {"image": {"contentType": ", ".join(ALLOWED_FORMATS.values())}},
        }
    },
}


def _text_field(name: str, value: str | None, limit: int = MAX_TEXT) -> str | None:
    value = (value or "").strip() or None
    if value is not None and len(value) > limit:
        raise HTTPException(400, f"{name} is longer than {limit} characters")
    return value


def _station(token_station: str, camera: str | None) -> str:
    recorded = service.recorded_station(token_station, camera)
    if len(recorded) > MAX_STATION:
        raise HTTPException(
            400, f"station: '{token_station}/<camera>' is longer than {MAX_STATION} characters"
        )
    return recorded


def _read_images(images: list[UploadFile], settings: Settings) -> list[CheckedImage]:
    if len(images) > settings.max_photos_per_inspection:
        raise HTTPException(
            400, f"{len(images)} images sent; at most {settings.max_photos_per_inspection} allowed"
        )
    checked = []
    for upload in images:
        # Read one byte past the limit, so an oversized file is refused without reading it all.
        data = upload.file.read(settings.max_upload_bytes + 1)
        try:
            checked.append(
                check_image(
                    data,
                    filename=upload.filename or "image",
                    max_bytes=settings.max_upload_bytes,
                    max_pixels=settings.max_image_pixels,
                )
            )
        except InvalidImage as exc:
            raise HTTPException(exc.status, str(exc)) from exc
    return checked


# A plain `def`, not `async def`: everything here blocks (reading the spooled upload,
# decoding a 12 MP photo, hashing it, writing and fsyncing it, committing), and FastAPI runs
# a sync route in its threadpool, as it already runs the session and token dependencies.
# On the event loop, every 4 MB photo held up every other request of the process for 0.1 s
# or more (bench/README.md, `review_decide.py --uploaders`). One hop to the threadpool is
# simpler than wrapping each blocking call in run_in_threadpool and missing the next one.
@router.post(
    "/inspections",
    status_code=201,
    response_model=Created,
    responses={
        200: {"model": Created, "description": "A repeat: the inspection already made from it."},
        **api(403, 413, 415),  # 403: a warehouse token, which only reads
    },
    openapi_extra={OWN_BODY: UPLOAD_FORM},
)
def create_inspection(
    request: Request,
    response: Response,
    session: SessionDep,
    station_from_token: StationDep,
    settings: SettingsDep,
    store: StoreDep,
    image: Annotated[list[UploadFile] | None, File(description="one or more photos")] = None,
    view: Annotated[
        list[str] | None, Form(description="front, back, detail; one per image")
    ] = None,
    external_id: Annotated[str | None, Form()] = None,
    station: Annotated[str | None, Form()] = None,
    idempotency_key: Annotated[
        str | None,
        Header(
            alias="Idempotency-Key",
            description="The station's key for this upload: the same key again answers 200 "
            "with the inspection it made, so a retry after a lost answer creates nothing.",
            json_schema_extra={"maxLength": MAX_TEXT},
        ),
    ] = None,
) -> Created:
    """Accept a garment's photos for inspection (201), or return the existing one (200)."""
    if not image:
        raise HTTPException(400, "no image: send the photo as a multipart file field named 'image'")
    views = [_text_field("view", v, MAX_VIEW) for v in (view or [])]
    if views and len(views) != len(image):
        raise HTTPException(400, f"{len(views)} view values for {len(image)} images; send one each")
    checked = _read_images(image, settings)
    accepted = service.accept(
        session=session,
        store=store,
        # A token belongs to one station; the form field may name a camera under it.
        station=_station(station_from_token, _text_field("station", station)),
        images=checked,
        views=views or [None] * len(checked),
        external_id=_text_field("external_id", external_id),
        idempotency_key=_text_field("Idempotency-Key", idempotency_key),
    )
    if not accepted.created:
        response.status_code = 200
    inspection_id = accepted.inspection_id
    metrics.UPLOADS.labels("created" if accepted.created else "duplicate").inc()
    logs.bind(inspection_id=str(inspection_id))
    log.info("inspection %s %s with %d photo(s)", inspection_id,
             "accepted" if accepted.created else "sent again", len(checked))  # fmt: skip
    return Created(
        id=inspection_id,
        status=accepted.status,
        status_url=str(request.url_for("get_inspection", inspection_id=inspection_id)),
    )


@router.get("/inspections", response_model=InspectionPage)
def list_inspections(
    session: SessionDep,
    caller: CallerDep,
    after: Annotated[
        str | None, Query(max_length=500, description="the `next` of the page before")
    ] = None,
    status: Annotated[
        Literal["decided", "queued", "inferring", "routed", "all"],
        Query(description="decided: in decision order; the others: in creation order"),
    ] = "decided",
    limit: Annotated[int, Query(ge=1, le=listing.MAX_LIMIT)] = listing.DEFAULT_LIMIT,
) -> InspectionPage:
    """A page of inspections for a system that polls: send `next` as `after` for the next.

    A station's token lists its own station's items; a warehouse token every station's."""
    try:
        position = listing.decode_cursor(status, after) if after else None
    except listing.BadCursor as exc:
        raise HTTPException(400, str(exc)) from exc
    found = listing.page(
        session=session,
        status=status,
        after=position,
        station=None if caller.reads_all else caller.station,
        limit=limit,
    )
    return InspectionPage(
        items=[InspectionOut.of(inspection, decision) for inspection, decision in found.items],
        next=listing.encode_cursor(status, found.next) if found.next else None,
    )


@router.get("/inspections/{inspection_id}", response_model=InspectionOut, responses=api(404))
def get_inspection(
    inspection_id: uuid.UUID, session: SessionDep, caller: CallerDep
) -> InspectionOut:
    """The state, route and regions of one inspection."""
    inspection = service.get(session=session, inspection_id=inspection_id)
    # Another station's item reads as missing: its existence is not this token's business.
    if inspection is None or not (
        caller.reads_all or service.belongs_to(inspection, caller.station)
    ):
        raise HTTPException(404, f"no inspection {inspection_id}")
    decision = service.decision_in_effect(session=session, inspection_id=inspection.id)
    return InspectionOut.of(inspection, decision)
