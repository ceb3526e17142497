"""Fuzzing the running app: a uvicorn server in a thread, one logged-in caller per role, and
schemathesis cases generated from the app's whole spec (app.spec.full_spec: pages and API;
GET /openapi.json is the API part alone) and checked against it.

tests/integration/test_fuzz.py drives it; `make fuzz` runs the same test with a larger budget.
tests/integration/test_station_contract.py runs schemathesis over the public document.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import pytest
import requests
import uvicorn
from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import FailureGroup
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from app.auth.deps import SESSION_COOKIE
from tests.integration.test_web_routes import ACCESS, PUBLIC, STATION
from tests.integration.web_support import csrf_from
from tests.support import free_port, reset_caches, wait_for

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    response_headers_conformance,
]
ANONYMOUS = "anonymous"
# Operations no caller fuzzes: logging out ends the caller's session (and its CSRF token),
# so every later request of that role would only test the login redirect.
NEVER = {("POST", "/logout")}
# /healthz takes no input, and in tests it answers 503 by design: no Serve app or Celery
# worker runs. Each call also waits seconds for their pings.
NEVER |= {("GET", "/healthz")}
# Only the anonymous caller posts logins: each wrong password counts against 127.0.0.1 in the
# login throttle, and the callers log in before any fuzzing, so the locks cannot shut them out.
ANONYMOUS_ONLY = {("POST", "/login")}
CSRF_HEADER = "X-CSRF-Token"
HTMX = {"HX-Request": "true"}


@dataclass(frozen=True)
class LiveApp:
    """The app on a real port: where to reach it, and the app (for its whole spec)."""

    base_url: str
    app: Any


@pytest.fixture
def live_app(database_url, redis_url, committed_db, tmp_path, monkeypatch) -> Iterator[LiveApp]:
    """The real app on a real port, on the test database (rows really committed)."""
    monkeypatch.setenv("LOUPE_STORAGE_DIR", str(tmp_path / "photos"))
    monkeypatch.setenv("LOUPE_SECRET_KEY", "fuzz-secret-key")
    monkeypatch.setenv("LOUPE_ENVIRONMENT", "development")
    reset_caches()
    from app.web import create_app

    app = create_app()
    with serve(app) as base_url:
        yield LiveApp(base_url, app)
    reset_caches()


@contextmanager
def serve(app: Any) -> Iterator[str]:
    """The app on a free port of 127.0.0.1, as a station or a browser would reach it."""
    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning",
                            access_log=False, lifespan="off")  # fmt: skip
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="fuzz-uvicorn", daemon=True)
    thread.start()
    try:
        wait_for(lambda: server.started, timeout=30, every=0.05)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=15)


@dataclass
class Caller:
    """Who sends the requests: a role, its HTTP session (cookies) and its headers."""

    role: str
    http: requests.Session
    headers: dict[str, str] = field(default_factory=dict)

    def may_call(self, method: str, path: str) -> bool:
        key = (method, path)
        if key in NEVER or (key in ANONYMOUS_ONLY and self.role != ANONYMOUS):
            return False
        roles = ACCESS.get(key)
        if roles is None:
            raise AssertionError(f"{method} {path} is in the spec but not in ACCESS")
        if self.role == ANONYMOUS:
            return True  # every route, to see it refused (401 or 303 to /login), never a 5xx
        if self.role == STATION or roles == STATION:
            return roles == self.role
        return roles == PUBLIC or self.role in roles


def anonymous(base_url: str) -> Caller:
    """A browser that opened the login page: a CSRF token, no login."""
    http = requests.Session()
    token = csrf_from(http.get(f"{base_url}/login", timeout=30).text)
    return Caller(ANONYMOUS, http, {CSRF_HEADER: token})


def logged_in(base_url: str, role: str, username: str, password: str) -> Caller:
    """A browser logged in through the form, with the CSRF token of its new session."""
    caller = anonymous(base_url)
    form = {"username": username, "password": password, "next": "/",
            "csrf_token": caller.headers[CSRF_HEADER]}  # fmt: skip
    answer = caller.http.post(f"{base_url}/login", data=form, allow_redirects=False, timeout=30)
    assert answer.status_code == 303, (role, answer.status_code)
    # The login started a new session with a new token; the 404 page carries it.
    page = caller.http.get(f"{base_url}/no-such-page", timeout=30).text
    return Caller(role, caller.http, {CSRF_HEADER: csrf_from(page)})


def station(token: str) -> Caller:
    return Caller(STATION, requests.Session(), {"Authorization": f"Bearer {token}"})


def still_logged_in(base_url: str, caller: Caller) -> bool:
    """False once the caller's session ended: its later requests would test nothing new."""
    if caller.role in (ANONYMOUS, STATION):
        return True
    answer = caller.http.get(f"{base_url}/", allow_redirects=False, timeout=30)
    return not answer.headers.get("location", "").startswith("/login")


