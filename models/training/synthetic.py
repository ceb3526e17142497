"""Procedurally generated garment photos with planted defects and their exact boxes.

No labelled data can be downloaded here, so the training chain is exercised on images
drawn from a seed: a woven fabric (weave texture, optional stripes, folds and shading,
sensor noise) with 0-3 planted defects - a stain (blurred brown blob), a hole (dark
ellipse with a frayed rim), a tear (jagged line) or pilling (a cluster of light dots).

Each defect is drawn into its own mask first; its box is the bounding box of the mask's
non-zero pixels, and only those pixels are painted, so a box is exact by construction:
(x1, y1, x2, y2) in pixels with x2/y2 exclusive, as PIL's getbbox reports them.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from models.contracts import Box

DEFECT_CLASSES = ("stain", "hole", "tear", "pilling")
# Share of images with 0, 1, 2 and 3 defects: most returned garments show one or two.
DEFECT_COUNT_PROBS = (0.15, 0.35, 0.30, 0.20)
_PLACEMENT_TRIES = 20
# Stain masks are blurred; alpha below this is cut so that the box holds every painted pixel.
_STAIN_CUTOFF = 24


@dataclass(frozen=True)
class Annotation:
    label: str
    box: Box


@dataclass(frozen=True, eq=False)
class Sample:
    id: str
    image: Image.Image
    annotations: tuple[Annotation, ...]


@dataclass(frozen=True)
class _Layer:
    mask: Image.Image  # "L", full image size; 0 = untouched
    color: np.ndarray  # RGB in 0..1
    opacity: float


def make_dataset(
    n: int, seed: int, size: int = 256, class_probs: Sequence[float] | None = None
) -> list[Sample]:
    """n samples; sample i depends only on (seed, i), so a larger n extends a smaller one."""
    samples = []
    for index in range(n):
        rng = np.random.default_rng([seed, index])
        image, annotations = make_sample(rng, size, class_probs)
        samples.append(Sample(f"syn-{seed}-{index:05d}", image, tuple(annotations)))
    return samples


def make_sample(
    rng: np.random.Generator, size: int = 256, class_probs: Sequence[float] | None = None
) -> tuple[Image.Image, list[Annotation]]:
    """One garment photo (RGB, size x size) and its planted defects, drawn from rng."""
    pixels = _fabric(rng, size)
    count = int(rng.choice(len(DEFECT_COUNT_PROBS), p=DEFECT_COUNT_PROBS))
    annotations: list[Annotation] = []
    for _ in range(count):
        label = str(rng.choice(DEFECT_CLASSES, p=class_probs))
        placed = _place(rng, label, size, pixels, [a.box for a in annotations])
        if placed is None:
            continue  # no free spot: the image keeps fewer defects, its boxes stay true
        box, layers = placed
        for layer in layers:
            _paint(pixels, layer)
        annotations.append(Annotation(label, box))
    noise = rng.normal(0.0, rng.uniform(0.005, 0.025), pixels.shape).astype(np.float32)
    image = Image.fromarray(np.uint8(np.clip(pixels + noise, 0, 1) * 255 + 0.5), "RGB")
    return image, annotations


def _fabric(rng: np.random.Generator, size: int) -> np.ndarray:
    """A woven fabric as float RGB: weave, optional stripes, folds and a lighting gradient."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    angle = rng.uniform(0, math.pi)
    u = xx * math.cos(angle) + yy * math.sin(angle)
    v = -xx * math.sin(angle) + yy * math.cos(angle)
    # Light garments dominate returns; keeping the base light also keeps dark defects visible.
    base = rng.uniform(0.45, 0.9, 3).astype(np.float32)
    pixels = np.broadcast_to(base, (size, size, 3)).copy()
    if rng.random() < 0.5:
        period = rng.uniform(12, 48) * size / 256
        stripe = np.sin(2 * math.pi * v / period + rng.uniform(0, 6.3)) > rng.uniform(-0.3, 0.6)
        other = rng.uniform(0.4, 0.95, 3).astype(np.float32)
        mix = rng.uniform(0.3, 0.8)
        pixels = np.where(stripe[..., None], pixels * (1 - mix) + other * mix, pixels)
    weave_period = rng.uniform(2.5, 5.0)
    weave = np.sin(2 * math.pi * u / weave_period) * np.sin(2 * math.pi * v / weave_period)
    pixels = pixels * (1 + rng.uniform(0.03, 0.09) * weave[..., None])
    fold = np.sin(2 * math.pi * u / (size * rng.uniform(0.4, 1.2)) + rng.uniform(0, 6.3))
    light = 1 + rng.uniform(0.03, 0.12) * fold + rng.uniform(-0.15, 0.15) * (yy / size - 0.5)
    return np.clip(pixels * light[..., None], 0, 1).astype(np.float32)


