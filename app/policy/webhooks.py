"""Webhooks, the pure rules: which events an endpoint may listen to, which URLs and
secrets are acceptable, how a body is signed and checked, and when a failed delivery is
tried again.

The signature is the scheme receivers already know from payment providers: the header
`Loupe-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`. Signing
the time with the body lets a receiver refuse a captured request sent again later (its
`t` is old) without keeping every event id forever; keeping the ids it has seen for the
tolerance window is then enough to refuse a replay inside the window. A retry or an
admin's replay is signed afresh, so `t` is the time of sending, never of the decision.

No I/O here (app/policy's rule): hmac, hashlib and urllib.parse only compute.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable
from typing import Literal
from urllib.parse import urlsplit

# What an admin subscribes to (the short name) and the `type` the event's body carries.
EVENTS = {"decided": "inspection.decided"}
SIGNATURE_HEADER = "Loupe-Signature"
SIGNATURE_VERSION = "v1"
# How old a signature a receiver should still accept; the README's snippet uses it too.
TOLERANCE_S = 300
MAX_URL = 2000  # the column's width
MIN_SECRET, MAX_SECRET = 16, 200

Step = Literal["delivered", "retry", "failed"]


class BadEndpoint(ValueError):
    """An endpoint an admin may not register; `code` names the rule (a message key)."""

    def __init__(self, message: str, *, code: str) -> None:
        super().__init__(message)
        self.code = code


def check_url(url: str) -> str:
    """The URL to POST events to, trimmed; BadEndpoint if Loupe cannot or should not use it.

    Credentials in the URL are refused: the page and the command line show the URL, and
    the signature already proves who sent the request.
    """
    url = url.strip()
    if not url:
        raise BadEndpoint("give the receiver's URL, such as https://wms.example/loupe", code="url")
    if len(url) > MAX_URL:
        raise BadEndpoint(f"the URL is longer than {MAX_URL} characters", code="url_long")
    if any(ch.isspace() or ord(ch) < 0x20 or ord(ch) == 0x7F for ch in url):
        raise BadEndpoint("the URL contains spaces or control characters", code="url_space")
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 (a port that is not a number raises here)
    except ValueError as exc:
        raise BadEndpoint(f"not a URL Loupe can send to: {exc}", code="url") from exc
    if parts.scheme.lower() not in ("http", "https"):
        raise BadEndpoint("the URL must start with http:// or https://", code="url_scheme")
    if not parts.hostname:
        raise BadEndpoint("the URL names no host", code="url")
    if parts.username is not None or parts.password is not None:
        raise BadEndpoint(
            "the URL may not carry a user name or password: every request is signed instead",
            code="url_credentials",
        )
    return url


def check_events(names: Iterable[str]) -> list[str]:
    """The short names of the events chosen ("decided" or "inspection.decided"), each once."""
    by_type = {full: short for short, full in EVENTS.items()}
    chosen: list[str] = []
    for raw in names:
        for name in (part.strip() for part in raw.split(",")):
            if not name:
                continue
            short = name if name in EVENTS else by_type.get(name)
            if short is None:
                known = ", ".join(EVENTS)
                raise BadEndpoint(f"unknown event {name!r}; choose from: {known}", code="events")
            if short not in chosen:
                chosen.append(short)
    if not chosen:
        raise BadEndpoint("choose at least one event, such as decided", code="events")
    return chosen


def check_secret(secret: str) -> str:
    """A secret an admin brings (the receiver has it already): long enough to sign with."""
    if not MIN_SECRET <= len(secret) <= MAX_SECRET or any(
        ch.isspace() or not ch.isprintable() for ch in secret
    ):
        raise BadEndpoint(
            f"a secret is {MIN_SECRET}-{MAX_SECRET} printable characters without spaces",
            code="secret",
        )
    return secret


def signature(secret: str, body: bytes, timestamp: int) -> str:
    """The `Loupe-Signature` header's value for this body sent at `timestamp`."""
    signed = str(timestamp).encode() + b"." + body
    digest = hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
    return f"t={timestamp},{SIGNATURE_VERSION}={digest}"


def verify(
    secret: str, body: bytes, header: str, *, now: float, tolerance_s: float = TOLERANCE_S
) -> bool:
    """What a receiver does: the header is well formed, recent, and one of its v1
    signatures matches (several v1 values are allowed, for a future change of secret)."""
    fields = [part.partition("=") for part in header.split(",")]
    stamps = [value for key, _, value in fields if key.strip() == "t"]
    expected_sigs = [value.strip() for key, _, value in fields if key.strip() == SIGNATURE_VERSION]
    if len(stamps) != 1 or not stamps[0].strip().isdigit() or not expected_sigs:
        return False
    timestamp = int(stamps[0])
    if abs(now - timestamp) > tolerance_s:
        return False
    ours = signature(secret, body, timestamp).rpartition("=")[2]
    return any(hmac.compare_digest(ours, sig) for sig in expected_sigs)


def next_step(status_code: int | None, *, attempt: int, max_attempts: int) -> Step:
    """After attempt number `attempt` (from 1): a 2xx answer delivered the event; anything
    else (no answer, a timeout, a redirect, any 4xx or 5xx) is tried again until
    `max_attempts` have been made. A 4xx is retried too: a receiver that refuses because
    it is misconfigured is usually fixed within the backoff window, and giving up early
    would leave the warehouse without the decision."""
    if status_code is not None and 200 <= status_code < 300:
        return "delivered"
    return "retry" if attempt < max_attempts else "failed"


def retry_delay(attempt: int, *, base_s: float, max_s: float, draw: float) -> float:
    """Seconds to wait after failed attempt number `attempt` (from 1): base, 2x base, 4x
    base ... capped at `max_s`, then scaled by a factor in [0.5, 1) from `draw` in [0, 1).

    The jitter keeps the retries of many deliveries that failed together (a receiver that
    was down) from arriving together again when it comes back.
    """
    exponential = min(max_s, base_s * 2 ** max(0, attempt - 1))
    return exponential * (0.5 + 0.5 * min(max(draw, 0.0), 1.0))
