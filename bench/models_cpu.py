"""CPU throughput of the tiny models: detector images/s and classifier crops/s.

    python bench/models_cpu.py [--images 16] [--crops 8] [--dir var/bench-models]

The tiny models have random weights, so the figures measure the code path (processors,
batching, choice scoring, generation), not a real model's cost; the true-size GPU bench
is separate.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import torch
from PIL import Image, ImageDraw

from models.classifier import QwenClassifier
from models.detector import RTDetrDetector
from models.tiny import build_tiny_classifier, build_tiny_detector

T = TypeVar("T")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=16)
    parser.add_argument("--crops", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--dir", type=Path, default=None, help="where to keep the tiny models")
    args = parser.parse_args()
    if args.dir:
        run(args, args.dir)
    else:
        with tempfile.TemporaryDirectory(prefix="loupe-bench-") as scratch:
            run(args, Path(scratch))


def run(args: argparse.Namespace, root: Path) -> None:
    print(f"torch threads: {torch.get_num_threads()}, models in {root}")
    detector_dir = _timed("build tiny detector", lambda: build_tiny_detector(root / "det"))
    classifier_dir = _timed("build tiny classifier", lambda: build_tiny_classifier(root / "cls"))
    detector = _timed("load detector", lambda: RTDetrDetector(detector_dir, threshold=0.0))
    classifier = _timed("load classifier", lambda: QwenClassifier(classifier_dir))

    photos = [_photo((1280, 960), seed) for seed in range(args.images)]
    _throughput(
        "detector, batch of 1",
        len(photos),
        args.repeats,
        lambda: [detector.detect([photo]) for photo in photos],
        unit="images",
    )
    _throughput(
        f"detector, batch of {len(photos)}",
        len(photos),
        args.repeats,
        lambda: detector.detect(photos),
        unit="images",
    )
    crops = [_photo((224, 160), seed) for seed in range(args.crops)]
    _throughput(
        "classifier, type+severity",
        len(crops),
        args.repeats,
        lambda: classifier.classify(crops, with_reason=False),
        unit="crops",
    )
    _throughput(
        "classifier, type+severity+reason",
        len(crops),
        args.repeats,
        lambda: classifier.classify(crops),
        unit="crops",
    )


def _photo(size: tuple[int, int], seed: int) -> Image.Image:
    image = Image.new("RGB", size, (60 + seed * 7 % 100, 80, 120))
    x, y = size[0] * (seed % 5) // 6, size[1] * (seed % 3) // 4
    ImageDraw.Draw(image).ellipse((x, y, x + size[0] // 8, y + size[1] // 8), fill=(130, 90, 40))
    return image


def _timed(label: str, action: Callable[[], T]) -> T:
    started = time.perf_counter()
    result = action()
    print(f"{label:<40} {time.perf_counter() - started:8.3f} s")
    return result


def _throughput(
    label: str, count: int, repeats: int, action: Callable[[], object], unit: str
) -> None:
    action()  # warm-up: first calls allocate and pick kernels
    seconds = []
    for _ in range(repeats):
        started = time.perf_counter()
        action()
        seconds.append(time.perf_counter() - started)
    median = statistics.median(seconds)
    print(f"{label:<40} {count / median:8.2f} {unit}/s  ({median / count * 1000:.1f} ms each)")


if __name__ == "__main__":
    main()
