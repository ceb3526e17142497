"""The model deployments: a detector and a classifier replica, each batching its calls.

`reconfigure()` reads everything that may change while the app runs from `user_config`:
batch size and wait, thresholds, and the model directory. A new model is loaded in a
thread and swapped in once complete, so the replica keeps answering with the old one
meanwhile; each batch holds on to the model it started with.

A tuned classifier is a base plus a LoRA adapter (`adapter_dir`). When only the adapter
changes, the classifier replica keeps the base loaded and swaps the adapter on it in
place, which a batch holding on to its model object does not protect against: see
`SwapLock`.
"""

from __future__ import annotations

import asyncio
import threading
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
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
# What a classifier is loaded with: a change to any of them loads the base again. A change
# of `adapter_dir` alone swaps the adapter on the loaded base.
_CLASSIFIER_KEYS = ("model_dir", "language", "prompt_version", "temperature", "max_pixels",
                    "reason_max_new_tokens")  # fmt: skip


class _Batches:
    """The sizes of the last batches each method ran: what batching really achieved."""

    def __init__(self) -> None:
        self.sizes: dict[str, deque[int]] = {}

    def record(self, method: str, size: int) -> None:
        self.sizes.setdefault(method, deque(maxlen=_LOGGED_BATCHES)).append(size)

    def snapshot(self) -> dict[str, list[int]]:
        return {method: list(sizes) for method, sizes in self.sizes.items()}


class SwapLock:
    """Batches share the model; an in-place adapter swap has it to itself.

    A batch must run entirely with one adapter and report that adapter's version. A
    reload builds a new model object, and a batch keeps the object it started with; a
    swap changes the one object every batch uses, so the worker thread of each batch holds
    `batch()` for the whole model call (and reads the version inside it), and the swap
    holds `swap()`. A plain lock would do that too, but would also queue a replica's
    classify batches behind a long explain batch (generation) that today run side by
    side; the swap is rare and short, so it waits for running batches, and batches that
    arrive while it waits wait for it (it never starves).
    """

    def __init__(self) -> None:
        self._condition = threading.Condition()
        self._batches = 0  # running
        self._swaps = 0  # waiting or running

    @contextmanager
    def batch(self) -> Iterator[None]:
        with self._condition:
            self._condition.wait_for(lambda: not self._swaps)
            self._batches += 1
        try:
            yield
        finally:
            with self._condition:
                self._batches -= 1
                self._condition.notify_all()

    @contextmanager
    def swap(self) -> Iterator[None]:
        with self._condition:
            self._swaps += 1
            self._condition.wait_for(lambda: not self._batches)
        try:
            yield
        finally:
            with self._condition:
                self._swaps -= 1
                self._condition.notify_all()


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
        # models.tuning.adapter.AdapterSwitch on `model`, once an adapter was wanted on it.
        self.adapters: Any = None
        self.settings: dict[str, Any] = {}
        self.adapter_dir = ""  # as user_config names it, "" for none
        self.batches = _Batches()
        self.swap_lock = SwapLock()
        self.reconfiguring = asyncio.Lock()  # one reload or swap at a time

    async def reconfigure(self, config: dict[str, Any]) -> None:
        _set_batching(self.classify, config)
        _set_batching(self.explain, config)
        settings = {key: config[key] for key in _CLASSIFIER_KEYS if key in config}
        adapter_dir = str(config.get("adapter_dir") or "")
        async with self.reconfiguring:
            if settings != self.settings:
                # A new object: batches running on the old one finish with it undisturbed.
                self.model, self.adapters = await asyncio.to_thread(
                    _load_classifier, settings, adapter_dir, self.device
                )
                self.settings = settings
            elif adapter_dir != self.adapter_dir:
                await asyncio.to_thread(self._switch_adapter, adapter_dir)
            self.adapter_dir = adapter_dir

    def _switch_adapter(self, adapter_dir: str) -> None:
        """Puts `adapter_dir` ("" for none) on the loaded base in place (a worker thread)."""
        if not adapter_dir and self.adapters is None:
            return  # peft never touched this model
        from models.tuning.adapter import AdapterSwitch, resolve_adapter_dir

        if self.adapters is None:
            self.adapters = AdapterSwitch(self.model)
        # Downloading and hashing the files changes nothing: batches go on meanwhile, and a
        # bad adapter is refused here, with the model as it was.
        path = resolve_adapter_dir(adapter_dir) if adapter_dir else None
        manifest = self.adapters.check(path) if path else None
        with self.swap_lock.swap():
            self.adapters.switch(path, manifest)

    def versions(self) -> dict[str, str]:
        return _versions(self.model)

    def batch_sizes(self) -> dict[str, list[int]]:
        return self.batches.snapshot()

    @serve.batch(max_batch_size=8, batch_wait_timeout_s=0.01)
    async def classify(
        self, crops: list[Image.Image]
    ) -> list[tuple[Classification, dict[str, str], float]]:
        self.batches.record("classify", len(crops))
        # A thread keeps the replica's event loop free to collect the next batch.
        classifications, versions, model_ms = await asyncio.to_thread(self._classify, crops)
        return [(classification, versions, model_ms) for classification in classifications]

    def _classify(
        self, crops: list[Image.Image]
    ) -> tuple[list[Classification], dict[str, str], float]:
        with self.swap_lock.batch():  # one adapter for the whole batch, and its version
            model = self.model
            classifications, model_ms = timed_call(model.classify, crops)
            return classifications, _versions(model), model_ms

    @serve.batch(max_batch_size=8, batch_wait_timeout_s=0.01)
    async def explain(
        self, items: list[tuple[Image.Image, tuple[str, str, str], str]]
    ) -> list[str]:
        """(crop, (defect type, severity, candidate), language) -> one sentence each."""
        self.batches.record("explain", len(items))
        return await asyncio.to_thread(self._explain, items)

    def _explain(self, items: list[ExplainItem]) -> list[str]:
        reasons: list[str] = [""] * len(items)
        with self.swap_lock.batch():  # every language of the batch with the same adapter
            model = self.model
            for language in sorted({language for _, _, language in items}):
                rows = [i for i, (_, _, lang) in enumerate(items) if lang == language]
                crops, labels = [items[i][0] for i in rows], [items[i][1] for i in rows]
                said = model.explain(crops, labels, language)
                for row, reason in zip(rows, said, strict=True):
                    reasons[row] = reason
        return reasons


