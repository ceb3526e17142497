"""The Prometheus text of this process, or of every process sharing a multiprocess directory.

Where PROMETHEUS_MULTIPROC_DIR is set (`make run`'s children share var/metrics; uvicorn or
Celery with several processes share an emptyDir), each process writes its counters to
files there and a scrape sums them: the web app's /metrics then shows the workers' counters
too. Without it, this process's own registry is the answer.
"""

from __future__ import annotations

import logging
import os

from prometheus_client import (
    REGISTRY,
    CollectorRegistry,
    generate_latest,
    multiprocess,
    start_http_server,
)
from prometheus_client.registry import Collector

log = logging.getLogger("loupe.telemetry")
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"


def multiproc_dir() -> str | None:
    return os.environ.get(MULTIPROC_ENV) or None


def process_registry() -> Collector:
    """This process's metrics, or all processes' in multiprocess mode."""
    if multiproc_dir() is None:
        return REGISTRY
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    return registry


def exposition(*extra: Collector) -> bytes:
    """The text a scrape gets: the processes' metrics, then `extra` collectors' (the web
    app's queue reading), whose names never overlap them."""
    text = generate_latest(process_registry())
    for collector in extra:
        text += generate_latest(collector)
    return text


def serve_port(port: int | None, what: str) -> None:
    """/metrics on `port` for a process with no HTTP server of its own (a worker, beat, the
    relay), when LOUPE_METRICS_PORT sets one. A port already taken (beat embedded in a
    worker with `-B` tries the worker's) is logged, not fatal: the worker's is serving."""
    if not port:
        return
    try:
        start_http_server(port, registry=process_registry())
    except OSError as exc:
        log.warning("%s: metrics not served on port %d: %s", what, port, exc)
        return
    log.info("%s: metrics on port %d", what, port)


def forget_process(pid: int) -> None:
    """A process of the multiprocess directory has exited: its live gauges go (its counters
    stay, as they must: they counted what happened)."""
    if (path := multiproc_dir()) is not None:
        multiprocess.mark_process_dead(pid, path)  # type: ignore[no-untyped-call]
