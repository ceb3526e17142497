"""RT-DETR defect detector: photos in, candidate defect boxes out.

Split like a transformers pipeline (preprocess / _forward / postprocess) so that
everything but the forward pass is testable with plain tensors.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol, cast

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from transformers import AutoModelForObjectDetection, RTDetrImageProcessorPil
from transformers.image_utils import SizeDict

from models.contracts import Box, Detection
from models.loading import model_version, resolve_model_dir


class DetectorOutputs(Protocol):
    """What postprocess reads from the model output: raw logits and normalised boxes."""

    logits: torch.Tensor  # (batch, queries, classes)
    pred_boxes: torch.Tensor  # (batch, queries, 4) as (cx, cy, w, h) in 0..1


class RTDetrDetector:
    """Implements the `Detector` protocol with any RT-DETR model and image processor."""

    def __init__(
        self,
        model: Any,
        processor: RTDetrImageProcessorPil,
        *,
        version: str,
        threshold: float = 0.25,
        max_regions: int = 20,
    ) -> None:
        self.model = model.eval()
        self.processor = processor
        self.version = version
        self.threshold = threshold
        self.max_regions = max_regions
        self.device = model.device

    @classmethod
    def load(
        cls, model_dir: str | Path, *, device: str = "cpu", dtype: str | torch.dtype = "auto",
        **options: Any,
    ) -> RTDetrDetector:  # fmt: skip
        """Loads a checkpoint directory (or hub id) with `from_pretrained`."""
        path = resolve_model_dir(str(model_dir))
        processor = RTDetrImageProcessorPil.from_pretrained(path)
        model = AutoModelForObjectDetection.from_pretrained(path, dtype=dtype)
        return cls(model.to(device), processor, version=model_version(path), **options)

    @property
    def input_size(self) -> tuple[int, int]:
        """(height, width) the model sees: photos need not be sent any larger."""
        # transformers declares the class default as a dict; every built processor holds a
        # SizeDict (BaseImageProcessor.__init__ converts it).
        size = cast(SizeDict, self.processor.size)
        return int(size.height or 640), int(size.width or 640)

    def detect(self, images: list[Image.Image]) -> list[list[Detection]]:
        """Boxes per image, in that image's pixels (callers pass upright RGB images)."""
        if not images:
            return []
        batch = self.preprocess(images)
        outputs = self._forward(batch)
        return self.postprocess(outputs, [(image.height, image.width) for image in images])

    def preprocess(self, images: Sequence[Image.Image]) -> dict[str, torch.Tensor]:
        """Resize to the model's input, rescale and normalise as the processor says.

        Done with torch on the model's device rather than with PIL on the CPU: at 32
        images a batch, PIL's resizing alone would cap a GPU at a few hundred images/s.
        The image is stretched to the input size without padding, so normalised boxes
        stay relative to the photo whatever its aspect ratio.
        """
        p = self.processor
        height, width = self.input_size
        resized = []
        for image in images:
            pixels = torch.from_numpy(np.asarray(image.convert("RGB"), dtype=np.uint8).copy())
            pixels = pixels.to(self.device).permute(2, 0, 1).unsqueeze(0).float()
            if p.do_resize:
                pixels = F.interpolate(
                    pixels, size=(height, width), mode="bilinear", antialias=True,
                    align_corners=False,
                )  # fmt: skip
            resized.append(pixels)
        batch = torch.cat(resized)
        if p.do_rescale:
            batch = batch * float(p.rescale_factor)
        if p.do_normalize:
            mean = torch.tensor(p.image_mean, device=self.device).view(1, 3, 1, 1)
            std = torch.tensor(p.image_std, device=self.device).view(1, 3, 1, 1)
            batch = (batch - mean) / std
        return {"pixel_values": batch}

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
    if not (torch.isfinite(logits).all() and torch.isfinite(boxes).all()):
        # fp16 overflow looks like "nothing found" once thresholded; an item must never be
        # auto-passed because the detector broke, so the request fails and goes to review.
        raise ValueError("the detector's output is not finite (NaN or infinity)")
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
