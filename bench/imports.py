"""How fast `loupe import yolo --as verified` brings a labeled history in, and in how much memory.

Generates N procedural garment photos with planted defects (models/training/synthetic.py,
small JPEGs, 90 % train / 10 % val) as a YOLO export in a temporary folder, then runs, each
in a fresh Python process so that its peak RSS is its own:

- the baseline: Pillow alone opening and decoding every file (`Image.open(p).load()`);
- `loupe import yolo PATH --as verified` end to end (the click command in-process: the
  census, check_image, hashing, the local object store, the rows; interpreter start and
  imports included), on a fresh migrated database;
- the same command again: every image already present (the idempotent re-run).

It prints images/s and peak RSS of each, the import's share of the baseline's speed, and
the rows it wrote. The files are in the page cache for all runs (they were just written).

    .venv/bin/python bench/imports.py                          # embedded PostgreSQL
    LOUPE_DATABASE_URL=postgresql+psycopg://postgres@127.0.0.1/postgres \
        .venv/bin/python bench/imports.py [--images 10000] [--size 256]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from multiprocessing import Pool
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.review_decide import database  # noqa: E402

# Peak RSS from VmHWM: getrusage's ru_maxrss survives exec on Linux, so a child would
# report this (numpy-loaded) process's peak instead of its own.
MEASURE = """
import json, re, sys, time
start = time.perf_counter()
{body}
peak_kb = int(re.search(r"VmHWM:\\s+(\\d+)", open("/proc/self/status").read()).group(1))
print(json.dumps({{"seconds": time.perf_counter() - start, "max_rss_mb": peak_kb / 1024}}))
"""
BASELINE = """
from pathlib import Path
from PIL import Image
for path in sorted(Path(sys.argv[1]).rglob("*.jpg")):
    with Image.open(path) as image:
        image.load()
"""
IMPORT = """
from app.cli import main
try:
    main(["import", "yolo", sys.argv[1], "--as", "verified", "--var-dir", sys.argv[2]],
         standalone_mode=False)
except SystemExit as exc:
    assert not exc.code, exc.code
"""


def _write_chunk(job: tuple[Path, int, int, int, int]) -> int:
    """Write samples [start, stop) of the dataset; returns how many boxes they have."""
    from models.training.synthetic import make_sample

    root, seed, size, start, stop = job
    boxes = 0
    for index in range(start, stop):
        image, annotations = make_sample(np.random.default_rng([seed, index]), size)
        split = "val" if index % 10 == 9 else "train"
        image.save(root / split / "images" / f"g{index:06d}.jpg", "JPEG", quality=85)
        lines = [
            f"{DEFECTS.index(a.label)} {(a.box.x1 + a.box.x2) / 2 / size:.6f} "
            f"{(a.box.y1 + a.box.y2) / 2 / size:.6f} {(a.box.x2 - a.box.x1) / size:.6f} "
            f"{(a.box.y2 - a.box.y1) / size:.6f}"
            for a in annotations
        ]
        (root / split / "labels" / f"g{index:06d}.txt").write_text("\n".join(lines))
        boxes += len(lines)
    return boxes


DEFECTS = ("stain", "hole", "tear", "pilling")


def generate(root: Path, n: int, size: int, seed: int = 13) -> tuple[int, int]:
    """The YOLO export: (boxes, bytes of images)."""
    for split in ("train", "val"):
        (root / split / "images").mkdir(parents=True)
        (root / split / "labels").mkdir(parents=True)
    (root / "data.yaml").write_text(
        f"names: {list(DEFECTS)}\ntrain: train/images\nval: val/images\n"
    )
    step = 250
    jobs = [(root, seed, size, s, min(n, s + step)) for s in range(0, n, step)]
    with Pool(os.cpu_count() or 2) as pool:
        boxes = sum(pool.map(_write_chunk, jobs))
    return boxes, sum(p.stat().st_size for p in root.rglob("*.jpg"))


def measure(body: str, *args: str, env: dict[str, str] | None = None) -> dict[str, float]:
    """Wall time of a fresh process running `body`, and the peak RSS it reports."""
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", MEASURE.format(body=body), *args],
        capture_output=True, text=True, env={**os.environ, **(env or {})}, cwd=ROOT,
    )  # fmt: skip
    wall = time.perf_counter() - started
    if done.returncode:
        raise SystemExit(f"failed:\n{done.stdout}\n{done.stderr[-3000:]}")
    *output, figures = done.stdout.strip().splitlines()
    return {**json.loads(figures), "wall": wall, "output": "\n".join(output)}  # type: ignore[dict-item]


def rows(url: str) -> dict[str, int]:
    from sqlalchemy import create_engine, text

    engine = create_engine(url)
    with engine.connect() as connection:
        tables = ("inspection", "photo", "review_task", "decision", "decision_region")
        counts = {t: connection.scalar(text(f"SELECT count(*) FROM {t}")) or 0 for t in tables}
    engine.dispose()
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=10_000)
    parser.add_argument("--size", type=int, default=256, help="side of each photo in pixels")
    args = parser.parse_args()
    with (
        tempfile.TemporaryDirectory() as tmp,
        database(os.environ.get("LOUPE_DATABASE_URL")) as url,
    ):
        export = Path(tmp) / "history"
        started = time.perf_counter()
        boxes, size_bytes = generate(export, args.images, args.size)
        print(f"generated {args.images:,} photos ({args.size}x{args.size} JPEG, "
              f"{size_bytes / 1e6:.0f} MB) with {boxes:,} boxes in "
              f"{time.perf_counter() - started:.0f} s", flush=True)  # fmt: skip
        env = {"LOUPE_DATABASE_URL": url}
        baseline = measure(BASELINE, str(export))
        first = measure(IMPORT, str(export), str(Path(tmp) / "var"), env=env)
        again = measure(IMPORT, str(export), str(Path(tmp) / "var"), env=env)
        for run in (first, again):
            print(next(ln for ln in run["output"].splitlines() if ln.startswith("imported")))
        print(f"rows: {rows(url)}")
        n = args.images
        print(f"\n{'run':<34} {'seconds':>8} {'images/s':>9} {'peak RSS MB':>12}")
        for name, run in (("Pillow open + load (baseline)", baseline),
                          ("loupe import --as verified", first),
                          ("the same again (all present)", again)):  # fmt: skip
            print(
                f"{name:<34} {run['wall']:>8.1f} {n / run['wall']:>9.0f} {run['max_rss_mb']:>12.0f}"
            )
        print(f"\nimport speed / baseline speed: {baseline['wall'] / first['wall']:.2f} "
              f"(the import takes {first['wall'] / baseline['wall']:.1f}x as long)")  # fmt: skip


if __name__ == "__main__":
    main()
