"""The model deployments: a detector and a classifier replica, each batching its calls.

`reconfigure()` reads everything that may change while the app runs from `user_config`:
batch size and wait, thresholds, and the model directory. A new model is loaded in a
thread and swapped in once complete, so the replica keeps answering with the old one
meanwhile; each batch holds on to the model it started with.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Any

from PIL import Image
from ray import serve

from models.contracts import Classification, Detection
from models.pipeline import timed_call

REPLICA_CPUS = 0.25  # champion and challenger (4 replicas) and the ingress fit on 2 cores
# Above max_batch_size, so that a batch can fill while the previous one runs.
MAX_ONGOING_REQUESTS = 64
# How often a stopping replica checks for requests still in flight; Ray's 2 s default
# makes every shutdown (tests, rolling restarts) take seconds longer than the work left.
SHUTDOWN_POLL_S = 0.2
REPLICA: dict[str, Any] = {
    "ray_actor_options": {"num_cpus": REPLICA_CPUS},
    "max_ongoing_requests": MAX_ONGOING_REQUESTS,
    "graceful_shutdown_wait_loop_s": SHUTDOWN_POLL_S,
}
_LOGGED_BATCHES = 1000
ExplainItem = tuple[Image.Image, tuple[str, str, str], str]


class _Batches:
    """The sizes of the last batches each method ran: what batching really achieved."""

    def __init__(self) -> None:
        self.sizes: dict[str, deque[int]] = {}

    def record(self, method: str, size: int) -> None:
        self.sizes.setdefault(method, deque(maxlen=_LOGGED_BATCHES)).append(size)

    def snapshot(self) -> dict[str, list[int]]:
        return {method: list(sizes) for method, sizes in self.sizes.items()}


@serve.deployment(**REPLICA)
class Detector:
    def __init__(self, device: str = "cpu") -> None:
        self.device = device
        self.model: Any = None
        self.model_dir = ""
        self.batches = _Batches()

    async def reconfigure(self, config: dict[str, Any]) -> None:
        _set_batching(self.detect, config)
        threshold, max_regions = float(config["threshold"]), int(config["max_regions"])
        if config["model_dir"] != self.model_dir:
            from models.detector import RTDetrDetector  # torch loads in the replica only

            self.model = await asyncio.to_thread(
                RTDetrDetector.load, config["model_dir"], device=self.device,
                threshold=threshold, max_regions=max_regions,
            )  # fmt: skip
            self.model_dir = config["model_dir"]
        self.model.threshold, self.model.max_regions = threshold, max_regions

    def version(self) -> str:
        return str(self.model.version)

    def batch_sizes(self) -> dict[str, list[int]]:
        return self.batches.snapshot()

    @serve.batch(max_batch_size=8, batch_wait_timeout_s=0.01)
    async def detect(self, images: list[Image.Image]) -> list[tuple[list[Detection], str, float]]:
        self.batches.record("detect", len(images))
        model = self.model  # one model for the whole batch, even if reconfigure swaps it
        # A thread keeps the replica's event loop free to collect the next batch.
        found, model_ms = await asyncio.to_thread(timed_call, model.detect, images)
        return [(detections, model.version, model_ms) for detections in found]


@serve.deployment(**REPLICA)
class Classifier:
    def __init__(self, device: str = "cpu") -> None:
        self.device = device
        self.model: Any = None
        self.settings: dict[str, Any] = {}
        self.batches = _Batches()

    async def reconfigure(self, config: dict[str, Any]) -> None:
        _set_batching(self.classify, config)
        _set_batching(self.explain, config)
        keys = ("model_dir", "language", "prompt_version", "temperature", "max_pixels",
                "reason_max_new_tokens")  # fmt: skip
        settings = {key: config[key] for key in keys if key in config}
        if settings != self.settings:
            self.model = await asyncio.to_thread(_load_classifier, settings, self.device)
            self.settings = settings

    def versions(self) -> dict[str, str]:
        return _versions(self.model)

    def batch_sizes(self) -> dict[str, list[int]]:
        return self.batches.snapshot()

    @serve.batch(max_batch_size=8, batch_wait_timeout_s=0.01)
    async def classify(
        self, crops: list[Image.Image]
    ) -> list[tuple[Classification, dict[str, str], float]]:
        self.batches.record("classify", len(crops))
        model = self.model
        classifications, model_ms = await asyncio.to_thread(timed_call, model.classify, crops)
        versions = _versions(model)
        return [(classification, versions, model_ms) for classification in classifications]

    @serve.batch(max_batch_size=8, batch_wait_timeout_s=0.01)
    async def explain(
        self, items: list[tuple[Image.Image, tuple[str, str, str], str]]
    ) -> list[str]:
        """(crop, (defect type, severity, candidate), language) -> one sentence each."""
        self.batches.record("explain", len(items))
        model = self.model
        reasons: list[str] = [""] * len(items)
        for language in sorted({language for _, _, language in items}):
            rows = [i for i, (_, _, lang) in enumerate(items) if lang == language]
            crops, labels = [items[i][0] for i in rows], [items[i][1] for i in rows]
            said = await asyncio.to_thread(model.explain, crops, labels, language)
            for row, reason in zip(rows, said, strict=True):
                reasons[row] = reason
        return reasons


def _load_classifier(settings: dict[str, Any], device: str) -> Any:
    from models.classifier import QwenClassifier
    from models.prompts import load_prompts

    names = ("max_pixels", "reason_max_new_tokens", "temperature")
    options = {k: settings[k] for k in names if k in settings}
    return QwenClassifier.load(
        settings["model_dir"],
        language=settings.get("language", "en"),
        prompts=load_prompts(settings.get("prompt_version", "v2")),
        device=device,
        **options,
    )


def _versions(model: Any) -> dict[str, str]:
    return {"classifier_version": model.version, "prompt_version": model.prompt_version}


def _set_batching(method: Any, config: dict[str, Any]) -> None:
    method.set_max_batch_size(int(config.get("max_batch_size", 8)))
    method.set_batch_wait_timeout_s(float(config.get("batch_wait_timeout_s", 0.01)))
