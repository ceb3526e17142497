"""A real HTTP receiver for webhook tests, and a way to run the outbox's webhook messages
through the registered Celery task in this process.

The receiver is the standard library's threading HTTP server on a free port: it records
every request (headers, body, when it arrived) and answers each with the next status of
its script (then 200), optionally after a delay, as a warehouse system would.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from app.db import session_scope
from app.task_names import DELIVER_WEBHOOK
from tests.support import free_port


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    at: float  # time.time() when the request arrived


@dataclass
class Receiver:
    url: str
    statuses: list[int] = field(default_factory=list)  # answered in order, then 200
    delay_s: float = 0.0
    requests: list[Received] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def next_status(self) -> int:
        with self.lock:
            return self.statuses.pop(0) if self.statuses else 200


@contextmanager
def receiver(statuses: list[int] | None = None, delay_s: float = 0.0) -> Iterator[Receiver]:
    port = free_port()
    target = Receiver(f"http://127.0.0.1:{port}/hooks/loupe", list(statuses or []), delay_s)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 (the standard library's name)
            length = int(self.headers.get("Content-Length", "0"))
            body = self.rfile.read(length)
            with target.lock:
                target.requests.append(
                    Received(self.path, dict(self.headers.items()), body, time.time())
                )
            if target.delay_s:
                time.sleep(target.delay_s)
            status = target.next_status()
            answer = b"ok" if status < 300 else b"signature refused\x00 by test"
            try:
                self.send_response(status)
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)
            except (BrokenPipeError, ConnectionResetError):  # the sender timed out and left
                pass

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield target
    finally:
        server.shutdown()
        server.server_close()


def relay_webhooks() -> list[str]:
    """Relay every pending outbox row to the webhook task, run here; the tasks' outcomes.
    Any other task in the outbox fails the test: these tests queue only webhooks."""
    from workers.relay import relay_pending
    from workers.tasks.webhooks import celery

    outcomes: list[str] = []

    def deliver(task: str, payload: dict[str, Any], message_id: str) -> None:
        assert task == DELIVER_WEBHOOK, task
        outcomes.append(celery.tasks[task].apply(kwargs=payload).get())

    with session_scope() as session:
        relay_pending(session=session, publish=deliver)
    return outcomes
