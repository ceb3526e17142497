"""Failed logins slow the next attempt down, then lock it out for a while.

Pure: the count of recent failures for one key (an account, or a client address) in, the
wait before that key may try again out. Two keys are throttled at once: the account, so
that nobody guesses one password from many addresses, and the address, so that nobody
tries one password on many accounts. An address is shared by a whole warehouse floor
behind one router, so it gets a far larger allowance than an account.

The wait is enforced by refusing early attempts (429 with Retry-After), never by sleeping
in the server: a sleeping request would hold a worker, which is what an attacker wants.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta


@dataclass(frozen=True)
class ThrottleRules:
    free_failures: int  # failures in a row that cost nothing (typos happen)
    lock_after: int  # failures in a row that lock the key out
    lock_seconds: int
    max_delay_seconds: int  # the growing delay between free failures and the lock
    forget_after_seconds: int  # a key that failed nothing for this long starts afresh


ACCOUNT = ThrottleRules(
    free_failures=3, lock_after=10, lock_seconds=15 * 60, max_delay_seconds=30,
    forget_after_seconds=15 * 60,
)  # fmt: skip
ADDRESS = ThrottleRules(
    free_failures=20, lock_after=100, lock_seconds=15 * 60, max_delay_seconds=30,
    forget_after_seconds=15 * 60,
)  # fmt: skip


@dataclass(frozen=True)
class Failures:
    """What is stored for one key."""

    count: int = 0
    last_failed_at: datetime | None = None
    locked_until: datetime | None = None


def is_stale(failures: Failures, rules: ThrottleRules, now: datetime) -> bool:
    """Whether the failures are old enough to be forgotten (a lock runs out on its own)."""
    if failures.locked_until is not None and failures.locked_until > now:
        return False
    last = failures.last_failed_at
    return last is None or now - last >= timedelta(seconds=rules.forget_after_seconds)


def delay_seconds(count: int, rules: ThrottleRules) -> int:
    """The wait after `count` failures in a row, short of a lock: 0, then 1, 2, 4 … s."""
    if count < rules.free_failures:
        return 0
    return min(2 ** (count - rules.free_failures), rules.max_delay_seconds)


def wait_seconds(failures: Failures, rules: ThrottleRules, now: datetime) -> int:
    """Seconds before this key may try again; 0 when it may try now."""
    if is_stale(failures, rules, now):
        return 0
    if failures.locked_until is not None and failures.locked_until > now:
        return _ceil_seconds(failures.locked_until - now)
    assert failures.last_failed_at is not None  # not stale, so it failed recently
    ready = failures.last_failed_at + timedelta(seconds=delay_seconds(failures.count, rules))
    return _ceil_seconds(ready - now) if ready > now else 0


def after_failure(failures: Failures, rules: ThrottleRules, now: datetime) -> Failures:
    """The record once one more attempt failed; it locks when the count reaches the limit."""
    count = 1 if is_stale(failures, rules, now) else failures.count + 1
    locked_until = failures.locked_until
    if count >= rules.lock_after and (locked_until is None or locked_until <= now):
        locked_until = now + timedelta(seconds=rules.lock_seconds)
    return Failures(count=count, last_failed_at=now, locked_until=locked_until)


def _ceil_seconds(delta: timedelta) -> int:
    return max(1, math.ceil(delta.total_seconds()))
