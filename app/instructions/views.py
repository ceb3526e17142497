"""/ml/instructions: the ML team reads the instruction snapshots, sample by sample with
their crops, and excludes a bad sample (which makes a new snapshot; snapshots never change).

Thin: the filters and pages are app.instructions.browse, the exclusion is
app.instructions.exclusions, the crop is cut by app.instructions.export's code.
"""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Form, HTTPException, Path, Query, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from sqlalchemy.orm import Session

from app.auth.deps import MlDep, is_htmx
from app.auth.tables import User
from app.db import RowId, SessionDep
from app.deps import LanguageDep, StoreDep, TranslatorDep
from app.i18n import Translator
from app.i18n import label as label_in
from app.instructions import browse, exclusions
from app.instructions.export import crop_png
from app.instructions.kinds import KINDS
from app.instructions.snapshots import (
    UnknownSnapshot,
    cached_manifest,
    find_snapshot,
    recent_snapshots,
)
from app.instructions.tables import InstructionSnapshot
from app.learning.photos import PhotoChanged
from app.pages import render, stored_image
from app.spec import ROLE_PAGE, SEE_OTHER, page
from app.storage import ObjectNotFound, ObjectStore
from models.taxonomy import load_taxonomy

router = APIRouter(tags=["instructions"], default_response_class=HTMLResponse, responses=ROLE_PAGE)

PATH = "/ml/instructions"
FLASH_KEY = "instructions_flash"
MAX_SNAPSHOTS = 20
MAX_ID = 64
MAX_EXAMPLE_ID = 200
MAX_PAGE = 1_000_000
CROP = {
    "description": "The crop as PNG, cut from its photo as the export cuts it.",
    "content": {"image/png": {}},
}


def _snapshot(session: Session, ident: str) -> InstructionSnapshot:
    """The snapshot whose id starts with `ident`; 404 if there is no such one."""
    try:
        return find_snapshot(session=session, ident=ident)
    except UnknownSnapshot as exc:
        raise HTTPException(404, str(exc)) from exc


def _newest(session: Session) -> InstructionSnapshot | None:
    try:
        return find_snapshot(session=session)
    except UnknownSnapshot:
        return None  # none built yet: the page says how to build one


def _manifest(store: ObjectStore, snapshot: InstructionSnapshot) -> dict[str, Any]:
    try:
        return cached_manifest(store=store, snapshot=snapshot)
    except ObjectNotFound as exc:
        raise HTTPException(404, f"the manifest of snapshot {snapshot.id} is gone") from exc


def _filters(
    snapshot: InstructionSnapshot | None, kind: str | None, defect_type: str | None,
    language: str | None,
) -> browse.Filters:  # fmt: skip
    """The filters asked for; browse.BadFilter for a value the page does not know."""
    types = {*load_taxonomy().type_keys, *(snapshot.counts["by_type"] if snapshot else ())}
    return browse.parse_filters(kind, defect_type, language, types=sorted(types))


def _bad_filter(request: Request, t: Translator, exc: browse.BadFilter) -> Response:
    """400, saying which filter and what it may be (app.web's error page says only that the
    request was not valid)."""
    message = t("instructions.bad_filter", field=exc.field, value=exc.value,
                allowed=", ".join(exc.allowed))  # fmt: skip
    # As app.web's error pages: htmx does not swap an error, so it reloads the page.
    headers = {"HX-Refresh": "true"} if is_htmx(request) else None
    return render(request, "error.html", {"message": message}, status_code=400, headers=headers)


def _page(
    request: Request, session: Session, store: ObjectStore, user: User, lang: str,
    t: Translator, snapshot: InstructionSnapshot | None, filters: browse.Filters, number: int,
    *, error: dict[str, str] | None = None, status_code: int = 200,
) -> Response:  # fmt: skip
    snapshots = recent_snapshots(session=session, limit=MAX_SNAPSHOTS)
    if snapshot is not None and snapshot.id not in {s.id for s in snapshots}:
        snapshots.append(snapshot)  # an old one asked for by its id
    context: dict[str, Any] = {
        "user": user,
        "snapshots": snapshots,
        "chosen": snapshot,
        "filters": filters,
        "kinds": KINDS,
        "error": error,
        "flash": None if is_htmx(request) else request.session.pop(FLASH_KEY, None),
        "made": exclusions.exclusions_making(
            session=session, snapshot_ids=[s.id for s in snapshots]
        ),
        "max_reason": exclusions.MAX_REASON,
    }
    if snapshot is not None:
        manifest = _manifest(store, snapshot)
        shown = browse.page_of(manifest, filters, number)

        def link(**changes: object) -> str:
            query = {"snapshot": snapshot.id, **filters.query(), "page": shown.number, **changes}
            return f"{PATH}?{urlencode(query)}"

        context |= {
            "page": shown,
            "link": link,
            "excluded": len(manifest.get("excluded", ())),
            # The snapshot's types, and the one asked for even where it has none of it.
            "type_options": sorted({*snapshot.counts["by_type"], filters.defect_type} - {""}),
            "balance": browse.balance_report(
                snapshot.balance, t, lambda key: label_in(lang, "defect", key)
            ),
        }
    return render(request, "ml_instructions.html", context, block="examples",
                  status_code=status_code)  # fmt: skip