def _place(
    rng: np.random.Generator, label: str, size: int, pixels: np.ndarray, taken: list[Box]
) -> tuple[Box, list[_Layer]] | None:
    """Draws a defect at random spots until one overlaps no earlier box (with a small gap)."""
    draw = _DRAWERS[label]
    for _ in range(_PLACEMENT_TRIES):
        center = rng.uniform(0.12 * size, 0.88 * size, 2)
        layers = draw(rng, size, (float(center[0]), float(center[1])), pixels)
        box = _union_box([layer.mask for layer in layers])
        if box is not None and not any(_near(box, other, gap=2) for other in taken):
            return box, layers
    return None


def _stain(
    rng: np.random.Generator, size: int, center: tuple[float, float], _pixels: np.ndarray
) -> list[_Layer]:
    scale = size / 256
    mask = Image.new("L", (size, size), 0)
    draw = ImageDraw.Draw(mask)
    radius = rng.uniform(7, 22) * scale
    # A few overlapping ellipses make an irregular blob rather than a perfect disc.
    for _ in range(int(rng.integers(2, 5))):
        cx, cy = (float(v) for v in np.asarray(center) + rng.normal(0, radius * 0.35, 2))
        rx, ry = (float(v) for v in radius * rng.uniform(0.5, 1.0, 2))
        draw.ellipse((cx - rx, cy - ry, cx + rx, cy + ry), fill=255)
    mask = mask.filter(ImageFilter.GaussianBlur(radius * rng.uniform(0.2, 0.4)))
    mask = mask.point(lambda value: value if value >= _STAIN_CUTOFF else 0)
    brown = np.array([0.42, 0.27, 0.12]) * rng.uniform(0.6, 1.1)
    return [_Layer(mask, brown, rng.uniform(0.55, 0.85))]


def _hole(
    rng: np.random.Generator, size: int, center: tuple[float, float], pixels: np.ndarray
) -> list[_Layer]:
    scale = size / 256
    rx, ry = rng.uniform(5, 14, 2) * scale
    tilt = rng.uniform(0, math.pi)
    ring = [_ellipse_point(center, rx, ry, tilt, t) for t in np.linspace(0, 2 * math.pi, 48)]
    hole = Image.new("L", (size, size), 0)
    ImageDraw.Draw(hole).polygon(ring, fill=255)
    fray = Image.new("L", (size, size), 0)
    draw = ImageDraw.Draw(fray)
    # Broken yarn ends stick out of the rim at random angles and lengths.
    for t in rng.uniform(0, 2 * math.pi, int(rng.integers(10, 24))):
        reach = 1 + rng.uniform(0.15, 0.5)
        inner = _ellipse_point(center, rx, ry, tilt, t)
        outer = _ellipse_point(center, rx * reach, ry * reach, tilt, t + rng.normal(0, 0.15))
        draw.line([inner, outer], fill=255, width=max(1, round(scale)))
    yarn = _local_color(pixels, center) * 1.15 + 0.08
    dark = np.full(3, rng.uniform(0.02, 0.12))
    return [_Layer(fray, yarn, 0.9), _Layer(hole, dark, 1.0)]