def _load_classifier(settings: dict[str, Any], adapter_dir: str, device: str) -> tuple[Any, Any]:
    """(the classifier, its AdapterSwitch or None): the base, with the adapter if one is named."""
    from models.classifier import QwenClassifier
    from models.prompts import load_prompts

    adapter = None
    if adapter_dir:  # peft and the download only where an adapter is wanted
        from models.tuning.adapter import AdapterSwitch, resolve_adapter_dir

        adapter = resolve_adapter_dir(adapter_dir)  # before the base's minutes of loading
    names = ("max_pixels", "reason_max_new_tokens", "temperature")
    options = {k: settings[k] for k in names if k in settings}
    classifier = QwenClassifier.load(
        settings["model_dir"],
        language=settings.get("language", "en"),
        prompts=load_prompts(settings.get("prompt_version", "v2")),
        device=device,
        **options,
    )
    if adapter is None:
        return classifier, None
    switch = AdapterSwitch(classifier)
    switch.switch(adapter)  # nothing runs on this model yet: no lock needed
    return classifier, switch


def _versions(model: Any) -> dict[str, str]:
    return {"classifier_version": model.version, "prompt_version": model.prompt_version}


def _set_batching(method: Any, config: dict[str, Any]) -> None:
    method.set_max_batch_size(int(config.get("max_batch_size", 8)))
    method.set_batch_wait_timeout_s(float(config.get("batch_wait_timeout_s", 0.01)))
