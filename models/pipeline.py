"""One inspection through the models: photos -> detector -> crops -> classifier -> result.

The composition is written once over async callables, so that the Ray Serve ingress
(deployment handles) and `loupe infer` or the benchmarks (models in this process) run the
same code. Photos cross to the detector as a copy shrunk to its input size and crops
cross to the classifier already within its pixel budget: a 12 MP photo is 36 MB of
pixels, which Ray would otherwise copy through its object store for every call.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from PIL import Image

from models.contracts import (
    Box,
    Classification,
    Detection,
    InferenceResult,
    RegionResult,
    RegionToExplain,
)
from models.images import (
    DEFAULT_MAX_PIXELS,
    UnreadableImage,
    crop_with_context,
    decode_photo,
    fit_pixel_budget,
    scale_box,
    shrink_for_detection,
    whole_image_box,
)

# A model call answers with what it found, the version that found it, and the ms its batch
# spent computing: the rest of the wait is transport, queueing and batch wait.
DetectCall = Callable[[Image.Image], Awaitable[tuple[list[Detection], str, float]]]
ClassifyCall = Callable[[Image.Image], Awaitable[tuple[Classification, dict[str, str], float]]]
ExplainCall = Callable[[Image.Image, tuple[str, str, str], str], Awaitable[str]]
VersionsCall = Callable[[], Awaitable[dict[str, str]]]
T = TypeVar("T")
R = TypeVar("R")


@dataclass(frozen=True)
class PipelineOptions:
    detector_min_side: int = 640  # RT-DETR's input side; photos need not cross any larger
    # Below this many pixels a side, a box cannot be judged: the item goes to a human.
    min_region_px: int = 4
    context: float = 0.15  # fabric around a box, as a share of its size
    max_pixels: int = DEFAULT_MAX_PIXELS  # the classifier's pixel budget per crop


@dataclass(frozen=True)
class ArmModels:
    """The calls of one arm. `detect` is None when the arm runs classifier-only."""

    detect: DetectCall | None
    classify: ClassifyCall
    versions: VersionsCall
    explain: ExplainCall


@dataclass(frozen=True)
class _Located:
    photo_index: int
    box: Box
    score: float
    whole_image: bool


async def inspect(
    photos: list[bytes], models: ArmModels, options: PipelineOptions, arm: str
) -> InferenceResult:
    """Detects on every photo, then classifies every region, all calls concurrent."""
    started = time.perf_counter()
    images = await asyncio.to_thread(decode_all, photos)  # 12 MP decodes take ~0.1 s each
    decoded = time.perf_counter()
    located, detector_version, detect_model_ms = await _locate(images, models.detect, options)
    detected = time.perf_counter()
    classifications = await asyncio.gather(
        *(_classify(images, place, models.classify, options) for place in located)
    )
    versions = next((v for _, v, _ in classifications if v), None) or await models.versions()
    timings = timings_ms(started, decoded, detected, time.perf_counter())
    # The longest batch is the compute that the stage had to wait for; calls of one
    # stage run concurrently, so their compute does not add up.
    timings["detect_model_ms"] = round(detect_model_ms, 2)
    timings["classify_model_ms"] = round(max((ms for _, _, ms in classifications), default=0), 2)
    return InferenceResult(
        regions=[
            RegionResult(p.photo_index, p.box, p.score, c, p.whole_image)
            for p, (c, _, _) in zip(located, classifications, strict=True)
        ],
        detector_version=detector_version,
        classifier_version=versions["classifier_version"],
        prompt_version=versions["prompt_version"],
        arm=arm,
        timings=timings,
    )


async def explain(
    photos: list[bytes], regions: list[RegionToExplain], models: ArmModels,
    options: PipelineOptions, language: str,
) -> list[str]:  # fmt: skip
    """One reason per region, generated from the same crops the classifier judged."""
    if any(not 0 <= r.photo_index < len(photos) for r in regions):
        raise ValueError("a region names a photo that was not sent")
    images = await asyncio.to_thread(decode_all, photos)
    crops = [_crop(images[r.photo_index], r.box, options) for r in regions]
    return list(
        await asyncio.gather(
            *(
                models.explain(crop, (r.defect_type, r.severity, r.candidate_type), language)
                for crop, r in zip(crops, regions, strict=True)
            )
        )
    )


def decode_all(photos: list[bytes]) -> list[Image.Image]:
    images = []
    for index, data in enumerate(photos):
        try:
            images.append(decode_photo(data))
        except UnreadableImage as exc:
            raise UnreadableImage(f"photo {index}: {exc}") from exc
    return images


async def _locate(
    images: list[Image.Image], detect: DetectCall | None, options: PipelineOptions
) -> tuple[list[_Located], str, float]:
    """The regions to classify, the detector's version and its compute ms."""
    if detect is None:
        # Cold start: no detector yet, so each whole photo is one region to classify.
        whole = [_Located(i, whole_image_box(im), 1.0, True) for i, im in enumerate(images)]
        return whole, "", 0.0
    shrunk = [shrink_for_detection(image, options.detector_min_side) for image in images]
    found = await asyncio.gather(*(detect(small) for small, _ in shrunk))
    located = [
        _Located(i, scale_box(d.box, factors, images[i].size), d.score, False)
        for i, ((_, factors), (detections, _, _)) in enumerate(zip(shrunk, found, strict=True))
        for d in detections
    ]
    return located, found[0][1], max(ms for _, _, ms in found)