def _tear(
    rng: np.random.Generator, size: int, center: tuple[float, float], pixels: np.ndarray
) -> list[_Layer]:
    scale = size / 256
    length = rng.uniform(28, 80) * scale
    angle = rng.uniform(0, math.pi)
    along = np.linspace(-length / 2, length / 2, int(rng.integers(6, 12)))
    # Jitter across the tear's direction is what makes it jagged rather than a cut.
    across = rng.normal(0, 2.5 * scale, along.size)
    points = [
        (
            center[0] + a * math.cos(angle) - c * math.sin(angle),
            center[1] + a * math.sin(angle) + c * math.cos(angle),
        )
        for a, c in zip(along, across, strict=True)
    ]
    width = max(1, round(rng.uniform(1.5, 3.5) * scale))
    fringe = Image.new("L", (size, size), 0)
    ImageDraw.Draw(fringe).line(points, fill=255, width=width + 2 * max(1, round(scale)))
    gap = Image.new("L", (size, size), 0)
    ImageDraw.Draw(gap).line(points, fill=255, width=width)
    light = _local_color(pixels, center) * 1.2 + 0.1
    return [_Layer(fringe, light, 0.8), _Layer(gap, np.full(3, rng.uniform(0.05, 0.2)), 1.0)]


def _pilling(
    rng: np.random.Generator, size: int, center: tuple[float, float], pixels: np.ndarray
) -> list[_Layer]:
    scale = size / 256
    spread = rng.uniform(6, 16) * scale
    pills = Image.new("L", (size, size), 0)
    shadows = Image.new("L", (size, size), 0)
    pill_draw, shadow_draw = ImageDraw.Draw(pills), ImageDraw.Draw(shadows)
    for _ in range(int(rng.integers(8, 22))):
        x, y = np.asarray(center) + rng.normal(0, spread * 0.5, 2)
        r = rng.uniform(1.0, 2.5) * scale
        # A pill sits on the surface: a light ball with a soft shadow below-right of it.
        shadow_draw.ellipse((x - r + 1, y - r + 1, x + r + 1, y + r + 1), fill=255)
        pill_draw.ellipse((x - r, y - r, x + r, y + r), fill=255)
    light = np.minimum(_local_color(pixels, center) * 0.5 + 0.55, 1.0)
    shadow = _local_color(pixels, center) * 0.55
    return [_Layer(shadows, shadow, 0.6), _Layer(pills, light, 0.95)]


_DRAWERS = {"stain": _stain, "hole": _hole, "tear": _tear, "pilling": _pilling}


def _ellipse_point(
    center: tuple[float, float], rx: float, ry: float, tilt: float, t: float
) -> tuple[float, float]:
    x, y = rx * math.cos(t), ry * math.sin(t)
    return (
        center[0] + x * math.cos(tilt) - y * math.sin(tilt),
        center[1] + x * math.sin(tilt) + y * math.cos(tilt),
    )


def _local_color(pixels: np.ndarray, center: tuple[float, float]) -> np.ndarray:
    x = min(max(int(center[0]), 0), pixels.shape[1] - 1)
    y = min(max(int(center[1]), 0), pixels.shape[0] - 1)
    return np.clip(pixels[y, x], 0, 1)


def _union_box(masks: list[Image.Image]) -> Box | None:
    boxes = [b for b in (mask.getbbox() for mask in masks) if b is not None]
    if not boxes:
        return None
    x1, y1, x2, y2 = zip(*boxes, strict=True)
    return Box(float(min(x1)), float(min(y1)), float(max(x2)), float(max(y2)))


def _near(a: Box, b: Box, gap: float) -> bool:
    return not (
        a.x2 + gap <= b.x1 or b.x2 + gap <= a.x1 or a.y2 + gap <= b.y1 or b.y2 + gap <= a.y1
    )


def _paint(pixels: np.ndarray, layer: _Layer) -> None:
    alpha = np.asarray(layer.mask, dtype=np.float32)[..., None] / 255.0 * layer.opacity
    pixels *= 1 - alpha
    pixels += alpha * np.clip(layer.color, 0, 1).astype(np.float32)
