"""Starts and stops a local Ray instance with the inspection app on it.

Ray reads its environment when imported and when it starts its processes, so the
variables below are set before the first `import ray` in this module's functions.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

APP_NAME = "inspection"
OBJECT_STORE_BYTES = 200 * 1024 * 1024
RAY_ENVIRONMENT = {
    "RAY_AUTH_MODE": "disabled",
    "RAY_USAGE_STATS_ENABLED": "0",  # no telemetry calls from a warehouse machine
    # Without this Ray listens on every interface instead of 127.0.0.1.
    "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",
}
_REPO_ROOT = str(Path(__file__).resolve().parents[2])


def start(
    *,
    detector_dir: str | Path,
    classifier_dir: str | Path,
    host: str = "127.0.0.1",
    port: int = 8001,
    route_prefix: str = "/inspection",
    detector_threshold: float = 0.25,
    max_regions: int = 20,
    language: str = "en",
    num_cpus: int = 2,
) -> str:
    """Starts Ray and the app; returns the ingress URL. Call stop() even if this fails."""
    os.environ.update(RAY_ENVIRONMENT)
    # Replicas run in fresh Ray worker processes; they must import `models` as we do.
    paths = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    os.environ["PYTHONPATH"] = os.pathsep.join(dict.fromkeys([_REPO_ROOT, *paths]))
    import ray
    from ray import serve

    started = time.perf_counter()
    ray.init(
        num_cpus=num_cpus,
        object_store_memory=OBJECT_STORE_BYTES,
        include_dashboard=False,
        logging_level=logging.WARNING,
    )
    serve.start(http_options={"host": host, "port": port})
    deploy(
        detector_dir=detector_dir,
        classifier_dir=classifier_dir,
        route_prefix=route_prefix,
        detector_threshold=detector_threshold,
        max_regions=max_regions,
        language=language,
    )
    url = f"http://{host}:{port}{route_prefix}"
    logger.info("inspection app serving at %s after %.1f s", url, time.perf_counter() - started)
    return url


def deploy(
    *,
    detector_dir: str | Path,
    classifier_dir: str | Path,
    route_prefix: str = "/inspection",
    **settings: Any,
) -> None:
    """Deploys the app on a running Serve, or replaces the one deployed before.

    `serve.run` gives every call new code versions, so a second call is a rolling update:
    the old replicas keep serving until the new ones have loaded their models. Changing
    only `user_config` through a Serve config file (`serve deploy`, KubeRay) instead
    reaches the live replicas' `reconfigure()` without restarting them.
    """
    from ray import serve

    from models.serve.app import build_app

    app = build_app(detector_dir=str(detector_dir), classifier_dir=str(classifier_dir), **settings)
    serve.run(app, route_prefix=route_prefix, name=APP_NAME)


def stop() -> None:
    """Shuts Serve and Ray down; safe to call when either never started."""
    import ray
    from ray import serve

    try:
        if ray.is_initialized():
            serve.shutdown()
    finally:
        ray.shutdown()


def serve_forever(**options: Any) -> None:
    """Runs the app until SIGTERM or SIGINT, then stops it cleanly."""
    stopping = threading.Event()

    def _request_stop(signum: int, _frame: object) -> None:
        logger.info("signal %s received, stopping", signal.Signals(signum).name)
        stopping.set()

    previous: dict[int, Any] = {}
    try:
        url = start(**options)
        # Installed after ray.init, which puts in a SIGTERM handler that exits wherever the
        # main thread is; with ours the main thread leaves the wait and stops in order.
        for sig in (signal.SIGTERM, signal.SIGINT):
            previous[sig] = signal.signal(sig, _request_stop)
        print(f"serving at {url}", flush=True)  # the operator watches stdout
        stopping.wait()
    finally:
        stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
