"""How far the tiny RT-DETR gets on synthetic garments in a fixed number of CPU steps.

    python bench/train_detector.py [--steps 4000] [--train 2000] [--held-out 200]
                                   [--size 256] [--seed 0] [--augment full] [--dir DIR]
                                   [--threads N] [--device cpu]

Trains the ~1 M parameter tiny RT-DETR from random weights on procedurally generated
garment photos (models/training/synthetic.py) and prints mAP50 / mAP50-95 before and
after on held-out images, with per-class figures. The defaults (4,000 steps of batch 8
at 256 px) took 23 minutes on the 2 shared CPU cores of the development machine with
full augmentation (0.33 s a step; bench/README.md); `--steps 1800` is about 10 minutes
there. The step count, not a time budget, is fixed, so runs are comparable across machines.
The held-out images come from another seed, so none of them is trained on.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import torch
from transformers import RTDetrImageProcessorPil

from models.tiny import build_tiny_detector
from models.training.augment import AugmentConfig
from models.training.evaluate import Metrics, evaluate_detector
from models.training.synthetic import DEFECT_CLASSES, make_dataset
from models.training.train import ProgressCallback, train_detector

AUGMENTS = {
    "full": AugmentConfig(),  # the field report's recipe: rotation, light, flips
    "flips": replace(AugmentConfig(), rotate_p=0.0, color_p=0.0),
    "none": None,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=4000)
    parser.add_argument("--train", type=int, default=2000, help="training images")
    parser.add_argument("--held-out", type=int, default=200, help="evaluation images")
    parser.add_argument("--size", type=int, default=256, help="image side in pixels")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--lr", type=float, default=5e-4)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--augment", choices=sorted(AUGMENTS), default="full")
    parser.add_argument(
        "--threads", type=int, default=None,
        help="torch threads; 1 is faster on a machine whose cores are busy with other work",
    )  # fmt: skip
    parser.add_argument("--device", default="cpu", help="cpu, or cuda where one is lent")
    parser.add_argument("--dir", type=Path, default=None, help="keep the models here")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.dir:
        run(args, args.dir)
    else:
        with tempfile.TemporaryDirectory(prefix="loupe-train-bench-") as scratch:
            run(args, Path(scratch))


def run(args: argparse.Namespace, root: Path) -> None:
    print(f"torch threads: {torch.get_num_threads()}, models in {root}")
    started = time.monotonic()
    train = make_dataset(args.train, args.seed, args.size)
    held_out = make_dataset(args.held_out, args.seed + 1, args.size)
    boxes = sum(len(s.annotations) for s in train)
    print(f"data: {len(train)} training images ({boxes} boxes), {len(held_out)} held out, "
          f"{args.size} px, made in {time.monotonic() - started:.1f} s")  # fmt: skip
    init = build_tiny_detector(root / "init", dict(enumerate(DEFECT_CLASSES)))
    # Train and serve at the synthetic images' size: the processor is saved with the model.
    size = {"height": args.size, "width": args.size}
    RTDetrImageProcessorPil(size=size).save_pretrained(init)
    before = evaluate_detector(init, held_out, device=args.device)
    print(f"before: {_headline(before)}")

    result = train_detector(
        init_dir=init,
        out_dir=root / "trained",
        samples=train,
        steps=args.steps,
        batch_size=args.batch_size,
        lr=args.lr,
        seed=args.seed,
        augment=AUGMENTS[args.augment],
        on_progress=_printer(report_every=max(1, args.steps // 20)),
        device=args.device,
    )
    print(f"trained {args.steps} steps ({result.epochs:.1f} epochs over {result.samples} "
          f"images, augment {args.augment}) in {result.seconds:.0f} s, "
          f"{result.seconds / args.steps:.3f} s a step")  # fmt: skip
    after = evaluate_detector(result.model_dir, held_out, device=args.device)
    print(f"after:  {_headline(after)}")
    _per_class(before, after)


def _printer(report_every: int) -> ProgressCallback:
    """Prints the mean loss of every report_every steps, with the ETA."""
    window: list[float] = []

    def progress(step: int, total: int, loss: float, eta_s: float) -> None:
        window.append(loss)
        if step % report_every == 0 or step == total:
            mean = sum(window) / len(window)
            window.clear()
            print(f"  step {step:>5}/{total}  loss {mean:7.3f}  eta {eta_s:6.0f} s", flush=True)

    return progress


def _headline(metrics: Metrics) -> str:
    return (
        f"mAP50 {_f(metrics.map50)}  mAP50-95 {_f(metrics.map50_95)}  "
        f"precision {_f(metrics.precision)}  recall {_f(metrics.recall)} "
        f"(at score >= {metrics.score_threshold}, IoU 0.5; {metrics.images} images)"
    )


def _per_class(before: Metrics, after: Metrics) -> None:
    print(f"{'class':<10}{'boxes':>6}{'AP50 before':>13}{'AP50 after':>12}"
          f"{'AP50-95':>9}{'precision':>11}{'recall':>8}")  # fmt: skip
    for name, metrics in after.per_class.items():
        print(
            f"{name:<10}{metrics.ground_truth:>6}{_f(before.per_class[name].ap50):>13}"
            f"{_f(metrics.ap50):>12}{_f(metrics.ap50_95):>9}{_f(metrics.precision):>11}"
            f"{_f(metrics.recall):>8}"
        )


def _f(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


if __name__ == "__main__":
    main()
