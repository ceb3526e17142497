"""Log lines an operator can follow: one JSON object a line, or the readable text people read.

Standard library only, so that the web app, the workers, the relay and the Serve processes
(models/ never imports app) format alike. LOUPE_LOG_FORMAT=json turns JSON on; the default
`text` leaves each process's readable format as it was (`make run` prefixes those lines).

The ids of the work in hand (the inspection, the request, the user) ride in a context
variable holding one mutable dict per request or task. Mutable on purpose: FastAPI runs a
sync dependency (the one that finds the user) in a worker thread with a *copy* of the
context, so a value set there would never reach the route or the access line; an update
to the shared dict does. Every line logged while it is set carries the ids, so one grep of
an inspection id finds its upload, its inference (worker and Serve) and its decision.
"""

from __future__ import annotations

import json
import logging
import os
import re
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

FORMAT_ENV = "LOUPE_LOG_FORMAT"
FORMATS = ("text", "json")
# The ids a line carries when known, in this order.
IDS = ("inspection_id", "request_id", "user_id")
REQUEST_ID_HEADER = "X-Request-ID"
# A caller's request id is kept only if it is short and plain: it lands in every log line.
_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
# What every LogRecord has; anything else on a record came from `extra=` and is logged too.
_STANDARD = frozenset(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {
    "message",
    "asctime",
    "taskName",
}

TRAIL: ContextVar[dict[str, Any] | None] = ContextVar("loupe_trail", default=None)


def current() -> dict[str, Any]:
    """The ids known here and now (a copy)."""
    return dict(TRAIL.get() or {})


def bind(**ids: Any) -> None:
    """Add ids to the request's or task's trail (a no-op outside one; None values are skipped)."""
    trail_ids = TRAIL.get()
    if trail_ids is not None:
        trail_ids.update({k: v for k, v in ids.items() if v is not None})


@contextmanager
def trail(**ids: Any) -> Iterator[dict[str, Any]]:
    """A fresh trail for one request or task, ended with it."""
    token = TRAIL.set({k: v for k, v in ids.items() if v is not None})
    try:
        yield TRAIL.get() or {}
    finally:
        TRAIL.reset(token)


def start(**ids: Any) -> None:
    """A fresh trail for the task about to run in this thread (Celery's prerun signal; its
    postrun calls `end`). Unlike `trail`, the two halves are separate calls."""
    TRAIL.set({k: v for k, v in ids.items() if v is not None})


def end() -> None:
    TRAIL.set(None)


def request_id(incoming: str | None = None) -> str:
    """The caller's request id when it is a plain token, else a new one."""
    if incoming and _REQUEST_ID.fullmatch(incoming):
        return incoming
    return uuid.uuid4().hex


def log_format() -> str:
    """The format LOUPE_LOG_FORMAT asks for; an unknown value is refused."""
    value = os.environ.get(FORMAT_ENV, "text").strip().lower() or "text"
    if value not in FORMATS:
        raise ValueError(f"{FORMAT_ENV} is text or json, not {value!r}")
    return value


class JsonFormatter(logging.Formatter):
    """One JSON object a line: time (UTC), level, logger, message, the trail's ids, any
    `extra=` fields, and the traceback of an exception as one string."""

    def format(self, record: logging.LogRecord) -> str:
        moment = datetime.fromtimestamp(record.created, UTC)
        entry: dict[str, Any] = {
            "time": moment.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        known = TRAIL.get() or {}
        for key in (*IDS, *known):
            value = record.__dict__.get(key, known.get(key))
            if value is not None and key not in entry:
                entry[key] = value
        for key, value in record.__dict__.items():
            if key not in _STANDARD and key not in entry and not key.startswith("_"):
                entry[key] = value
        entry["pid"] = record.process
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


def use_json(*loggers: logging.Logger) -> None:
    """Give the handlers these loggers already have (uvicorn's, Celery's) the JSON format."""
    for logger in loggers:
        for handler in logger.handlers:
            handler.setFormatter(JsonFormatter())


def configure(
    level: int | str = logging.INFO, text_format: str | None = None, fmt: str | None = None
) -> str:
    """Set up the root logger for this process as `fmt` (default: LOUPE_LOG_FORMAT) says;
    returns the format.

    json: one handler on stderr with JsonFormatter, replacing any other. text: as
    `logging.basicConfig(format=text_format)` did before (nothing changes for people).
    """
    chosen = fmt or log_format()
    root = logging.getLogger()
    if chosen == "json":
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(JsonFormatter())
        root.handlers = [handler]
        root.setLevel(level)
    else:
        logging.basicConfig(level=level, format=text_format or logging.BASIC_FORMAT)
    return chosen
