"""`python -m models.serve --detector-dir D --classifier-dir C [--port N ...]`.

An empty `--detector-dir` runs classifier-only (cold start). The challenger, its share
and the experiment default to LOUPE_CHALLENGER_DETECTOR_URI, LOUPE_CHALLENGER_CLASSIFIER_URI,
LOUPE_CHALLENGER_SHARE and LOUPE_EXPERIMENT, so `loupe run` and compose pass them through
the environment.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable
from typing import Any

from models import logs
from models.serve.runner import serve_forever


def main(
    argv: list[str] | None = None,
    follow: Callable[[], dict[str, Any] | None] | None = None,
) -> None:
    """Serve as the arguments say; `follow` (see serve_forever) may change the models later."""
    env = os.environ.get
    parser = argparse.ArgumentParser(
        prog="python -m models.serve", description="Serve the Loupe inspection models."
    )
    parser.add_argument("--detector-dir", default="", help='"" runs classifier-only')
    parser.add_argument("--classifier-dir", required=True)
    parser.add_argument("--challenger-detector-dir", default=env("LOUPE_CHALLENGER_DETECTOR_URI"))
    parser.add_argument(
        "--challenger-classifier-dir", default=env("LOUPE_CHALLENGER_CLASSIFIER_URI")
    )
    parser.add_argument(
        "--classifier-adapter", default=None,
        help="a LoRA adapter (directory, file:// or s3:// URI) on --classifier-dir",
    )  # fmt: skip
    parser.add_argument(
        "--challenger-classifier-adapter", default=None,
        help="a LoRA adapter on --challenger-classifier-dir",
    )  # fmt: skip
    parser.add_argument(
        "--challenger-prompt-version", default=env("LOUPE_CHALLENGER_PROMPT_VERSION"),
        help="the challenger classifier's prompts (default: --prompt-version)",
    )  # fmt: skip
    parser.add_argument(
        "--challenger-share", type=float, default=float(env("LOUPE_CHALLENGER_SHARE", "0"))
    )
    parser.add_argument("--experiment", default=env("LOUPE_EXPERIMENT", ""))
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8001)
    parser.add_argument("--route-prefix", default="/inspection")
    parser.add_argument("--detector-threshold", type=float, default=0.25)
    parser.add_argument("--max-regions", type=int, default=20)
    parser.add_argument("--language", default="en", choices=["en", "ko"])
    parser.add_argument("--prompt-version", default=env("LOUPE_PROMPT_VERSION", "v2"))
    parser.add_argument(
        "--timeout-s", type=float, default=float(env("LOUPE_SERVE_TIMEOUT_S", "50"))
    )
    min_region = int(env("LOUPE_MIN_REGION_PX", "4"))
    parser.add_argument("--min-region-px", type=int, default=min_region)
    parser.add_argument("--num-cpus", type=int, default=2)
    parser.add_argument("--device", default=env("LOUPE_MODEL_DEVICE", "cpu"), help="cpu or cuda")
    parser.add_argument(
        "--gpus-per-replica", type=float, default=0.25,
        help="with --device cuda: champion and challenger models share one GPU at 0.25",
    )  # fmt: skip
    args = vars(parser.parse_args(argv))
    logs.configure(text_format="%(asctime)s %(levelname)s %(message)s")
    gpus = args.pop("gpus_per_replica")
    if args["device"].startswith("cuda"):
        args["actor_options"] = {"num_cpus": 1, "num_gpus": gpus}
    serve_forever(follow=follow, **args)


if __name__ == "__main__":
    main()