@dataclass
class Outcome:
    """Requests made per (role, operation) with their statuses, and the checks that failed."""

    statuses: dict[tuple[str, str], Counter[int]] = field(default_factory=dict)
    # (operation, status, check) -> how often, and the first full report (with a curl line).
    failures: dict[tuple[str, int, str], int] = field(default_factory=dict)
    reports: dict[tuple[str, int, str], str] = field(default_factory=dict)

    def failed(self, role: str, label: str, status: int, group: FailureGroup) -> None:
        for failure in group.exceptions:
            key = (label, status, failure.title)
            self.failures[key] = self.failures.get(key, 0) + 1
            self.reports.setdefault(key, f"[{role}] {group}")

    def summary(self, reports: int = 5) -> str:
        lines = [f"{label} -> {status}: {title} (x{n})"
                 for (label, status, title), n in sorted(self.failures.items())]  # fmt: skip
        return "\n".join([*lines, "", *list(self.reports.values())[:reports]])

    @property
    def requests(self) -> int:
        return sum(sum(c.values()) for c in self.statuses.values())

    def table(self) -> str:
        lines = [f"{'role':<10} {'operation':<48} {'requests':>8}  statuses"]
        for (role, label), counts in sorted(self.statuses.items()):
            spread = " ".join(f"{code}x{n}" for code, n in sorted(counts.items()))
            lines.append(f"{role:<10} {label:<48} {sum(counts.values()):>8}  {spread}")
        lines.append(f"{self.requests} requests, {sum(self.failures.values())} failed checks")
        return "\n".join(lines)


@dataclass
class Fuzzer:
    """Generates `examples` cases per operation (positive and negative data), sends each as
    `caller`, and records every check that fails instead of stopping at the first."""

    base_url: str
    examples: int
    seed: int
    outcome: Outcome = field(default_factory=Outcome)
    # Path parameters never sent as they were generated: {"user_id": {fuzzer's id: target}}.
    remap: dict[str, dict[int, int]] = field(default_factory=dict)

    def run(self, operation: Any, caller: Caller) -> None:
        fixed = {k: v for k, v in caller.headers.items() if k == "Authorization"}
        modes = [operation.as_strategy(GenerationMode.POSITIVE, headers=fixed or None)]
        if _has_inputs(operation):
            modes.append(operation.as_strategy(GenerationMode.NEGATIVE, headers=fixed or None))
        counts = self.outcome.statuses.setdefault((caller.role, operation.label), Counter())

        @seed(self.seed)
        @settings(max_examples=self.examples, deadline=None, database=None,
                  phases=[Phase.generate], suppress_health_check=list(HealthCheck))  # fmt: skip
        # Half the requests come from HTMX: pages answer it with fragments, and with 204 and
        # HX-Redirect instead of a redirect to the login form.
        @given(case=st.one_of(modes), htmx=st.booleans())
        def send(case: Any, htmx: bool) -> None:
            self._remap(case)
            if caller.role not in (ANONYMOUS, STATION) and case.cookies:
                # The spec names the login session as the reports' security scheme, so a
                # session cookie is generated: a logged-in caller sends its own instead.
                case.cookies = {k: v for k, v in case.cookies.items() if k != SESSION_COOKIE}
            headers = {**caller.headers, **(HTMX if htmx else {})}
            response = case.call(base_url=self.base_url, session=caller.http, headers=headers,
                                 allow_redirects=False, timeout=60)  # fmt: skip
            counts[response.status_code] += 1
            try:
                case.validate_response(response, checks=CHECKS, headers=headers)
            except FailureGroup as exc:
                self.outcome.failed(caller.role, operation.label, response.status_code, exc)

        send()

    def _remap(self, case: Any) -> None:
        for name, targets in self.remap.items():
            value = case.path_parameters.get(name)
            if isinstance(value, int) and value in targets:
                case.path_parameters = {**case.path_parameters, name: targets[value]}


def _has_inputs(operation: Any) -> bool:
    """Negative data needs something to break: a parameter or a body."""
    definition = operation.definition.raw
    return bool(definition.get("parameters") or definition.get("requestBody"))
