"""Bounding-box-aware augmentation, with more of it for the classes a site rarely sees.

The field report's recipe: rotation within +-15 degrees, brightness 0.8-1.2, contrast
0.9-1.1, plus flips. Under-represented classes get two extras: their images are repeated
(`oversample`) and each of their images goes through a stronger pipeline (wider ranges
and sensor noise), so that the repeats are not pixel-identical copies.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

import albumentations as A
import cv2
import numpy as np
from PIL import Image

from models.contracts import Box
from models.training.balance import reachable_share
from models.training.synthetic import Annotation, Sample

# Rotation leaves empty corners. A flat mid-grey is used rather than reflecting the
# fabric, because a reflection would copy defects near the corner without their boxes.
_BORDER_FILL = 127


@dataclass(frozen=True)
class AugmentConfig:
    rotate_limit: float = 15.0  # degrees either way
    brightness: tuple[float, float] = (0.8, 1.2)  # multiplicative factor range
    contrast: tuple[float, float] = (0.9, 1.1)
    rotate_p: float = 0.5
    color_p: float = 0.8
    hflip_p: float = 0.5
    vflip_p: float = 0.5
    # "ellipse" keeps a rotated blob's box tight; "largest_box" rotates the box's corners,
    # which inflates every box by up to 1.3x at 15 degrees.
    rotate_box_method: Literal["ellipse", "largest_box"] = "ellipse"
    # A box mostly rotated out of the image is dropped rather than kept as a sliver.
    min_visibility: float = 0.3
    # Rare classes: ranges widened by this factor, and sensor noise added.
    rare_strength: float = 1.5
    # A class is rare when its class weight (see class_weights) is at least this.
    rare_weight: float = 1.5
    # Oversampling target: every class at least this share of all boxes; 0 turns it off.
    # Where more than 1 / min_share classes make it unreachable, oversample aims lower.
    min_share: float = 0.1


def class_weights(samples: Iterable[Sample]) -> dict[str, float]:
    """Inverse-frequency weight per class present: 1.0 when balanced, above 1 when rare.

    weight = total boxes / (number of classes x boxes of that class), the usual
    "balanced" weighting, so the weights of a balanced set are all exactly 1.
    """
    counts = _box_counts(samples)
    total = sum(counts.values())
    return {label: total / (len(counts) * count) for label, count in sorted(counts.items())}


def rare_classes(samples: Iterable[Sample], config: AugmentConfig) -> set[str]:
    return {label for label, w in class_weights(samples).items() if w >= config.rare_weight}


def oversample(samples: Sequence[Sample], min_share: float, max_extra: float = 3.0) -> list[Sample]:
    """The samples plus repeats of those holding rare classes, until each class has min_share.

    Repeats are picked deterministically (round robin, the images richest in the class
    first), so a run is reproducible from its snapshot. At most max_extra x len(samples)
    repeats are added: a class that only ever appears beside common ones may not reach
    its share, and the cap keeps that from growing the set without bound.

    With more than 1 / min_share classes present no data can give every class min_share
    (twelve defect types at 10 % would need 120 % of the boxes); the target is then
    half an even share, 1 / (2 x classes), so the rare classes are still lifted.
    """
    counts = _box_counts(samples)
    if not counts or min_share <= 0:
        return list(samples)
    min_share = reachable_share(min_share, len(counts))
    pools = {label: _richest_first(samples, label) for label in counts}
    picked = dict.fromkeys(counts, 0)
    result = list(samples)
    for _ in range(int(max_extra * len(samples))):
        total = sum(counts.values())
        label = min(counts, key=lambda name: (counts[name] / total, name))
        if counts[label] / total >= min_share:
            break
        pool = pools[label]
        repeat = pool[picked[label] % len(pool)]
        picked[label] += 1
        result.append(repeat)
        counts.update(a.label for a in repeat.annotations)
    return result


class Augmenter:
    """Applies the normal pipeline, or the stronger one to images holding a rare class."""

    def __init__(self, config: AugmentConfig, rare: Iterable[str] = (), seed: int = 0) -> None:
        self.rare = frozenset(rare)
        self.normal = build_pipeline(config, strength=1.0, seed=seed)
        self.strong = build_pipeline(config, strength=config.rare_strength, seed=seed + 1)

    def __call__(
        self, image: Image.Image, annotations: Sequence[Annotation]
    ) -> tuple[Image.Image, list[Annotation]]:
        is_rare = any(a.label in self.rare for a in annotations)
        pipeline = self.strong if is_rare else self.normal
        out = pipeline(
            image=np.asarray(image.convert("RGB")),
            bboxes=np.array([_xyxy(a.box) for a in annotations], dtype=np.float32).reshape(-1, 4),
            labels=[a.label for a in annotations],
        )
        boxes = [Box(*(float(v) for v in box)) for box in out["bboxes"]]
        moved = [Annotation(label, box) for label, box in zip(out["labels"], boxes, strict=True)]
        return Image.fromarray(out["image"]), moved


def build_pipeline(config: AugmentConfig, strength: float = 1.0, seed: int = 0) -> A.Compose:
    """The albumentations pipeline; strength > 1 widens every range around "no change"."""
    transforms: list[A.BasicTransform] = [
        A.HorizontalFlip(p=config.hflip_p),
        A.VerticalFlip(p=config.vflip_p),
        A.Rotate(
            limit=config.rotate_limit * strength,
            border_mode=cv2.BORDER_CONSTANT,
            fill=_BORDER_FILL,
            rotate_method=config.rotate_box_method,
            p=min(1.0, config.rotate_p * strength),
        ),
        A.ColorJitter(
            brightness=_widen(config.brightness, strength),
            contrast=_widen(config.contrast, strength),
            saturation=0.0,
            hue=0.0,
            p=min(1.0, config.color_p * strength),
        ),
    ]
    if strength > 1:
        transforms.append(A.GaussNoise(std_range=(0.01, 0.03 * strength), p=0.5))
    bbox_params = A.BboxParams(
        format="pascal_voc",
        label_fields=["labels"],
        min_visibility=config.min_visibility,
        clip=True,
        filter_invalid_bboxes=True,
    )
    return A.Compose(transforms, bbox_params=bbox_params, seed=seed)


def _widen(bounds: tuple[float, float], strength: float) -> tuple[float, float]:
    low, high = bounds
    return max(0.0, 1 - (1 - low) * strength), 1 + (high - 1) * strength


def _xyxy(box: Box) -> tuple[float, float, float, float]:
    return box.x1, box.y1, box.x2, box.y2


def _box_counts(samples: Iterable[Sample]) -> Counter[str]:
    return Counter(a.label for sample in samples for a in sample.annotations)


def _richest_first(samples: Sequence[Sample], label: str) -> list[Sample]:
    def share(sample: Sample) -> float:
        return sum(a.label == label for a in sample.annotations) / len(sample.annotations)

    holding = [s for s in samples if any(a.label == label for a in s.annotations)]
    return sorted(holding, key=lambda s: (-share(s), s.id))
