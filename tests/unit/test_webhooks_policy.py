"""The webhook rules: signatures a receiver can check, the backoff schedule, what counts
as delivered, and which URLs, events and secrets an admin may register."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from app.policy.webhooks import (
    BadEndpoint,
    check_events,
    check_secret,
    check_url,
    next_step,
    retry_delay,
    signature,
    verify,
)

SECRET = "whsec_test-secret-0123456789"
BODY = b'{"id":"5c0f","type":"inspection.decided"}'
T = 1_765_000_000


def test_the_signature_is_hmac_sha256_over_the_time_and_the_body():
    # What a receiver computes by hand, as the README's snippet does.
    expected = hmac.new(SECRET.encode(), f"{T}.".encode() + BODY, hashlib.sha256).hexdigest()
    assert signature(SECRET, BODY, T) == f"t={T},v1={expected}"


@pytest.mark.parametrize(
    ("header", "secret", "body", "now", "valid"),
    [
        (signature(SECRET, BODY, T), SECRET, BODY, T, True),
        (signature(SECRET, BODY, T), SECRET, BODY, T + 300, True),  # at the tolerance
        (signature(SECRET, BODY, T), SECRET, BODY, T + 301, False),  # a replay, too late
        (signature(SECRET, BODY, T), SECRET, BODY, T - 301, False),  # from the future
        (signature(SECRET, BODY, T), "whsec_someone-else-000", BODY, T, False),
        (signature(SECRET, BODY, T), SECRET, BODY + b" ", T, False),  # the body was changed
        (signature(SECRET, BODY, T).replace(f"t={T}", f"t={T + 1}"), SECRET, BODY, T, False),
        # Several v1 values (a receiver rotating secrets): one that matches is enough.
        (signature(SECRET, BODY, T) + ",v1=" + "0" * 64, SECRET, BODY, T, True),
        (f"t={T},v1=" + "0" * 64, SECRET, BODY, T, False),
        (f"v1={signature(SECRET, BODY, T).rpartition('=')[2]}", SECRET, BODY, T, False),  # no t
        (f"t=soon,v1={signature(SECRET, BODY, T).rpartition('=')[2]}", SECRET, BODY, T, False),
        ("", SECRET, BODY, T, False),
        (f"t={T},t={T},v1=abc", SECRET, BODY, T, False),
    ],
)
def test_verify_accepts_only_a_recent_signature_of_this_body_with_this_secret(
    header, secret, body, now, valid
):
    assert verify(secret, body, header, now=now) is valid


def test_the_backoff_doubles_up_to_its_cap_with_jitter_in_the_upper_half():
    waits = [retry_delay(n, base_s=5, max_s=900, draw=1.0) for n in range(1, 10)]
    assert waits == [5, 10, 20, 40, 80, 160, 320, 640, 900]
    assert retry_delay(1, base_s=5, max_s=900, draw=0.0) == 2.5
    assert retry_delay(3, base_s=5, max_s=900, draw=0.5) == 15.0
    assert retry_delay(30, base_s=5, max_s=900, draw=0.0) == 450.0  # capped before the jitter


@pytest.mark.parametrize(
    ("status", "attempt", "step"),
    [
        (200, 1, "delivered"),
        (204, 10, "delivered"),
        (299, 3, "delivered"),
        (500, 1, "retry"),
        (None, 9, "retry"),  # no answer (refused, timed out)
        (301, 2, "retry"),  # a redirect is not followed: the endpoint moved
        (410, 3, "retry"),
        (500, 10, "failed"),
        (None, 10, "failed"),
        (200, 11, "delivered"),  # a 2xx delivers whatever the count
    ],
)
def test_only_a_2xx_delivers_and_the_last_attempt_gives_up(status, attempt, step):
    assert next_step(status, attempt=attempt, max_attempts=10) == step


@pytest.mark.parametrize(
    ("url", "code"),
    [
        ("", "url"),
        ("   ", "url"),
        ("wms.example/loupe", "url_scheme"),
        ("ftp://wms.example/", "url_scheme"),
        ("javascript:alert(1)", "url_scheme"),
        ("https://", "url"),
        ("https:///path", "url"),
        ("https://wms.example:port/", "url"),
        ("https://wms.example/a b", "url_space"),
        ("https://wms.example/\x00", "url_space"),
        ("https://bob:pw@wms.example/", "url_credentials"),
        ("https://bob@wms.example/", "url_credentials"),
        ("https://" + "a" * 2000 + ".example/", "url_long"),
    ],
)
def test_urls_loupe_cannot_or_should_not_send_to_are_refused(url, code):
    with pytest.raises(BadEndpoint) as refused:
        check_url(url)
    assert refused.value.code == code


def test_good_urls_are_trimmed_and_kept():
    assert check_url("  https://wms.example:8443/hooks/loupe?site=3 ") == (
        "https://wms.example:8443/hooks/loupe?site=3"
    )
    assert check_url("HTTP://10.0.0.7/hook") == "HTTP://10.0.0.7/hook"
    assert check_url("http://[::1]:9000/x") == "http://[::1]:9000/x"


def test_events_by_short_or_full_name_each_once():
    assert check_events(["decided"]) == ["decided"]
    assert check_events(["inspection.decided, decided", " decided "]) == ["decided"]
    for bad in ([], [""], [" , "], ["shipped"], ["decided,shipped"]):
        with pytest.raises(BadEndpoint) as refused:
            check_events(bad)
        assert refused.value.code == "events"


@pytest.mark.parametrize(
    ("secret", "ok"),
    [
        ("x" * 16, True),
        ("x" * 200, True),
        ("x" * 15, False),
        ("x" * 201, False),
        ("with a space 0123456", False),
        ("tab\there-0123456789", False),
        ("nul\x00here-0123456789", False),
    ],
)
def test_an_admins_own_secret_must_be_long_enough_and_printable(secret, ok):
    if ok:
        assert check_secret(secret) == secret
    else:
        with pytest.raises(BadEndpoint):
            check_secret(secret)
