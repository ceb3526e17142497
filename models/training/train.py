"""Fine-tunes an RT-DETR detector on labelled samples and saves it as a model directory.

The champion's directory is loaded through the production path (`RTDetrDetector`, which
uses `from_pretrained`), so a model that trains here is a model that serving can load.
The result is saved with `save_pretrained` (model and image processor) and can be
loaded back the same way. Training runs a fixed number of steps from a seed, never a
time budget, so a run is reproducible from its snapshot and its settings.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from models.detector import RTDetrDetector
from models.training.augment import AugmentConfig, Augmenter, oversample, rare_classes
from models.training.balance import reachable_share
from models.training.data import label_ids, make_batch
from models.training.synthetic import Annotation, Sample

# step, total steps, that step's loss, estimated seconds left
ProgressCallback = Callable[[int, int, float, float], None]
DEFAULT_AUGMENT = AugmentConfig()
TRAINING_FILE = "training.json"


@dataclass(frozen=True)
class TrainResult:
    model_dir: Path
    losses: list[float]  # one per step
    loss_terms: dict[str, float]  # the last step's loss terms, for the run's record
    samples: int  # images in the training pool, repeats from oversampling included
    epochs: float  # passes over that pool
    seconds: float


def train_detector(
    *,
    init_dir: str | Path,
    out_dir: str | Path,
    samples: Sequence[Sample],
    steps: int,
    batch_size: int = 8,
    lr: float = 5e-4,
    weight_decay: float = 1e-4,
    warmup: int = 50,
    seed: int = 0,
    augment: AugmentConfig | None = DEFAULT_AUGMENT,
    on_progress: ProgressCallback | None = None,
    grad_clip: float = 0.1,
    final_lr_share: float = 0.1,
    device: str = "cpu",
) -> TrainResult:
    """AdamW with linear warm-up and cosine decay to final_lr_share x lr; saves to out_dir.

    augment=None trains on the images as they are (the learning test's fixed batch).
    An exception from on_progress stops the run; nothing is saved then, so a caller can
    cancel a run by raising. out_dir must not exist yet (or be empty): a model version
    is immutable once written.
    """
    _check_request(samples, steps, batch_size, Path(out_dir))
    settings = _Settings(
        steps, batch_size, lr, weight_decay, warmup, final_lr_share, grad_clip, seed
    )
    torch.manual_seed(seed)
    # float32 whatever the checkpoint's dtype: AdamW's updates vanish in half precision.
    detector = RTDetrDetector.load(init_dir, device=device, dtype=torch.float32)
    ids = label_ids(
        detector.model.config.id2label, (a.label for s in samples for a in s.annotations)
    )
    pool, augmenter = _training_pool(samples, augment, seed)
    started = time.monotonic()
    losses, terms = _fit(detector, pool, augmenter, ids, settings, on_progress)
    seconds = time.monotonic() - started
    record = {
        "init": detector.version,
        **asdict(settings),
        "augment": _augment_record(augment, samples),
        "samples": len(pool),
        "final_loss": losses[-1],
        "seconds": round(seconds, 1),
    }
    saved = _save(detector.model, detector.processor, Path(out_dir), record)
    epochs = steps * min(batch_size, len(pool)) / len(pool)
    return TrainResult(saved, losses, terms, len(pool), epochs, seconds)


@dataclass(frozen=True)
class _Settings:
    steps: int
    batch_size: int
    lr: float
    weight_decay: float
    warmup: int
    final_lr_share: float
    grad_clip: float
    seed: int


def _fit(
    detector: RTDetrDetector,
    pool: Sequence[Sample],
    augmenter: Augmenter | None,
    ids: dict[str, int],
    settings: _Settings,
    on_progress: ProgressCallback | None,
) -> tuple[list[float], dict[str, float]]:
    """The training loop; leaves the model in eval mode, trained."""
    model, steps = detector.model, settings.steps
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=settings.lr, weight_decay=settings.weight_decay
    )
    factor = warmup_cosine(steps, settings.warmup, settings.final_lr_share)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
    batches = _batches(len(pool), settings.batch_size, steps, settings.seed)
    losses: list[float] = []
    terms: dict[str, float] = {}
    started = time.monotonic()
    model.train()
    for step, indices in enumerate(batches, start=1):
        items = [_prepared(pool[i], augmenter) for i in indices]
        batch = _to_device(make_batch(items, detector.processor, ids), detector.device)
        loss, terms = _step(model, optimizer, batch, settings.grad_clip)
        schedule.step()
        if not math.isfinite(loss):
            raise FloatingPointError(f"training loss became {loss} at step {step}")
        losses.append(loss)
        if on_progress is not None:
            elapsed = time.monotonic() - started
            on_progress(step, steps, loss, elapsed / step * (steps - step))
    model.eval()
    return losses, terms


def warmup_cosine(steps: int, warmup: int, final_share: float) -> Callable[[int], float]:
    """The lr multiplier for step s (0-based): linear up to 1, then cosine to final_share."""

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        progress = min(1.0, (step - warmup) / max(1, steps - warmup))
        return final_share + (1 - final_share) * 0.5 * (1 + math.cos(math.pi * progress))

    return factor


def _check_request(samples: Sequence[Sample], steps: int, batch_size: int, out: Path) -> None:
    if steps < 1 or batch_size < 1:
        raise ValueError(f"steps and batch_size must be positive, got {steps} and {batch_size}")
    if not any(sample.annotations for sample in samples):
        raise ValueError("no labelled boxes to train on")
    if out.exists() and any(out.iterdir()):
        raise FileExistsError(f"{out} already holds files; a model version is never overwritten")


def _augment_record(
    augment: AugmentConfig | None, samples: Sequence[Sample]
) -> dict[str, Any] | None:
    """The augmentation as applied: with the rare-class share oversample actually aimed at,
    which is lower than configured when many classes make the configured one unreachable."""
    if augment is None:
        return None
    classes = len({a.label for s in samples for a in s.annotations})
    return {**asdict(augment), "min_share": reachable_share(augment.min_share, classes)}


def _training_pool(
    samples: Sequence[Sample], augment: AugmentConfig | None, seed: int
) -> tuple[list[Sample], Augmenter | None]:
    if augment is None:
        return list(samples), None
    rare = rare_classes(samples, augment)
    return oversample(samples, augment.min_share), Augmenter(augment, rare, seed)


def _batches(n: int, batch_size: int, steps: int, seed: int) -> Iterator[list[int]]:
    """Indices per step: a fresh seeded permutation each epoch; an epoch's tail is dropped.

    Dropping the tail (rather than topping it up from the next epoch) keeps an image
    from appearing twice in one batch; which images fall in the tail changes per epoch.
    """
    rng = np.random.default_rng(seed)
    size = min(batch_size, n)
    queue: list[int] = []
    for _ in range(steps):
        if len(queue) < size:
            queue = rng.permutation(n).tolist()
        batch, queue = queue[:size], queue[size:]
        yield batch


def _prepared(
    sample: Sample, augmenter: Augmenter | None
) -> tuple[Image.Image, Sequence[Annotation]]:
    if augmenter is None:
        return sample.image, sample.annotations
    return augmenter(sample.image, sample.annotations)


def _to_device(batch: dict[str, Any], device: torch.device) -> dict[str, Any]:
    labels = [
        {key: value.to(device) for key, value in target.items()} for target in batch["labels"]
    ]
    return {"pixel_values": batch["pixel_values"].to(device), "labels": labels}


def _step(
    model: torch.nn.Module, optimizer: torch.optim.Optimizer, batch: dict[str, Any], clip: float
) -> tuple[float, dict[str, float]]:
    """One optimiser step; returns plain floats so no graph outlives the step."""
    optimizer.zero_grad(set_to_none=True)
    outputs = model(pixel_values=batch["pixel_values"], labels=batch["labels"])
    outputs.loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
    optimizer.step()
    terms = {name: float(value.detach()) for name, value in (outputs.loss_dict or {}).items()}
    return float(outputs.loss.detach()), terms


def _save(model: Any, processor: Any, out: Path, record: dict[str, Any]) -> Path:
    """Writes into a sibling staging directory, then renames it: out is complete or absent."""
    staging = out.with_name(f".{out.name}.tmp-{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    try:
        model.save_pretrained(staging)
        processor.save_pretrained(staging)
        (staging / TRAINING_FILE).write_text(json.dumps(record, indent=2) + "\n")
        if out.exists():
            out.rmdir()  # empty, as _check_request made sure
        out.parent.mkdir(parents=True, exist_ok=True)
        os.replace(staging, out)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return out
