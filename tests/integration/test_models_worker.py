"""The inference task's adapter with fake inference clients: reasons, failures, arms."""

from __future__ import annotations

import uuid

import pytest

from app.db import session_scope
from app.inspections import service
from app.inspections.validation import check_image
from app.storage import get_store
from models.contracts import (
    Box,
    Classification,
    InferenceResult,
    InferenceUnavailable,
    RegionResult,
)
from tests.support import garment_photo, reset_caches
from workers.tasks.inference import infer

pytestmark = pytest.mark.integration


@pytest.fixture
def worker_env(committed_db, tmp_path, monkeypatch):
    monkeypatch.setenv("LOUPE_STORAGE_DIR", str(tmp_path / "photos"))
    monkeypatch.setenv("LOUPE_AUDIT_RATE", "0")
    monkeypatch.setenv("LOUPE_CLASSIFIER_LANGUAGE", "ko")
    reset_caches()
    yield
    reset_caches()


def submitted() -> uuid.UUID:
    image = check_image(garment_photo(), filename="p.png", max_bytes=10**7, max_pixels=10**8)
    with session_scope() as session:
        accepted = service.accept(
            session=session, store=get_store(), station="dock-3", images=[image], views=[None]
        )
        return accepted.inspection_id


def region(probability: float) -> RegionResult:
    classification = Classification(
        "hole", probability, "severe", 0.9, {"hole": probability, "normal": 1 - probability},
        candidate_type="hole", final_distribution={"hole": probability, "normal": 1 - probability},
    )  # fmt: skip
    return RegionResult(0, Box(10, 10, 80, 60), 0.99, classification)


class FakeClient:
    def __init__(self, result: InferenceResult, explain_error: Exception | None = None):
        self.result, self.explain_error = result, explain_error
        self.explained: list[dict] = []

    def infer(self, *, inspection_id: str, photos: list[bytes]) -> InferenceResult:
        return self.result

    def explain(self, **request) -> list[str]:  # type: ignore[no-untyped-def]
        self.explained.append(request)
        if self.explain_error:
            raise self.explain_error
        return [f"reason {i}" for i, _ in enumerate(request["regions"])]


def result(*regions: RegionResult, arm: str = "champion") -> InferenceResult:
    return InferenceResult(list(regions), "det-1", "cls-1", "v2+x1+t2024.1", arm=arm)


def stored(inspection_id: uuid.UUID):  # type: ignore[no-untyped-def]
    with session_scope() as session:
        return service.get(session=session, inspection_id=inspection_id)


def test_a_review_item_gets_reasons_from_the_arm_that_classified_it(worker_env):
    inspection_id = submitted()
    client = FakeClient(result(region(0.8), arm="challenger"))
    assert infer(inspection_id, client) == "review"
    [request] = client.explained
    assert (request["arm"], request["language"]) == ("challenger", "ko")
    assert request["regions"][0].defect_type == "hole" and len(request["photos"]) == 1
    inspection = stored(inspection_id)
    assert inspection.arm == "challenger"
    assert [r.reason for r in inspection.regions] == ["reason 0"]


def test_an_automatic_route_generates_no_reason(worker_env):
    inspection_id = submitted()
    client = FakeClient(result(region(0.99)))
    assert infer(inspection_id, client) == "auto_reject"
    assert client.explained == []
    assert [r.reason for r in stored(inspection_id).regions] == [""]


@pytest.mark.parametrize(
    "error", [InferenceUnavailable("explain answered 500"), RuntimeError("a bug")]
)
def test_a_failing_explain_never_blocks_routing(worker_env, error):
    inspection_id = submitted()
    assert infer(inspection_id, FakeClient(result(region(0.8)), explain_error=error)) == "review"
    inspection = stored(inspection_id)
    assert inspection.route == "review" and inspection.regions[0].reason == ""
    assert str(error) in inspection.regions[0].evidence["reason_error"]


def test_a_region_the_models_could_not_judge_sends_the_item_to_review(worker_env):
    inspection_id = submitted()
    broken = RegionResult(0, Box(1, 1, 3, 2), 0.9, Classification.failed("crop too small"))
    assert infer(inspection_id, FakeClient(result(region(0.99), broken))) == "review"
    inspection = stored(inspection_id)
    assert (inspection.route_reason, inspection.verdict) == ("model_error", None)
    assert "crop too small" in inspection.inference_error


def test_a_band_an_ml_user_applied_routes_the_next_item(worker_env, committed_db):
    """The worker reads the band in force (app.thresholds.bands), not only the settings:
    0.89 is in the review band 0.95:0.70 and a confident reject under 0.85:0.60."""
    from app.policy.thresholds import Band
    from app.thresholds import bands
    from tests.integration.review_support import make_user

    bands.forget()
    assert infer(submitted(), FakeClient(result(region(0.9)))) == "review"
    ml = make_user(committed_db, role="ml", name="band-ml")
    proposal = bands.propose(committed_db, band=Band(0.85, 0.60), note="", user_id=None)
    bands.apply(committed_db, band_id=proposal.id, user_id=ml.id)
    committed_db.commit()
    bands.forget()  # as the applying process does; other processes within BAND_TTL_S
    try:
        inspection_id = submitted()
        assert infer(inspection_id, FakeClient(result(region(0.9)))) == "auto_reject"
        # Recorded with the item, for its review and its history.
        assert (stored(inspection_id).band_high, stored(inspection_id).band_low) == (0.85, 0.60)
    finally:
        bands.forget()
