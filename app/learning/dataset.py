"""From a snapshot to training samples: is it fit for this detector, and the photos themselves.

A snapshot counts boxes per human defect type. A detector has its own classes: a
one-class detector (production's "defect") learns every type as its one class, while a
multi-class detector must have a class for every type it is shown. So whether a class
is empty can only be judged against the detector that will be fine-tuned, which is why
the worker repeats the start's sample-count check with the classes.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from PIL import Image

from app.learning.photos import fetch_photo
from app.policy.problems import Problem
from app.policy.retrain import DatasetRules, dataset_problems
from app.storage import ObjectStore
from models.contracts import Box
from models.training.synthetic import Annotation, Sample

EVALUATION_SPLITS = ("test", "val")


def detector_classes(model_dir: str | Path) -> list[str]:
    """The class names of the detector saved in model_dir, in class-id order."""
    config = json.loads((Path(model_dir) / "config.json").read_text())
    id2label = {int(k): str(v) for k, v in config.get("id2label", {}).items()}
    return [id2label[k] for k in sorted(id2label)]


def counts_per_class(
    type_counts: dict[str, int], classes: Sequence[str]
) -> tuple[dict[str, int], list[str]]:
    """Boxes per detector class, and the human types the detector has no class for."""
    if len(classes) == 1:
        return {classes[0]: sum(type_counts.values())}, []
    unknown = sorted(t for t, n in type_counts.items() if n and t not in classes)
    return {name: type_counts.get(name, 0) for name in classes}, unknown


def training_problems(
    train_samples: int, type_counts: dict[str, int], classes: Sequence[str], rules: DatasetRules
) -> list[Problem]:
    """Why the train split cannot fine-tune a detector with these classes; empty if it can."""
    counts, unknown = counts_per_class(type_counts, classes)
    problems = dataset_problems(counts, train_samples, list(classes), rules)
    if unknown:
        types, known = ", ".join(unknown), ", ".join(classes)
        text = f"human types {types} are not classes of the detector ({known})"
        problems.append(Problem(text, "refusal.unknown_types", types=types, classes=known))
    return problems


def shrink(
    image: Image.Image, annotations: Iterable[Annotation], max_side: int
) -> tuple[Image.Image, tuple[Annotation, ...]]:
    """The image scaled down so its longest side is at most max_side, boxes scaled with it.

    The detector's processor resizes every image anyway; keeping a 12-megapixel photo
    decoded in memory for each of thousands of samples would only cost memory.
    """
    scale = max_side / max(image.size)
    if scale >= 1:
        return image, tuple(annotations)
    size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    sx, sy = size[0] / image.width, size[1] / image.height
    resized = image.resize(size, Image.Resampling.BILINEAR)
    boxes = tuple(
        Annotation(a.label, Box(a.box.x1 * sx, a.box.y1 * sy, a.box.x2 * sx, a.box.y2 * sy))
        for a in annotations
    )
    return resized, boxes


def load_samples(
    manifest: dict[str, Any], store: ObjectStore, max_side: int
) -> dict[str, list[Sample]]:
    """Every sample of the manifest as a models.training Sample, by split.

    Each photo is checked against the content hash the snapshot recorded: a model must
    be trained and judged on exactly the data its snapshot names.
    """
    splits: dict[str, list[Sample]] = {"train": [], "val": [], "test": []}
    for entry in manifest["samples"]:
        image = fetch_photo(store, entry["key"], entry["sha256"])
        boxes = [Annotation(b["label"], Box(*b["box"])) for b in entry["boxes"]]
        image, annotations = shrink(image, boxes, max_side)
        splits[entry["split"]].append(Sample(entry["id"], image, annotations))
    return splits


def evaluation_split(splits: dict[str, list[Sample]]) -> tuple[str | None, list[Sample]]:
    """The frozen test set, or the validation split while no test set exists."""
    for name in EVALUATION_SPLITS:
        if splits[name]:
            return name, splits[name]
    return None, []
