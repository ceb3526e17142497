"""Samples to RT-DETR training batches, and the stable train/validation split.

A batch is what `RTDetrForObjectDetection` takes in transformers 5: `pixel_values` from
the detector's own image processor, prepared exactly as serving prepares a photo (resize
to the processor's size without padding, rescale to 0..1, no normalisation), and
`labels` as one dict per image with `class_labels` (LongTensor[n]) and `boxes`
(FloatTensor[n, 4], normalised cx, cy, w, h). Pixel boxes would be accepted silently and
give a loss of about 4,000, so the conversion lives here, in one tested place.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal

from models.training.synthetic import Annotation, Sample

if TYPE_CHECKING:
    import torch
    from PIL import Image
    from transformers import RTDetrImageProcessorPil

Split = Literal["train", "val"]


def split_for(item_id: str, val_share: float) -> Split:
    """ "val" for about val_share of all ids, the same answer in every process and run.

    A hash of the id, not Python's hash() (salted per process) and not a random draw:
    an inspection stays on its side of the split as the dataset grows, so a model is
    never validated on an item an earlier model was trained on.
    """
    if not 0.0 <= val_share <= 1.0:
        raise ValueError(f"val_share must be within 0..1, got {val_share}")
    digest = hashlib.sha256(item_id.encode("utf-8")).digest()
    position = int.from_bytes(digest[:8], "big") / 2**64
    return "val" if position < val_share else "train"


def split_samples(samples: Iterable[Sample], val_share: float) -> tuple[list[Sample], list[Sample]]:
    """(train, val) by split_for on each sample's id."""
    train: list[Sample] = []
    val: list[Sample] = []
    for sample in samples:
        (val if split_for(sample.id, val_share) == "val" else train).append(sample)
    return train, val


def label_ids(id2label: Mapping[int, str], labels: Iterable[str]) -> dict[str, int]:
    """Maps dataset labels to the model's class ids.

    A one-class detector (production's "defect") finds every defect type and leaves the
    naming to the classifier, so every label maps to its single class. A multi-class
    detector must know every label: a silent fallback would train on wrong classes.
    """
    wanted = sorted(set(labels))
    if len(id2label) == 1:
        [only] = id2label
        return dict.fromkeys(wanted, int(only))
    by_name = {name: int(index) for index, name in id2label.items()}
    unknown = [label for label in wanted if label not in by_name]
    if unknown:
        raise ValueError(f"labels {unknown} are not classes of the model {sorted(by_name)}")
    return {label: by_name[label] for label in wanted}


def target_for(
    annotations: Sequence[Annotation], size: tuple[int, int], ids: Mapping[str, int]
) -> dict[str, torch.Tensor]:
    """One image's labels; `size` is the image's (width, height) in pixels."""
    # Imported here: the dataset snapshot calls split_for from the web app and the worker,
    # which should not load torch for that.
    import torch

    width, height = size
    boxes = torch.zeros((len(annotations), 4), dtype=torch.float32)
    for row, annotation in enumerate(annotations):
        box = annotation.box
        x1, x2 = max(0.0, box.x1), min(float(width), box.x2)
        y1, y2 = max(0.0, box.y1), min(float(height), box.y2)
        boxes[row] = torch.tensor(
            [(x1 + x2) / 2 / width, (y1 + y2) / 2 / height, (x2 - x1) / width, (y2 - y1) / height]
        )
    classes = torch.tensor([ids[a.label] for a in annotations], dtype=torch.long)
    return {"class_labels": classes, "boxes": boxes}


def make_batch(
    items: Sequence[tuple[Image.Image, Sequence[Annotation]]],
    processor: RTDetrImageProcessorPil,
    ids: Mapping[str, int],
) -> dict[str, Any]:
    """pixel_values and labels for a list of (image, annotations).

    The resize keeps normalised coordinates valid because nothing is padded: (0..1) is
    relative to the whole image whatever its size, so the targets are computed from the
    original size.
    """
    images = [image.convert("RGB") for image, _ in items]
    pixels = processor(images=images, return_tensors="pt", do_pad=False)["pixel_values"]
    labels = [
        target_for(annotations, image.size, ids)
        for image, (_, annotations) in zip(images, items, strict=True)
    ]
    return {"pixel_values": pixels, "labels": labels}
