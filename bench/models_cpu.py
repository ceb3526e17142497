"""The inspection pipeline with tiny models on CPU: model throughput, and what Ray Serve and
Celery add over a direct in-process call, measured in one run.

    python bench/models_cpu.py [--requests 30] [--dir var/bench-models]

The tiny models have random weights, so model figures measure the code path (processors,
batched two-step scoring, generation), not a real model's cost: bench/models_gpu.py does
the true-size models. The overhead part sends the same requests (one 320x240 photo, one
region) three ways, interleaved request by request:

  in-process   models.pipeline with the models loaded in this process
  Ray Serve    HTTP -> ingress -> detector and classifier deployments (models.serve)
  + Celery     a Celery task (Redis broker and result) naming a stored photo, whose
               worker reads it and makes the same HTTP call

Ray gives each replica one torch thread and the in-process run is pinned to one too, yet
the same forward pass runs 10-40 ms faster or slower in one process than in another on
this shared 2-core machine. So each request's wall time is split: the ms the models
computed (each batch times itself where it runs, and the pipeline reports it in its
timings) and the rest, which is the plumbing. "Added" compares the rest's medians.
`@serve.batch` waits up to batch_wait_timeout_s
for more requests before running a batch that is not full; that wait is measured apart
(0 and the production 10 ms), because it is a latency the operator trades for batching.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import httpx
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import ray_floor  # noqa: E402
from models import pipeline  # noqa: E402
from models.classifier import QwenClassifier  # noqa: E402
from models.detector import RTDetrDetector  # noqa: E402
from models.tiny import build_tiny_classifier, build_tiny_detector  # noqa: E402
from tests.support import free_port, garment_photo  # noqa: E402

T = TypeVar("T")
REDIS = "redis://127.0.0.1:6379/14"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=30, help="per way, for the overhead")
    parser.add_argument("--images", type=int, default=8)
    parser.add_argument("--crops", type=int, default=8)
    parser.add_argument("--dir", type=Path, default=None, help="where to keep the tiny models")
    args = parser.parse_args()
    if args.dir:
        run(args, args.dir)
    else:
        with tempfile.TemporaryDirectory(prefix="loupe-bench-") as scratch:
            run(args, Path(scratch))


def run(args: argparse.Namespace, root: Path) -> None:
    detector_dir = _timed("build tiny detector", lambda: build_tiny_detector(root / "det"))
    classifier_dir = _timed("build tiny classifier", lambda: build_tiny_classifier(root / "cls"))
    torch.set_num_threads(1)  # as each Serve replica has
    detector = _timed("load detector", lambda: RTDetrDetector.load(detector_dir, max_regions=1))
    classifier = _timed("load classifier", lambda: QwenClassifier.load(classifier_dir))
    print(f"\ntorch threads: {torch.get_num_threads()}")
    model_throughput(args, detector, classifier)
    detector.threshold = 0.0  # every request then has exactly one region to classify
    photos = [garment_photo(seed=seed) for seed in range(args.requests)]
    report(overhead(detector, classifier, detector_dir, classifier_dir, photos))


def model_throughput(
    args: argparse.Namespace, detector: RTDetrDetector, classifier: QwenClassifier
) -> None:
    images = [
        pipeline.decode_all([garment_photo((1280, 960), seed=s)])[0] for s in range(args.images)
    ]
    crops = [pipeline.decode_all([garment_photo((224, 160), seed=s)])[0] for s in range(args.crops)]
    _throughput("detector, batch of 1", len(images), lambda: [detector.detect([i]) for i in images])
    _throughput(f"detector, batch of {len(images)}", len(images), lambda: detector.detect(images))
    _throughput("classifier, step 1 + 2, one by one", len(crops),
                lambda: [classifier.classify([c]) for c in crops])  # fmt: skip
    _throughput(f"classifier, step 1 + 2, batch of {len(crops)}", len(crops),
                lambda: classifier.classify(crops))  # fmt: skip
    labels = [("stain", "minor", "stain")] * len(crops)
    _throughput(f"classifier, reasons, batch of {len(crops)}", len(crops),
                lambda: classifier.explain(crops, labels, "en"))  # fmt: skip


def overhead(
    detector: RTDetrDetector, classifier: QwenClassifier, detector_dir: Path,
    classifier_dir: Path, photos: list[bytes],
) -> dict[str, list[Sample]]:  # fmt: skip
    """Latencies of the same requests made three ways, interleaved request by request so
    that other load on the machine weighs on every way alike."""
    from models.serve import runner
    from models.serve.client import HttpInferenceClient

    loop = asyncio.new_event_loop()  # one loop, as a long-running process would have
    models, options = pipeline.in_process(detector, classifier), pipeline.PipelineOptions()
    settings = {"detector_dir": detector_dir, "classifier_dir": classifier_dir}
    settings.update(detector_threshold=0.0, max_regions=1, batch_wait_timeout_s=0.0)
    measured: dict[str, list[Sample]] = {}
    try:
        url = _timed("start Ray Serve", lambda: runner.start(port=free_port(), **settings))
        _timed("deploy Ray's floor (bench/ray_floor.py)", ray_floor.deploy)
        client = HttpInferenceClient(url, timeout_s=120)
        floor = httpx.Client(base_url=url.rsplit("/", 1)[0] + ray_floor.ROUTE_PREFIX, timeout=120)
        with celery_task(url, photos) as through_celery, floor:
            ways = {
                "in-process": lambda p: (
                    loop.run_until_complete(
                        pipeline.inspect([p], models, options, "champion")
                    ).timings
                ),
                "Ray Serve": lambda p: client.infer(inspection_id="bench", photos=[p]).timings,
                "Ray Serve + Celery": through_celery,
                FLOOR_PROXY: lambda p: {"bytes": floor.post("", content=p).json()["bytes"]},
                FLOOR_HOP: lambda p: floor.post("/hop", content=p).json(),
            }
            measured |= _interleaved(ways, photos, suffix="")
            runner.deploy(**{**settings, "batch_wait_timeout_s": 0.01})  # user_config only
            for way in ("Ray Serve + Celery", FLOOR_PROXY, FLOOR_HOP):
                del ways[way]
            measured |= _interleaved(ways, photos, suffix=", 10 ms batch wait")
    finally:
        runner.stop()
        loop.close()
    return measured


Sample = dict[str, float]  # one request: "wall_ms" and the pipeline's timings
FLOOR_PROXY, FLOOR_HOP = "Ray floor: proxy to a no-op", "Ray floor: + one handle call"


def _interleaved(
    ways: dict[str, Callable[[bytes], Any]], photos: list[bytes], suffix: str
) -> dict[str, list[Sample]]:
    """Per way, each request's wall-clock ms beside the timings the pipeline reported,
    which include the ms the models computed."""
    for call in ways.values():
        call(photos[0])  # warm-up
    samples: dict[str, list[Sample]] = {}
    for photo in photos:
        for name, call in ways.items():
            started = time.perf_counter()
            timings = call(photo)
            wall_ms = (time.perf_counter() - started) * 1000
            samples.setdefault(name + suffix, []).append({"wall_ms": wall_ms, **timings})
    return samples


# The worker runs in a process of its own, as in production, so that it does not share a
# GIL with the in-process measurement.
_WORKER = """
import sys
from pathlib import Path
from celery import Celery
from models.serve.client import HttpInferenceClient
app = Celery("bench", broker=sys.argv[1], backend=sys.argv[1])
client = HttpInferenceClient(sys.argv[2], timeout_s=120)

