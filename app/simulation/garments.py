"""Garments with known defects: a photo as a camera station sends it, and its truth."""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np

from app.policy.disagreement import Box
from models.training.synthetic import make_sample

PHOTO_SIZE = 384


@dataclass(frozen=True)
class Garment:
    external_id: str
    photo: bytes  # JPEG
    defects: tuple[str, ...]  # planted defect types; none: a good garment
    boxes: tuple[Box, ...] = ()  # each defect's, in photo pixels, in the order of `defects`

    @property
    def truth(self) -> str:
        """The verdict a careful inspector gives: any planted defect is a reject."""
        return "reject" if self.defects else "pass"


def garment(seed: int, day: int, index: int, defect_rate: float) -> Garment:
    """Garment `index` of `day`: defective with probability `defect_rate`, drawn from
    (seed, day, index) alone, so that a run can be repeated."""
    rng = np.random.default_rng([seed, day, index])
    defective = bool(rng.random() < defect_rate)
    while True:  # the generator plants 0-3 defects; draw until the garment is as chosen
        image, annotations = make_sample(rng, PHOTO_SIZE)
        if bool(annotations) == defective:
            break
    out = io.BytesIO()
    image.save(out, "JPEG", quality=90)
    boxes = tuple((a.box.x1, a.box.y1, a.box.x2, a.box.y2) for a in annotations)
    return Garment(f"sim-{seed}-d{day}-{index:05d}", out.getvalue(),
                   tuple(a.label for a in annotations), boxes)  # fmt: skip
