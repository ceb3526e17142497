"""run_inference: a thin adapter from the queue to the Serve app and the routing policy.

The policy is applied here, not in Serve: Serve answers with both classification steps
and no reasons; if the item goes to review, a second call asks the same arm for the
reasons of its regions (generation is the expensive part, and only people read them).
Everything is then recorded in one transaction.

A worker holds the item's claim (app.inspections.claims) while it infers it. Messages are
acknowledged late, so a worker that dies leaves its message unacknowledged in Redis for the
broker's visibility timeout (an hour); the sweep does not wait for that: an `inferring` item
whose claim nobody holds is dispatched again within a minute or two. Whichever message comes
first routes the item; the others find it routed, or claimed, and change nothing.
"""

from __future__ import annotations

import logging
import uuid
from datetime import timedelta
from functools import lru_cache

from celery import Task
from sqlalchemy.exc import SQLAlchemyError

from app.config import Settings, get_settings
from app.db import session_scope, utcnow
from app.inspections import claims, results
from app.policy.routing import Route
from app.storage import get_store
from app.task_names import RUN_INFERENCE, SWEEP_STUCK_INSPECTIONS
from app.telemetry import metrics
from app.thresholds.bands import settings_in_force
from models.contracts import (
    InferenceClient,
    InferenceResult,
    InferenceUnavailable,
    RegionToExplain,
)
from models.serve.client import HttpInferenceClient
from workers.celery_app import celery

log = logging.getLogger(__name__)
INFERRING_ELSEWHERE = "inferring elsewhere"


@lru_cache
def get_client() -> InferenceClient:
    settings = get_settings()
    return HttpInferenceClient(settings.serve_url, timeout_s=settings.inference_timeout_s)


def infer(inspection_id: uuid.UUID, client: InferenceClient) -> str:
    """One attempt: photos to the models, the result through the policy. Raises on failure."""
    settings = settings_in_force(get_settings())  # the band an ml user applied, if any
    with session_scope() as session:
        keys = results.start_inference(session=session, inspection_id=inspection_id)
    if keys is None:
        return "already routed"
    store = get_store()
    photos = [store.get(key) for key in keys]
    result = client.infer(inspection_id=str(inspection_id), photos=photos)
    metrics.inference_timed(result.timings, result.arm)
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
    return _routed(decided)


def _routed(decided: Route | None) -> str:
    """Count and log the route an attempt recorded; "already routed" if another did."""
    if decided is None:
        return "already routed"
    metrics.routed(decided.kind, decided.reason, decided.is_audit)
    audit = ", audit" if decided.is_audit else ""
    log.info("routed %s (%s)%s", decided.kind, decided.reason, audit,
             extra={"route": decided.kind, "reason": decided.reason})  # fmt: skip
    return decided.kind


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
            session=session,
            inspection_id=inspection_id,
            error=error,
            settings=settings_in_force(get_settings()),
        )
    return _routed(decided)


def retry_countdown(settings: Settings, retries: int) -> float:
    return settings.inference_retry_backoff_s * 2**retries


class RetryLater(Exception):
    """An attempt failed and the item waits for a retry in `countdown` seconds."""

    def __init__(self, error: Exception, countdown: float):
        super().__init__(str(error))
        self.error, self.countdown = error, countdown


def attempt(inspection_id: uuid.UUID, retries: int, settings: Settings) -> str:
    """One attempt, made while holding the item's claim. Every failure — the endpoint down,
    a timeout, a model that raised (Serve answers 5xx), a malformed result, a missing photo
    — is retried with backoff and then sent to review."""
    try:
        return infer(inspection_id, get_client())
    except Exception as exc:
        reason = "inference_unavailable" if isinstance(exc, InferenceUnavailable) else "error"
        metrics.INFERENCE_FAILURES.labels(reason).inc()
        log.warning("inference for %s failed (%s): %s", inspection_id, reason, exc)
        if retries >= settings.inference_max_retries:
            return give_up(inspection_id, f"{type(exc).__name__}: {exc}")
        countdown = retry_countdown(settings, retries)
        due_at = utcnow() + timedelta(seconds=countdown)
        try:  # still under the claim, so the sweep never sees the item unclaimed and due
            with session_scope() as session:
                results.await_retry(session=session, inspection_id=inspection_id, due_at=due_at)
        except Exception:  # the database is away: the retry comes all the same
            log.warning("could not mark %s as waiting for its retry", inspection_id)
        raise RetryLater(exc, countdown) from exc


@celery.task(bind=True, name=RUN_INFERENCE, max_retries=None)
def run_inference(self: Task[[str], str], inspection_id: str, request_id: str | None = None) -> str:
    # request_id: read by workers/telemetry.py for the log lines (the relay sends it as a
    # header; a message that carries it as an argument is accepted as well).
    settings = get_settings()
    item = uuid.UUID(inspection_id)
    try:
        with claims.hold(item) as held:
            if not held:
                # A duplicate message while a live worker infers the item: that worker
                # routes it, or dies and frees the claim for the sweep.
                return INFERRING_ELSEWHERE
            return attempt(item, self.request.retries, settings)
    except RetryLater as later:
        # Queued only now that the claim is let go, so the retry never finds it still held.
        raise self.retry(exc=later.error, countdown=later.countdown) from later.error
    except SQLAlchemyError as exc:  # the claim could not be taken: the database is away
        if self.request.retries >= settings.inference_max_retries:
            raise
        countdown = retry_countdown(settings, self.request.retries)
        raise self.retry(exc=exc, countdown=countdown) from exc


@celery.task(name=SWEEP_STUCK_INSPECTIONS)
def sweep_stuck_inspections() -> dict[str, int]:
    """Items a dead worker held go back within a minute or two; items whose message was lost
    after stuck_after_s."""
    settings = get_settings()
    with session_scope() as session:
        abandoned = results.redispatch_abandoned(
            session=session, grace=timedelta(seconds=settings.inflight_grace_s)
        )
    with session_scope() as session:
        stuck = results.redispatch_stuck(
            session=session, older_than=timedelta(seconds=settings.stuck_after_s)
        )
    if abandoned:
        log.warning("dispatched again %d item(s) a dead worker held", abandoned)
    return {"abandoned": abandoned, "stuck": stuck}
