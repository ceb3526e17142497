"""`python -m models.serve --detector-dir D --classifier-dir C [--port N ...]`."""

from __future__ import annotations

import argparse
import logging

from models.serve.runner import serve_forever


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m models.serve", description="Serve the Loupe inspection models."
    )
    parser.add_argument("--detector-dir", required=True)
    parser.add_argument("--classifier-dir", required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8001)
    parser.add_argument("--route-prefix", default="/inspection")
    parser.add_argument("--detector-threshold", type=float, default=0.25)
    parser.add_argument("--max-regions", type=int, default=20)
    parser.add_argument("--language", default="en", choices=["en", "ko"])
    parser.add_argument("--num-cpus", type=int, default=2)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    serve_forever(**{key: value for key, value in vars(args).items()})


if __name__ == "__main__":
    main()