@router.get(PATH, name="ml_instructions", responses=page(404))
def instructions_page(
    request: Request,
    session: SessionDep,
    user: MlDep,
    store: StoreDep,
    lang: LanguageDep,
    t: TranslatorDep,
    snapshot: str | None = Query(None, max_length=MAX_ID),
    kind: str | None = Query(None, max_length=browse.MAX_FILTER),
    defect_type: str | None = Query(None, alias="type", max_length=browse.MAX_FILTER),
    language: str | None = Query(None, max_length=browse.MAX_FILTER),
    page_number: int = Query(1, alias="page", ge=1, le=MAX_PAGE),
) -> Response:
    """The snapshots, newest first, and a page of the chosen one's examples (default: the
    newest snapshot); HTMX gets the examples block alone."""
    chosen = _snapshot(session, snapshot) if snapshot else _newest(session)
    try:
        filters = _filters(chosen, kind, defect_type, language)
    except browse.BadFilter as exc:
        return _bad_filter(request, t, exc)
    return _page(request, session, store, user, lang, t, chosen, filters, page_number)


@router.get(
    PATH + "/{snapshot_id}/crops/{crop_id}",
    name="ml_instruction_crop",
    response_class=Response,
    responses={200: CROP, **page(404)},
)
def crop(
    snapshot_id: Annotated[str, Path(max_length=MAX_ID)],
    crop_id: RowId,
    session: SessionDep,
    user: MlDep,
    store: StoreDep,
) -> Response:
    """One crop of a snapshot, cut from its stored photo."""
    manifest = _manifest(store, _snapshot(session, snapshot_id))
    found = next((c for c in manifest["crops"] if c["id"] == crop_id), None)
    if found is None:
        raise HTTPException(404, f"snapshot {snapshot_id[:12]} has no crop {crop_id}")
    try:
        data = crop_png(manifest, found, store)
    except (ObjectNotFound, PhotoChanged) as exc:
        raise HTTPException(404, f"crop {crop_id}'s photo is gone or changed") from exc
    return stored_image(data, "image/png")


@router.post(PATH + "/exclude", name="ml_instructions_exclude", **SEE_OTHER, responses=page(404))
def exclude(
    request: Request,
    session: SessionDep,
    user: MlDep,
    store: StoreDep,
    lang: LanguageDep,
    t: TranslatorDep,
    snapshot: Annotated[str, Form(max_length=MAX_ID)],
    example: Annotated[str, Form(max_length=MAX_EXAMPLE_ID)],
    reason: Annotated[str, Form()] = "",
    whole_crop: Annotated[bool, Form()] = False,
    kind: Annotated[str, Form(max_length=browse.MAX_FILTER)] = "",
    defect_type: Annotated[str, Form(alias="type", max_length=browse.MAX_FILTER)] = "",
    language: Annotated[str, Form(max_length=browse.MAX_FILTER)] = "",
    page_number: Annotated[int, Form(alias="page", ge=1, le=MAX_PAGE)] = 1,
) -> Response:
    """Take an example (or every example of its crop) out of a snapshot, saying why: a new
    snapshot without it, which the page then shows."""
    source = _snapshot(session, snapshot)
    try:
        filters = _filters(source, kind, defect_type, language)
    except browse.BadFilter as exc:
        return _bad_filter(request, t, exc)
    manifest = _manifest(store, source)
    ids = [example]
    if whole_crop:
        crop_of = {e["id"]: e["crop"] for e in manifest["examples"]}
        ids = [e["id"] for e in manifest["examples"] if e["crop"] == crop_of.get(example)] or ids
    try:
        made = exclusions.exclude_examples(session=session, store=store, source=source,
                                           manifest=manifest, example_ids=ids, reason=reason,
                                           actor_id=user.id)  # fmt: skip
    except exclusions.NotInSnapshot as exc:
        session.rollback()
        raise HTTPException(404, str(exc)) from exc
    except (exclusions.BadReason, exclusions.NothingLeft) as exc:
        session.rollback()
        code = exc.code if isinstance(exc, exclusions.BadReason) else "nothing_left"
        message = t(f"instructions.exclude_refused.{code}", max=exclusions.MAX_REASON)
        error = {"example": example, "message": message, "reason": reason}
        return _page(request, session, store, user, lang, t, source, filters, page_number,
                     error=error, status_code=400)  # fmt: skip
    session.commit()
    key = "instructions.excluded" if made.created else "instructions.excluded_again"
    request.session[FLASH_KEY] = t(key, n=len(made.removed), snapshot=made.snapshot.id[:12])
    query = {"snapshot": made.snapshot.id, **filters.query(), "page": page_number}
    return RedirectResponse(f"{PATH}?{urlencode(query)}", status_code=303)
