"""The Ray Serve application "inspection": Detector -> crops -> Classifier, behind one ingress.

Each model deployment batches requests with `@serve.batch`; the batch size, wait time
and even the model directory live in `user_config`, so `reconfigure()` can change them
(and swap a model version) on running replicas without a redeploy.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import logging
import time
from typing import Any

from PIL import Image
from ray import serve
from ray.serve.handle import DeploymentHandle
from starlette.requests import Request
from starlette.responses import JSONResponse

from models.contracts import Classification, Detection, InferenceResult, RegionResult
from models.images import UnreadableImage, crop_with_context, decode_photo

logger = logging.getLogger("ray.serve")  # Serve routes this logger to the replica logs

REPLICA_CPUS = 0.5  # two model replicas and the ingress fit on a 2-core machine
# Above max_batch_size, so that a batch can fill while the previous one runs.
MAX_ONGOING_REQUESTS = 64
# How often a stopping replica checks for requests still in flight; Ray's 2 s default
# makes every shutdown (tests, rolling restarts) take seconds longer than the work left.
SHUTDOWN_POLL_S = 0.2
_REPLICA: dict[str, Any] = {
    "ray_actor_options": {"num_cpus": REPLICA_CPUS},
    "max_ongoing_requests": MAX_ONGOING_REQUESTS,
    "graceful_shutdown_wait_loop_s": SHUTDOWN_POLL_S,
}


class BadRequest(ValueError):
    """The request body is not what the API documents."""


@serve.deployment(**_REPLICA)
class Detector:
    def __init__(self, device: str = "cpu") -> None:
        self.device = device
        self.model: Any = None
        self.settings: dict[str, Any] = {}

    def reconfigure(self, config: dict[str, Any]) -> None:
        _set_batching(self.detect, config)
        settings = {key: config[key] for key in ("model_dir", "threshold", "max_regions")}
        if settings != self.settings:
            from models.detector import RTDetrDetector  # torch loads in the replica only

            # Built before it replaces the old one: requests keep being served meanwhile.
            self.model = RTDetrDetector(
                settings["model_dir"],
                threshold=settings["threshold"],
                max_regions=settings["max_regions"],
                device=self.device,
            )
            self.settings = settings

    def version(self) -> str:
        return str(self.model.version)

    @serve.batch(max_batch_size=8, batch_wait_timeout_s=0.01)
    async def detect(self, images: list[Image.Image]) -> list[tuple[list[Detection], str]]:
        model = self.model  # one model for the whole batch, even if reconfigure swaps it
        # A thread keeps the replica's event loop free to collect the next batch.
        found = await asyncio.to_thread(model.detect, images)
        return [(detections, model.version) for detections in found]


@serve.deployment(**_REPLICA)
class Classifier:
    def __init__(self, device: str = "cpu") -> None:
        self.device = device
        self.model: Any = None
        self.settings: dict[str, Any] = {}

    def reconfigure(self, config: dict[str, Any]) -> None:
        _set_batching(self.classify, config)
        settings = {key: config[key] for key in ("model_dir", "language")}
        if settings != self.settings:
            from models.classifier import QwenClassifier

            self.model = QwenClassifier(
                settings["model_dir"], language=settings["language"], device=self.device
            )
            self.settings = settings

    def versions(self) -> dict[str, str]:
        return {
            "classifier_version": self.model.version,
            "prompt_version": self.model.prompt_version,
        }

    @serve.batch(max_batch_size=8, batch_wait_timeout_s=0.01)
    async def classify(
        self, crops: list[Image.Image]
    ) -> list[tuple[Classification, dict[str, str]]]:
        model = self.model
        classifications = await asyncio.to_thread(model.classify, crops)
        versions = {"classifier_version": model.version, "prompt_version": model.prompt_version}
        return [(classification, versions) for classification in classifications]


@serve.deployment(**_REPLICA)
class Ingress:
    """HTTP: POST photos -> InferenceResult JSON; GET -> health and model versions."""

    def __init__(self, detector: DeploymentHandle, classifier: DeploymentHandle) -> None:
        self.detector = detector
        self.classifier = classifier

    async def __call__(self, request: Request) -> JSONResponse:
        if request.method == "GET":
            return JSONResponse(await self.health())
        if request.method != "POST":
            return JSONResponse({"error": "use GET or POST"}, status_code=405)
        try:
            inspection_id, photos = _parse_body(await request.body())
            result = await self.inspect(inspection_id, photos)
        except (BadRequest, UnreadableImage) as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)
        except Exception as exc:  # any failure: the caller routes the item to review
            return JSONResponse({"error": f"inference failed: {exc!r}"}, status_code=500)
        return JSONResponse(result.to_dict())

    async def health(self) -> dict[str, str]:
        detector_version, classifier = await asyncio.gather(
            self.detector.version.remote(), self.classifier.versions.remote()
        )
        return {"status": "ok", "detector_version": detector_version, **classifier}

    async def inspect(self, inspection_id: str, photos: list[bytes]) -> InferenceResult:
        """Detects on every photo, then classifies every region, all requests concurrent."""
        started = time.perf_counter()
        images = [_decode(index, data) for index, data in enumerate(photos)]
        decoded = time.perf_counter()
        detected = await asyncio.gather(*(self.detector.detect.remote(im) for im in images))
        detector_version = detected[0][1]
        located = [
            (index, detection) for index, (found, _) in enumerate(detected) for detection in found
        ]
        crops = [crop_with_context(images[index], d.box) for index, d in located]
        detected_at = time.perf_counter()
        classified = await asyncio.gather(*(self.classifier.classify.remote(c) for c in crops))
        # With no region on any photo the classifier did not run; still name the live one.
        versions = classified[0][1] if classified else await self.classifier.versions.remote()
        timings = _timings_ms(started, decoded, detected_at, time.perf_counter())
        logger.info(
            "inspection %s: %d photos, %d regions, %.0f ms",
            inspection_id,
            len(images),
            len(located),
            timings["total_ms"],
        )
        return InferenceResult(
            regions=_regions(located, [classification for classification, _ in classified]),
            detector_version=detector_version,
            classifier_version=versions["classifier_version"],
            prompt_version=versions["prompt_version"],
            timings=timings,
        )


def build_app(
    *,
    detector_dir: str,
    classifier_dir: str,
    detector_threshold: float = 0.25,
    max_regions: int = 20,
    language: str = "en",
    max_batch_size: int = 8,
    batch_wait_timeout_s: float = 0.01,
) -> serve.Application:
    """The whole graph, built in one place: Ingress(Detector, Classifier)."""
    batching = {"max_batch_size": max_batch_size, "batch_wait_timeout_s": batch_wait_timeout_s}
    detector = Detector.options(
        user_config={
            **batching,
            "model_dir": str(detector_dir),
            "threshold": detector_threshold,
            "max_regions": max_regions,
        }
    ).bind()
    classifier = Classifier.options(
        user_config={
            **batching,
            "model_dir": str(classifier_dir),
            "language": language,
        }
    ).bind()
    return Ingress.bind(detector, classifier)


def _regions(
    located: list[tuple[int, Detection]], classifications: list[Classification]
) -> list[RegionResult]:
    return [
        RegionResult(
            photo_index=index,
            box=detection.box,
            detector_score=detection.score,
            classification=classification,
        )
        for (index, detection), classification in zip(located, classifications, strict=True)
    ]


def _set_batching(method: Any, config: dict[str, Any]) -> None:
    method.set_max_batch_size(int(config.get("max_batch_size", 8)))
    method.set_batch_wait_timeout_s(float(config.get("batch_wait_timeout_s", 0.01)))


def _parse_body(body: bytes) -> tuple[str, list[bytes]]:
    """Validates `{"inspection_id": str, "photos": [base64, ...]}` and decodes the base64."""
    try:
        data = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise BadRequest(f"body is not JSON: {exc}") from exc
    if not isinstance(data, dict) or not isinstance(data.get("inspection_id"), str):
        raise BadRequest('body must be {"inspection_id": str, "photos": [base64, ...]}')
    photos = data.get("photos")
    if not isinstance(photos, list) or not photos or not all(isinstance(p, str) for p in photos):
        raise BadRequest("photos must be a non-empty list of base64 strings")
    try:
        return data["inspection_id"], [base64.b64decode(p, validate=True) for p in photos]
    except (binascii.Error, ValueError) as exc:
        raise BadRequest(f"a photo is not valid base64: {exc}") from exc


def _decode(index: int, data: bytes) -> Image.Image:
    try:
        return decode_photo(data)
    except UnreadableImage as exc:
        raise UnreadableImage(f"photo {index}: {exc}") from exc


def _timings_ms(
    started: float, decoded: float, detected: float, finished: float
) -> dict[str, float]:
    return {
        "decode_ms": round((decoded - started) * 1000, 2),
        "detect_ms": round((detected - decoded) * 1000, 2),
        "classify_ms": round((finished - detected) * 1000, 2),
        "total_ms": round((finished - started) * 1000, 2),
    }