async def _classify(
    images: list[Image.Image], place: _Located, classify: ClassifyCall, options: PipelineOptions
) -> tuple[Classification, dict[str, str] | None, float]:
    box = place.box
    if min(box.width, box.height) < options.min_region_px:
        size = f"{box.width:.0f}x{box.height:.0f} px"
        error = f"crop too small to judge: {size} (minimum {options.min_region_px} px a side)"
        return Classification.failed(error), None, 0.0
    return await classify(_crop(images[place.photo_index], box, options))


def _crop(image: Image.Image, box: Box, options: PipelineOptions) -> Image.Image:
    crop = crop_with_context(image, box, context=options.context)
    return fit_pixel_budget(crop, options.max_pixels)


def timings_ms(
    started: float, decoded: float, detected: float, finished: float
) -> dict[str, float]:
    return {
        "decode_ms": round((decoded - started) * 1000, 2),
        "detect_ms": round((detected - decoded) * 1000, 2),
        "classify_ms": round((finished - detected) * 1000, 2),
        "total_ms": round((finished - started) * 1000, 2),
    }


def in_process(detector: Any | None, classifier: Any) -> ArmModels:
    """ArmModels over models loaded in this process (`loupe infer`, benchmarks).

    Calls made together are batched as `@serve.batch` batches them in Serve, so that an
    in-process run does the same model work as a served one.
    """
    detect_batch = _Batcher(detector.detect) if detector is not None else None
    classify_batch = _Batcher(classifier.classify)
    explain_batch = _Batcher(
        lambda items: [
            reason
            for crop, label, language in items
            for reason in classifier.explain([crop], [label], language)
        ]
    )

    async def detect(image: Image.Image) -> tuple[list[Detection], str, float]:
        # Handed out only when there is a detector (below).
        assert detector is not None and detect_batch is not None
        detections, model_ms = await detect_batch.timed(image)
        return detections, detector.version, model_ms

    async def classify(crop: Image.Image) -> tuple[Classification, dict[str, str], float]:
        classification, model_ms = await classify_batch.timed(crop)
        return classification, await versions(), model_ms

    async def versions() -> dict[str, str]:
        return {
            "classifier_version": classifier.version,
            "prompt_version": classifier.prompt_version,
        }

    async def explain(crop: Image.Image, label: tuple[str, str, str], language: str) -> str:
        return str(await explain_batch((crop, label, language)))

    return ArmModels(detect if detect_batch else None, classify, versions, explain)


class _Batcher:
    """Collects the calls made in one turn of the event loop into one list-in, list-out call.

    `asyncio.gather` starts its coroutines one after the other before anything else runs,
    so every call of a gather is queued before the flush scheduled by the first one.
    """

    def __init__(self, run: Callable[[list[Any]], list[Any]]) -> None:
        self._run = run
        self._pending: list[tuple[Any, asyncio.Future[Any]]] = []
        self._lock: asyncio.Lock | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    async def __call__(self, item: Any) -> Any:
        result, _ = await self.timed(item)
        return result

    async def timed(self, item: Any) -> tuple[Any, float]:
        """The item's result and the ms its batch computed."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[tuple[Any, float]] = loop.create_future()
        self._pending.append((item, future))
        if len(self._pending) == 1:
            loop.call_soon(lambda: loop.create_task(self._flush()))
        return await future

    async def _flush(self) -> None:
        batch, self._pending = self._pending, []
        loop = asyncio.get_running_loop()
        if self._loop is not loop:  # a lock belongs to one event loop (asyncio.run makes new ones)
            self._loop, self._lock = loop, asyncio.Lock()
        assert self._lock is not None
        async with self._lock:  # one model call at a time, as one replica would
            try:
                results, model_ms = await asyncio.to_thread(
                    timed_call, self._run, [item for item, _ in batch]
                )
            except Exception as exc:
                for _, future in batch:
                    future.set_exception(exc)
                return
        for (_, future), result in zip(batch, results, strict=True):
            future.set_result((result, model_ms))


def timed_call(run: Callable[[T], R], argument: T) -> tuple[R, float]:
    """run(argument) and the ms it took, measured where it runs (in the worker thread)."""
    started = time.perf_counter()
    result = run(argument)
    return result, (time.perf_counter() - started) * 1000
