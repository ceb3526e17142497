"""The workers' and beat's part in what operators watch: JSON log lines that carry the
task's inspection and request ids, /metrics on LOUPE_METRICS_PORT, and the multiprocess
directory kept tidy as pool processes come and go. Connected by workers/celery_app.py.
"""

from __future__ import annotations

import logging
import os
from typing import Any

from celery import signals

from app.config import get_settings
from app.outbox import REQUEST_ID_HEADER
from app.telemetry.exposition import forget_process, serve_port
from models import logs


def _json() -> bool:
    return get_settings().log_format == "json"


@signals.after_setup_logger.connect
def _root_logger_as_json(logger: logging.Logger, **_: Any) -> None:
    """Celery has set up its handlers (hijacking nothing: workers/celery_app.py); in JSON
    mode they write JSON instead of its text."""
    if _json():
        logs.use_json(logger)


@signals.after_setup_task_logger.connect
def _task_logger_as_json(logger: logging.Logger, **_: Any) -> None:
    if _json():
        logs.use_json(logger)


@signals.task_prerun.connect
def _start_trail(task_id: str, task: Any, kwargs: dict[str, Any] | None = None, **_: Any) -> None:
    """Each task's log lines carry its inspection and the request that caused it (the
    relay sends the upload's request id as a header; models.serve.client passes it on)."""
    kwargs = kwargs or {}
    request_id = task.request.get(REQUEST_ID_HEADER) or kwargs.get("request_id")
    logs.start(
        inspection_id=kwargs.get("inspection_id"),
        request_id=request_id,
        task=task.name,
        task_id=task_id,
    )


@signals.task_postrun.connect
def _end_trail(**_: Any) -> None:
    logs.end()  # a pool thread runs the next task with a trail of its own


@signals.worker_init.connect
def _worker_metrics(**_: Any) -> None:
    serve_port(get_settings().metrics_port, "worker")


@signals.beat_init.connect
def _beat_metrics(**_: Any) -> None:
    serve_port(get_settings().metrics_port, "beat")


@signals.worker_process_shutdown.connect
def _pool_process_gone(pid: int | None = None, **_: Any) -> None:
    forget_process(pid or os.getpid())
