"""What a photo's bytes cost on their way through Ray Serve's HTTP proxy, by size and
encoding: raw bytes (the inspection app's wire format, models/serve/wire.py) against
base64 inside JSON (its format until session 4).

    python bench/serve_payload.py [--requests 30]

A one-deployment app reads the body and decodes the photos as the ingress does, and
answers with their total size; no model runs. Station photos are 12 MP JPEGs of 3-5 MB.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from models.serve import runner  # noqa: E402
from models.serve.wire import inspect_request, parse_inspect_request  # noqa: E402
from tests.support import free_port  # noqa: E402

SIZES = (1_000, 140_000, 1_000_000, 4_000_000)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=30)
    args = parser.parse_args()
    os.environ.update(runner.RAY_ENVIRONMENT)
    for name, value in runner.RAY_DEFAULTS.items():
        os.environ.setdefault(name, value)
    import ray
    from ray import serve

    port = free_port()
    ray.init(num_cpus=2, include_dashboard=False, object_store_memory=runner.OBJECT_STORE_BYTES)
    try:
        serve.start(http_options={"host": "127.0.0.1", "port": port})
        serve.run(_reader(serve).bind(), name="payload", route_prefix="/payload")
        url = f"http://127.0.0.1:{port}/payload"
        print(f"\n{'photo bytes':>12} {'raw ms':>8} {'base64 JSON ms':>15}")
        with httpx.Client(timeout=60) as client:
            for size in SIZES:
                photo = os.urandom(size)
                headers, body = inspect_request("bench", [photo])
                as_json = {"photos": [base64.b64encode(photo).decode()]}
                raw = _median(client, url, args.requests, content=body, headers=headers)
                encoded = _median(client, url, args.requests, json=as_json)
                print(f"{size:>12,} {raw:8.1f} {encoded:15.1f}")
    finally:
        serve.shutdown()
        ray.shutdown()


def _reader(serve):  # type: ignore[no-untyped-def]
    @serve.deployment(ray_actor_options={"num_cpus": 0.25})
    class Reader:
        async def __call__(self, request):  # type: ignore[no-untyped-def]
            body = await request.body()
            if request.headers.get("content-type") == "application/json":
                photos = [base64.b64decode(p, validate=True) for p in json.loads(body)["photos"]]
            else:
                photos = parse_inspect_request(request.headers, body)[1]
            return {"bytes": sum(len(photo) for photo in photos)}

    return Reader


def _median(client: httpx.Client, url: str, requests: int, **request: Any) -> float:
    for _ in range(3):
        client.post(url, **request).raise_for_status()  # warm-up
    times = []
    for _ in range(requests):
        started = time.perf_counter()
        client.post(url, **request)
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


if __name__ == "__main__":
    main()
