"""Does the loop improve itself? Days of a simulated site whose detector starts weak.

    python bench/loop_weeks.py [--days 8] [--items-per-day 200] [--speed 288]
                               [--steps 600] [--gate-map50 0.3] [--dir /tmp/loupe-loop]

`loupe simulate --own-stack` on a Loupe of its own, through its public interfaces only,
with beat's clock sped up (app.simulation.cli.accelerated_settings). The site starts with
the tiny models: a classifier with random weights, which knows nothing, and a detector
trained `--pretrain-steps` on synthetic garments from elsewhere, where there were stains
and holes but never tears or pilling (a real site starts from weights trained on other
garments, never random ones; from random weights a CPU retraining of a thousand steps
stays under mAP50 0.3). This site's garments have all four types alike, so what the
inspectors teach it is what it has never seen. What is set here, and why:

- The detector serves and trains at 256 px (the tiny model's processor is saved so), where
  bench/train_detector.py measured that it learns on a CPU in minutes; retraining runs
  `--steps` steps at batch 8 and lr `--lr` (that bench's 5e-4) instead of the
  simulation's default 60, which teach it nothing. Each retraining starts from the
  champion, so what the site learns adds up only through promotions.
- The review band's low end is 0 (`LOUPE_THRESHOLD_LOW`): the random classifier's type
  probabilities keep every region's confidence low, and at 0.70 every garment would pass
  as a likely false alarm, so people would see nothing to learn from. At 0 every garment
  with a box goes to people and one without passes; what the loop can win is the
  detector finding the defects it missed (escapes) and leaving the good garments alone
  (human work).
- Retraining fires on `--min-samples` new verified samples (people see about a third of
  the garments, so about a day's reviews) and needs as many in all; an experiment is
  judged on half as many decided items per arm.
- The gate wants mAP50 `--gate-map50` and precision `--gate-precision` (measured at the
  detector threshold 0.25; floors that keep out a broken model, where the site defaults
  0.85 and 0.80 are out of a tiny model's reach in a CPU retrain) and, as always, no
  metric 0.02 worse than the champion's on the same photos; then the A/B test decides:
  half of the items go to the challenger (`LOUPE_EXPERIMENT_SHARE=0.5`) so that it is
  judged within a day.

It prints the field report's daily table (as `loupe simulate` does, also written to
DIR/days.csv) and the model versions with their gates and aliases. The stack's own
log goes to DIR/stack.log. Takes about `--days` x 86400 / `--speed` seconds plus the
stack's start, the starting detector's training and the backlog's drain (about an hour
with the defaults).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# Where the starting detector was trained, garments had stains and holes, never tears or
# pilling (models.training.synthetic.DEFECT_CLASSES); this site has all four alike.
ELSEWHERE = (0.5, 0.5, 0.0, 0.0)
LOUPE = str(Path(sys.executable).parent / "loupe")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=8)
    parser.add_argument("--items-per-day", type=int, default=200)
    parser.add_argument("--stations", type=int, default=2)
    parser.add_argument("--inspectors", type=int, default=3)
    parser.add_argument("--defect-rate", type=float, default=0.3)
    parser.add_argument("--speed", type=float, default=288.0, help="a day is 300 s")
    parser.add_argument("--steps", type=int, default=600, help="each retraining's steps")
    parser.add_argument("--lr", type=float, default=5e-4,
                        help="retraining's learning rate (the site default is 1e-4)")  # fmt: skip
    parser.add_argument("--min-samples", type=int, default=60,
                        help="samples a retraining needs, and new ones to fire")  # fmt: skip
    parser.add_argument("--gate-map50", type=float, default=0.3)
    parser.add_argument("--gate-precision", type=float, default=0.2,
                        help="at the site's detector threshold, 0.25")  # fmt: skip
    parser.add_argument("--size", type=int, default=256, help="the detector's input side")
    parser.add_argument("--pretrain-steps", type=int, default=600,
                        help="the starting detector's training elsewhere (0: random)")  # fmt: skip
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--dir", type=Path, default=Path("/tmp/loupe-loop"))
    args = parser.parse_args()

    if args.dir.exists():
        shutil.rmtree(args.dir)  # a fresh site: no registry, no history
    detector, classifier = _tiny_models(args.dir / "models", args.size, args.pretrain_steps)
    env = {
        **os.environ,
        "LOUPE_THRESHOLD_LOW": "0.0",
        "LOUPE_RETRAIN_STEPS": str(args.steps),
        "LOUPE_RETRAIN_BATCH_SIZE": "8",
        "LOUPE_RETRAIN_LR": str(args.lr),
        "LOUPE_GATE_MIN_MAP50": str(args.gate_map50),
        "LOUPE_GATE_MIN_PRECISION": str(args.gate_precision),
        "LOUPE_EXPERIMENT_SHARE": "0.5",
        # A quarter of the samples to judge a candidate on (the gate compares it with
        # the champion on them): a day's 60 would leave the default 15 % at 9 photos.
        "LOUPE_RETRAIN_VAL_SHARE": "0.25",
        # People see about a third of the garments (the defective ones and the boxes on
        # good ones): retrain on a day's reviews, judge an experiment on half a day's.
        "LOUPE_RETRAIN_MIN_SAMPLES": str(args.min_samples),
        "LOUPE_RETRAIN_MIN_NEW_SAMPLES": str(args.min_samples),
        "LOUPE_EXPERIMENT_MIN_SAMPLES": str(max(10, args.min_samples // 2)),
    }
    stack, table = args.dir / "stack", args.dir / "days.csv"
    command = [
        LOUPE, "simulate", "--own-stack", str(stack), "--detector", str(detector),
        "--classifier", str(classifier), "--days", str(args.days),
        "--items-per-day", str(args.items_per_day), "--stations", str(args.stations),
        "--inspectors", str(args.inspectors), "--defect-rate", str(args.defect_rate),
        "--speed", str(args.speed), "--seed", str(args.seed), "--csv", str(table),
    ]  # fmt: skip
    print(f"{args.days} days of {args.items_per_day} garments, a day lasting "
          f"{86400 / args.speed:.0f} s; the stack log: {args.dir / 'stack.log'}",
          flush=True)  # fmt: skip
    started = time.monotonic()
    registry = _Registry(stack)
    registry.start()
    with (args.dir / "stack.log").open("w") as log:
        simulation = subprocess.Popen(command, env=env, cwd=ROOT, stdout=subprocess.PIPE,
                                      stderr=subprocess.STDOUT, text=True)  # fmt: skip
        assert simulation.stdout is not None
        for line in simulation.stdout:
            log.write(line)
            if " | " not in line:  # the simulation's own lines, not the stack's log
                print(line, end="", flush=True)
    registry.stop.set()
    print("\nthe registry as last seen (loupe models list):")
    print(registry.last)
    print(f"{time.monotonic() - started:.0f} s in all")
    sys.exit(simulation.wait())


class _Registry(threading.Thread):
    """`loupe models list` every 30 s while the stack runs; the last answer is kept,
    since the stack (and its database) stops with the simulation."""

    def __init__(self, stack: Path) -> None:
        super().__init__(daemon=True)
        self.stack, self.stop, self.last = stack, threading.Event(), "(never read)"

    def run(self) -> None:
        while not self.stop.wait(30):
            read = subprocess.run([LOUPE, "models", "list", "--var-dir", str(self.stack)],
                                  capture_output=True, text=True, check=False)  # fmt: skip
            if read.returncode == 0:
                self.last = read.stdout


def _tiny_models(directory: Path, size: int, pretrain_steps: int) -> tuple[Path, Path]:
    """The classifier with random weights; the detector trained `pretrain_steps` on
    synthetic garments of another seed (none of the site's), as a model from elsewhere."""
    from transformers import RTDetrImageProcessorPil

    from models import tiny
    from models.training.evaluate import evaluate_detector
    from models.training.synthetic import DEFECT_CLASSES, make_dataset
    from models.training.train import train_detector

    init = tiny.build_tiny_detector(directory / "random", dict(enumerate(DEFECT_CLASSES)))
    RTDetrImageProcessorPil(size={"height": size, "width": size}).save_pretrained(init)
    detector = init
    if pretrain_steps:
        started = time.monotonic()
        elsewhere = make_dataset(1000, seed=1000, size=size, class_probs=ELSEWHERE)
        detector = train_detector(init_dir=init, out_dir=directory / "detector",
                                  samples=elsewhere, steps=pretrain_steps, batch_size=8,
                                  lr=5e-4).model_dir  # fmt: skip
        held_out = evaluate_detector(
            detector, make_dataset(100, seed=1001, size=size), score_threshold=0.25
        )  # the site's detector threshold
        print(f"the starting detector: {pretrain_steps} steps on 1,000 synthetic garments "
              f"from elsewhere (stains and holes only) in {time.monotonic() - started:.0f} s; "
              f"on 100 of this site's (all four types): mAP50 "
              f"{held_out.map50:.3f}, precision {held_out.precision:.3f}, recall "
              f"{held_out.recall:.3f} at score >= {held_out.score_threshold}",
              flush=True)  # fmt: skip
    return Path(detector), tiny.build_tiny_classifier(directory / "classifier")


if __name__ == "__main__":
    main()
