"""run_inference: a thin adapter from the queue to the Serve app and the routing policy.

The policy is applied here, not in Serve: Serve answers with both classification steps
and no reasons; if the item goes to review, a second call asks the same arm for the
reasons of its regions (generation is the expensive part, and only people read them).
Everything is then recorded in one transaction.
"""

from __future__ import annotations

import logging
import uuid
from datetime import timedelta
from functools import lru_cache

from app.config import Settings, get_settings
from app.db import session_scope
from app.inspections import results
from app.storage import get_store
from models.contracts import (
    InferenceClient,
    InferenceResult,
    InferenceUnavailable,
    RegionToExplain,
)
from models.serve.client import HttpInferenceClient
from workers.celery_app import celery

log = logging.getLogger(__name__)


@lru_cache
def get_client() -> InferenceClient:
    settings = get_settings()
    return HttpInferenceClient(settings.serve_url, timeout_s=settings.inference_timeout_s)


def infer(inspection_id: uuid.UUID, client: InferenceClient) -> str:
    """One attempt: photos to the models, the result through the policy. Raises on failure."""
    settings = get_settings()
    with session_scope() as session:
        keys = results.start_inference(session=session, inspection_id=inspection_id)
    if keys is None:
        return "already routed"
    store = get_store()
    photos = [store.get(key) for key in keys]
    result = client.infer(inspection_id=str(inspection_id), photos=photos)
    reasons, explain_error = explain_for_review(client, inspection_id, result, photos, settings)
    with session_scope() as session:
        decided = results.record_result(
            session=session,
            inspection_id=inspection_id,
            result=result,
            settings=settings,
            reasons=reasons,
            explain_error=explain_error,
        )
    return decided.kind if decided else "already routed"


def explain_for_review(
    client: InferenceClient,
    inspection_id: uuid.UUID,
    result: InferenceResult,
    photos: list[bytes],
    settings: Settings,
) -> tuple[dict[int, str], str | None]:
    """Reasons for the regions of an item that goes to review: {region index: sentence}.

    A failure here never blocks routing: the item is going to an inspector anyway, who
    can judge without the sentence; the error is kept in the regions' evidence.
    """
    decided = results.decide(inspection_id=inspection_id, result=result, settings=settings)
    wanted = results.regions_to_explain(result, decided, settings)
    if not wanted:
        return {}, None
    regions = [_to_explain(result, index) for index in wanted]
    try:
        reasons = client.explain(
            inspection_id=str(inspection_id),
            arm=result.arm,
            photos=photos,
            regions=regions,
            language=settings.classifier_language,
        )
    except Exception as exc:  # InferenceUnavailable, or anything else: still route
        level = logging.WARNING if isinstance(exc, InferenceUnavailable) else logging.ERROR
        log.log(level, "reasons for %s failed: %s", inspection_id, exc, exc_info=True)
        return {}, f"{type(exc).__name__}: {exc}"[:500]
    return dict(zip(wanted, reasons, strict=True)), None


def _to_explain(result: InferenceResult, index: int) -> RegionToExplain:
    region = result.regions[index]
    c = region.classification
    return RegionToExplain(
        region.photo_index, region.box, c.defect_type, c.severity, c.candidate_type
    )


def give_up(inspection_id: uuid.UUID, error: str) -> str:
    """After the last retry the item goes to human review, never to an automatic pass."""
    with session_scope() as session:
        decided = results.record_failure(
            session=session, inspection_id=inspection_id, error=error, settings=get_settings()
        )
    return decided.kind if decided else "already routed"


@celery.task(bind=True, name="loupe.run_inference", max_retries=None)
def run_inference(self, inspection_id: str) -> str:  # type: ignore[no-untyped-def]
    settings = get_settings()
    item = uuid.UUID(inspection_id)
    try:
        return infer(item, get_client())
    except Exception as exc:
        # Every failure — the endpoint down, a timeout, a model that raised (Serve answers
        # 5xx), a malformed result, a missing photo — is retried with backoff and then
        # sent to review.
        reason = "inference_unavailable" if isinstance(exc, InferenceUnavailable) else "error"
        log.warning("inference for %s failed (%s): %s", inspection_id, reason, exc)
        if self.request.retries < settings.inference_max_retries:
            countdown = settings.inference_retry_backoff_s * 2**self.request.retries
            raise self.retry(exc=exc, countdown=countdown) from exc
        return give_up(item, f"{type(exc).__name__}: {exc}")


@celery.task(name="loupe.sweep_stuck_inspections")
def sweep_stuck_inspections() -> int:
    settings = get_settings()
    with session_scope() as session:
        return results.redispatch_stuck(
            session=session, older_than=timedelta(seconds=settings.stuck_after_s)
        )
