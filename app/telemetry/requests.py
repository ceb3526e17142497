"""Each request's trail: its id (the caller's X-Request-ID, or a new one), answered in the
same header, and, in JSON logging, one access line carrying the ids the request gathered
(the user, the inspection it made or touched).

A pure ASGI middleware, not BaseHTTPMiddleware: the trail set here must be the context the
route runs in (models.logs explains why the trail is a mutable dict).
"""

from __future__ import annotations

import logging
import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from models import logs

access_log = logging.getLogger("loupe.access")
HEADER = logs.REQUEST_ID_HEADER.lower().encode()
# Probes and scrapes every few seconds would drown the lines people look for.
QUIET_PATHS = frozenset({"/healthz", "/metrics"})


class RequestTrail:
    def __init__(self, app: ASGIApp, *, access_lines: bool) -> None:
        self.app = app
        self.access_lines = access_lines

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = next((v for k, v in scope["headers"] if k == HEADER), b"")
        request_id = logs.request_id(incoming.decode("latin-1"))
        status = 500  # what the caller gets if the app raises before answering
        started = time.perf_counter()

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", []), (HEADER, request_id.encode())]
            await send(message)

        with logs.trail(request_id=request_id):
            try:
                await self.app(scope, receive, send_with_id)
            finally:
                if self.access_lines:
                    self._log(scope, status, started)

    @staticmethod
    def _log(scope: Scope, status: int, started: float) -> None:
        path = scope["path"]
        level = logging.DEBUG if path in QUIET_PATHS else logging.INFO
        ms = round((time.perf_counter() - started) * 1000, 1)
        method = scope["method"]
        access_log.log(level, "%s %s %d %.1f ms", method, path, status, ms,
                       extra={"method": method, "path": path, "status": status,
                              "duration_ms": ms})  # fmt: skip
