"""Logging of the web app and the relay as LOUPE_LOG_FORMAT says (models.logs formats)."""

from __future__ import annotations

import logging

from models import logs


def configure_web(log_format: str) -> None:
    """JSON: the root logger and uvicorn's own handlers write JSON lines, and uvicorn's
    access lines give way to RequestTrail's, which carry the request's ids. Text: nothing
    changes (uvicorn's readable lines, as `make run` shows them)."""
    if log_format != "json":
        return
    logs.configure(fmt="json")
    logs.use_json(logging.getLogger("uvicorn"), logging.getLogger("uvicorn.error"))
    logging.getLogger("uvicorn.access").disabled = True
