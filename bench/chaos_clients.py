"""The chaos suite's clients: camera stations that upload at their pace, and an inspector
who works the review queue, each as the real one would.

A station sends every upload with an Idempotency-Key and keeps it until the upload is
accepted: after a 503 it waits for Retry-After, after a dropped connection a second. So a
station that never heard its answer asks again and gets the same inspection (200), and the
checks can hold the system to "every accepted upload, exactly once". Any answer other than
201, 200 or 503 with Retry-After is written down as a problem. The inspector decides every
item it is shown ("pass"); after a 503 it sends the same decision again, as the page's
button would be pressed again, and the server must not record it twice.
"""

from __future__ import annotations

import random
import re
import threading
import time
from collections import Counter

import httpx

from bench.station_upload import numbered

KEY_PREFIX = "chaos-"
TASK = re.compile(r'data-task-id="(\d+)"')
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
GIVE_UP_S = 300.0  # one upload retried this long: the system is not coming back


class Board:
    """What every station saw, shared between their threads."""

    def __init__(self, window: str | None):
        self.window = window  # the fault in progress, set by the suite
        self.stop = threading.Event()
        self.accepted: dict[str, str] = {}  # Idempotency-Key -> inspection id
        self.statuses: Counter[str] = Counter()
        self.unavailable: Counter[str] = Counter()  # 503s per fault
        self.problems: list[str] = []
        self._lock = threading.Lock()

    def accepted_count(self) -> int:
        with self._lock:
            return len(self.accepted)

    def saw(self, answer: str, problem: str | None = None) -> None:
        with self._lock:
            self.statuses[answer] += 1
            if answer.endswith("503") and self.window is not None:
                self.unavailable[self.window] += 1
            if problem is not None and len(self.problems) < 50:
                self.problems.append(problem)

    def accept(self, key: str, inspection_id: str) -> None:
        with self._lock:
            self.accepted[key] = inspection_id


class Station(threading.Thread):
    def __init__(
        self, number: int, base_url: str, token: str, photo: bytes, pace_s: float, board: Board
    ):
        super().__init__(name=f"station-{number}", daemon=True)
        self.number, self.base_url, self.token = number, base_url, token
        self.photo, self.pace_s, self.board = photo, pace_s, board

    def run(self) -> None:
        rng = random.Random(self.number)
        headers = {"Authorization": f"Bearer {self.token}"}
        with httpx.Client(base_url=self.base_url, headers=headers, timeout=30) as client:
            next_at = time.monotonic() + rng.uniform(0, self.pace_s)
            n = 0
            while not self.board.stop.is_set():
                time.sleep(max(0.0, next_at - time.monotonic()))
                # Every upload its own photo: the store skips a photo it already holds.
                photo = numbered(self.photo, self.number * 1_000_000 + n)
                self._upload(client, f"{KEY_PREFIX}{self.number}-{n}", photo)
                n += 1
                next_at = max(next_at + self.pace_s, time.monotonic())

    def _upload(self, client: httpx.Client, key: str, photo: bytes) -> None:
        files = [("image", ("photo.jpg", photo, "image/jpeg"))]
        started = time.monotonic()
        first = True
        while time.monotonic() - started < GIVE_UP_S:
            try:
                response = client.post(
                    "/api/v1/inspections", files=files, headers={"Idempotency-Key": key}
                )
            except httpx.TransportError as exc:
                self.board.saw(
                    f"station {type(exc).__name__}", f"{key}: {type(exc).__name__}: {exc}"
                )
                time.sleep(1.0)
                first = False
                continue
            code = response.status_code
            if code in (200, 201):
                problem = None if code == 201 or not first else f"{key}: 200 on its first send"
                self.board.saw(f"station {code}", problem)
                self.board.accept(key, response.json()["id"])
                return
            if code == 503:
                retry_after = response.headers.get("retry-after")
                self.board.saw(
                    "station 503", None if retry_after else f"{key}: 503 without Retry-After"
                )
                time.sleep(min(float(retry_after or 1), 5.0))
                first = False
                continue
            self.board.saw(f"station {code}", f"{key}: {code} {response.text[:200]}")
            return  # refused for good: not accepted, and a station would not send it again
        self.board.saw("station gave up", f"{key}: not accepted after {GIVE_UP_S:.0f} s of retries")


class Inspector(threading.Thread):
    """One inspector in a browser: the review page, then decision after decision (HTMX)."""

    def __init__(self, base_url: str, username: str, password: str, board: Board):
        super().__init__(name=f"inspector-{username}", daemon=True)
        self.base_url, self.username, self.password, self.board = (
            base_url,
            username,
            password,
            board,
        )
        self.decided = 0

    def run(self) -> None:
        with httpx.Client(base_url=self.base_url, timeout=30, follow_redirects=True) as client:
            page = self._log_in(client)
            csrf = CSRF.search(page)
            assert csrf is not None, "the review page has no CSRF token"
            headers = {"HX-Request": "true", "X-CSRF-Token": csrf.group(1)}
            while not self.board.stop.is_set():
                task = TASK.search(page)
                if task is None:  # the queue is empty for now
                    time.sleep(1.0)
                    page = self._ask(client, "GET", "/review") or page
                    continue
                url = f"/review/{task.group(1)}/decision"
                answer = self._ask(client, "POST", url, data={"verdict": "pass"}, headers=headers)
                if answer is not None:
                    self.decided += 1
                    page = answer
                else:
                    page = self._ask(client, "GET", "/review") or ""

    def _log_in(self, client: httpx.Client) -> str:
        login = client.get("/login")
        token = CSRF.search(login.text)
        assert token is not None, "the login page has no CSRF token"
        form = {"username": self.username, "password": self.password, "next": "/review"}
        response = client.post("/login", data={**form, "csrf_token": token.group(1)})
        assert response.status_code == 200 and "/review" in str(response.url), response.text[:300]
        return response.text

    def _ask(
        self,
        client: httpx.Client,
        method: str,
        url: str,
        data: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
    ) -> str | None:
        """The page's answer (200), sent again after a 503 until the system is back; None
        after any other answer, which is written down as a problem."""
        started = time.monotonic()
        while time.monotonic() - started < GIVE_UP_S:
            try:
                response = client.request(method, url, data=data, headers=headers)
            except httpx.TransportError as exc:
                self.board.saw(f"inspector {type(exc).__name__}", f"{url}: {exc}")
                time.sleep(1.0)
                continue
            code = response.status_code
            if code == 503:
                retry_after = response.headers.get("retry-after")
                problem = None if retry_after else f"{method} {url}: 503 without Retry-After"
                self.board.saw("inspector 503", problem)
                time.sleep(min(float(retry_after or 1), 5.0))
                continue
            self.board.saw(f"inspector {code}", None if code == 200 else f"{method} {url}: {code}")
            return response.text if code == 200 else None
        self.board.saw("inspector gave up", f"{method} {url}: no answer for {GIVE_UP_S:.0f} s")
        return None
