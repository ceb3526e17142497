"""`python -m models.tuning TRAIN.jsonl --base DIR --out DIR [--steps N ...] [--trainable M]`.

Tunes a LoRA adapter on an exported instruction file (`loupe instructions export`) and
prints the adapter's manifest without the per-step losses. A manual tool for the ML team;
the product's run (registry, gate, experiment) is started from `loupe retrain`.
"""

from __future__ import annotations

import argparse
import json
import sys

from models.tuning import TuningOptions, tune_from_jsonl


def main(argv: list[str] | None = None) -> None:
    defaults = TuningOptions()
    parser = argparse.ArgumentParser(
        prog="python -m models.tuning", description="LoRA-tune the Loupe classifier."
    )
    parser.add_argument("jsonl", help="exported instruction examples")
    parser.add_argument("--base", required=True, help="the classifier directory to tune")
    parser.add_argument("--out", required=True, help="a new, empty adapter directory")
    parser.add_argument("--kinds", default="", help="e.g. A,B,C,D (default: all)")
    parser.add_argument("--snapshot", default=None, help="default: the one the file names")
    parser.add_argument("--rank", type=int, default=defaults.rank)
    parser.add_argument("--alpha", type=int, default=defaults.alpha)
    parser.add_argument("--steps", type=int, default=defaults.steps)
    parser.add_argument("--lr", type=float, default=defaults.learning_rate)
    parser.add_argument("--batch-size", type=int, default=defaults.batch_size)
    parser.add_argument("--seed", type=int, default=defaults.seed)
    parser.add_argument("--max-pixels", type=int, default=defaults.max_pixels)
    parser.add_argument("--device", default=None, help="default: cuda if present, else cpu")
    parser.add_argument(
        "--trainable", default="",
        help="base modules to train in full beside LoRA, e.g. merger (default: none; "
             "for a base whose vision merger never saw such crops, see models/tuning/lora.py)",
    )  # fmt: skip
    args = parser.parse_args(argv)
    kinds = _names(args.kinds) or None
    options = TuningOptions(
        rank=args.rank, alpha=args.alpha, steps=args.steps, learning_rate=args.lr,
        batch_size=args.batch_size, seed=args.seed, kinds=kinds, max_pixels=args.max_pixels,
        device=args.device, trainable_modules=_names(args.trainable),
    )  # fmt: skip

    def progress(step: int, steps: int, loss: float, left: float) -> None:
        if step == steps or step % 10 == 0:
            print(f"step {step}/{steps}  loss {loss:.4f}  ~{left:.0f} s left", file=sys.stderr)

    _, manifest = tune_from_jsonl(
        args.base, args.jsonl, args.out, options=options, snapshot=args.snapshot,
        on_progress=progress,
    )  # fmt: skip
    manifest["losses"] = {k: v for k, v in manifest["losses"].items() if k != "steps"}
    print(json.dumps(manifest, indent=2))


def _names(listed: str) -> tuple[str, ...]:
    return tuple(name.strip() for name in listed.split(",") if name.strip())


if __name__ == "__main__":
    main()
