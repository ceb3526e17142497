"""RT-DETR defect detector: photos in, candidate defect boxes out.

Split like a transformers pipeline (preprocess / _forward / postprocess) so that
everything but the forward pass is testable with plain tensors.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

import torch
from PIL import Image
from transformers import AutoModelForObjectDetection, RTDetrImageProcessorPil

from models.contracts import Box, Detection
from models.loading import model_version, resolve_model_dir


class DetectorOutputs(Protocol):
    """What postprocess reads from the model output: raw logits and normalised boxes."""

    logits: torch.Tensor  # (batch, queries, classes)
    pred_boxes: torch.Tensor  # (batch, queries, 4) as (cx, cy, w, h) in 0..1


class RTDetrDetector:
    """Implements the `Detector` protocol with any RT-DETR checkpoint directory."""

    def __init__(
        self,
        model_dir: str | Path,
        threshold: float = 0.25,
        max_regions: int = 20,
        device: str = "cpu",
    ) -> None:
        self.model_dir = resolve_model_dir(str(model_dir))
        self.version = model_version(self.model_dir)
        self.threshold = threshold
        self.max_regions = max_regions
        self.device = torch.device(device)
        self.processor = RTDetrImageProcessorPil.from_pretrained(self.model_dir)
        model = AutoModelForObjectDetection.from_pretrained(self.model_dir)
        self.model = model.to(self.device).eval()

    def detect(self, images: list[Image.Image]) -> list[list[Detection]]:
        """Boxes per image, in that image's pixels (callers pass upright RGB images)."""
        if not images:
            return []
        batch = self.preprocess(images)
        outputs = self._forward(batch)
        return self.postprocess(outputs, [(image.height, image.width) for image in images])

    def preprocess(self, images: Sequence[Image.Image]) -> dict[str, torch.Tensor]:
        # Padding would shift the normalised box coordinates away from the original image;
        # a resize without padding keeps (0..1) relative to the photo whatever its aspect.
        batch = self.processor(images=list(images), return_tensors="pt", do_pad=False)
        return {"pixel_values": batch["pixel_values"]}

    def _forward(self, batch: dict[str, torch.Tensor]) -> Any:
        pixel_values = batch["pixel_values"].to(self.device, dtype=self.model.dtype)
        with torch.inference_mode():
            return self.model(pixel_values=pixel_values)

    def postprocess(
        self, outputs: DetectorOutputs, sizes: Sequence[tuple[int, int]]
    ) -> list[list[Detection]]:
        """Turns raw outputs into detections; `sizes` are the originals' (height, width)."""
        logits = outputs.logits.detach().float().cpu()
        boxes = outputs.pred_boxes.detach().float().cpu()
        return [
            decode_detections(logits[i], boxes[i], size, self.threshold, self.max_regions)
            for i, size in enumerate(sizes)
        ]


def decode_detections(
    logits: torch.Tensor,
    boxes: torch.Tensor,
    size: tuple[int, int],
    threshold: float,
    max_regions: int,
) -> list[Detection]:
    """One image's queries -> detections above threshold, best first, at most max_regions.

    RT-DETR is trained with a focal loss, so each class score is an independent sigmoid.
    Every class of a site's detector is some kind of defect, so a query's score is its
    best class. No NMS: RT-DETR's one-to-one matching already avoids duplicates.
    """
    height, width = size
    scores = logits.sigmoid().max(dim=-1).values
    cx, cy, w, h = boxes.unbind(-1)
    extent = torch.tensor([width, height, width, height], dtype=boxes.dtype)
    xyxy = torch.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], dim=-1) * extent
    xyxy = torch.minimum(xyxy.clamp(min=0), extent)
    # A box pushed entirely outside the photo has no area left after clipping.
    keep = (scores >= threshold) & (xyxy[:, 2] > xyxy[:, 0]) & (xyxy[:, 3] > xyxy[:, 1])
    order = scores[keep].argsort(descending=True)[:max_regions]
    kept_scores, kept_boxes = scores[keep][order], xyxy[keep][order]
    return [
        Detection(box=Box(*(float(v) for v in box.tolist())), score=float(score))
        for box, score in zip(kept_boxes, kept_scores, strict=True)
    ]