@app.task(name="bench.infer")
def infer(photo_path):
    photos = [Path(photo_path).read_bytes()]
    return client.infer(inspection_id="bench", photos=photos).timings

app.worker_main(["worker", "--pool=solo", "--loglevel=WARNING", "--without-mingle",
                 "--without-gossip", "--without-heartbeat"])
"""


@contextmanager
def celery_task(url: str, photos: list[bytes]) -> Iterator[Callable[[bytes], Any]]:
    """A Celery task (Redis broker and results) that makes the worker's HTTP call.

    As in production, the task names its photos and the worker reads them from storage
    (here a directory, as `make run`'s local store): photos never travel through Redis.
    """
    from celery import Celery

    stored = Path(tempfile.mkdtemp(prefix="bench-photos-"))
    paths = {}
    for index, photo in enumerate(photos):
        paths[photo] = stored / f"{index}.jpg"
        paths[photo].write_bytes(photo)
    broker = _redis_url()
    root = Path(__file__).resolve().parents[1]
    worker = subprocess.Popen(
        [sys.executable, "-c", _WORKER, broker, url], cwd=root,
        env={**os.environ, "PYTHONPATH": str(root)}, stdout=subprocess.DEVNULL,
    )  # fmt: skip
    app = Celery("bench", broker=broker, backend=broker)
    try:
        call = lambda photo: app.send_task("bench.infer", args=[str(paths[photo])]).get(timeout=120)  # noqa: E731
        yield call
    finally:
        worker.terminate()
        worker.wait(timeout=30)
        shutil.rmtree(stored)


def _redis_url() -> str:
    import redis

    try:
        redis.Redis.from_url(REDIS, socket_connect_timeout=1).ping()
        return REDIS
    except (redis.RedisError, OSError):
        from app.embedded import EmbeddedRedis

        server = EmbeddedRedis(Path(tempfile.mkdtemp(prefix="bench-redis-")))
        return server.start()  # stopped by the OS when this process exits


# Where a request's time goes besides the models' compute, each the median over requests.
PARTS: dict[str, Callable[[Sample], float]] = {
    "rest": lambda t: t["wall_ms"] - t["detect_model_ms"] - t["classify_model_ms"],
    "outside the pipeline": lambda t: t["wall_ms"] - t["total_ms"],
    "detector hop": lambda t: t["detect_ms"] - t["detect_model_ms"],
    "classifier hop": lambda t: t["classify_ms"] - t["classify_model_ms"],
}


def report(measured: dict[str, list[Sample]]) -> None:
    """The rest (wall time less the models' compute) is the plumbing: unlike wall time it
    does not move when one process happens to compute faster than another."""
    wall: dict[str, Callable[[Sample], float]] = {"wall": lambda t: t["wall_ms"]}
    median = {
        (way, part): statistics.median(measure(t) for t in samples)
        for way, samples in measured.items()
        # The floor's no-ops report no pipeline timings: only their wall time counts.
        for part, measure in (wall if way.startswith("Ray floor") else PARTS | wall).items()
    }
    for suffix in ("", ", 10 ms batch wait"):
        base = "in-process" + suffix
        print(f"\n{'one photo, one region' + suffix:<40} {'wall':>6} {'rest':>6} {'added':>6}"
              f"   outside, detector hop, classifier hop")  # fmt: skip
        for name in ("in-process", "Ray Serve", "Ray Serve + Celery"):
            way = name + suffix
            if way not in measured:
                continue
            added = median[way, "rest"] - median[base, "rest"]
            parts = ", ".join(f"{median[way, p]:.1f}" for p in list(PARTS)[1:])
            print(f"{name:<40} {median[way, 'wall']:6.1f} {median[way, 'rest']:6.1f} "
                  f"{added:6.1f}   {parts}")  # fmt: skip
    serve = median["Ray Serve", "rest"] - median["in-process", "rest"]
    celery = median["Ray Serve + Celery", "rest"] - median["Ray Serve", "rest"]
    added_wall = median["Ray Serve + Celery", "wall"] - median["in-process", "wall"]
    print(
        f"\nadded per request, beside the models' compute: Ray Serve {serve:.1f} ms, "
        f"Celery {celery:.1f} ms more, {serve + celery:.1f} ms in all (target: under 5 ms)"
    )
    print(f"added wall-clock time, compute included: {added_wall:.1f} ms")
    proxy = median[FLOOR_PROXY, "wall"]
    hop = statistics.median(t["hop_ms"] for t in measured[FLOOR_HOP])
    floor = proxy + 2 * hop  # the pipeline: one request through the proxy, two handle calls
    print(
        f"Ray's own floor in this run: proxy to a no-op {proxy:.1f} ms, a handle call "
        f"{hop:.1f} ms; the pipeline's shape (proxy + 2 calls) {floor:.1f} ms. Ray Serve "
        f"adds {serve:.1f} ms = {serve / floor:.1f}x that floor (goal: within 2x)"
    )


def _timed(label: str, action: Callable[[], T]) -> T:
    started = time.perf_counter()
    result = action()
    print(f"{label:<40} {time.perf_counter() - started:8.3f} s")
    return result


def _throughput(label: str, count: int, action: Callable[[], object], repeats: int = 3) -> None:
    action()  # warm-up: first calls allocate and pick kernels
    seconds = []
    for _ in range(repeats):
        started = time.perf_counter()
        action()
        seconds.append(time.perf_counter() - started)
    median = statistics.median(seconds)
    print(f"{label:<40} {count / median:8.2f} /s  ({median / count * 1000:.1f} ms each)")


if __name__ == "__main__":
    main()
