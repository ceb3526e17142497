"""Failed logins slow down, then lock out, and are forgotten after a quiet spell."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from app.policy.throttle import (
    ACCOUNT,
    Failures,
    ThrottleRules,
    after_failure,
    delay_seconds,
    wait_seconds,
)

T0 = datetime(2026, 12, 2, 9, 0, tzinfo=UTC)
RULES = ThrottleRules(
    free_failures=3, lock_after=6, lock_seconds=600, max_delay_seconds=5, forget_after_seconds=900
)


def failed(times: int, rules: ThrottleRules = RULES, every_s: float = 0.0) -> Failures:
    record = Failures()
    for i in range(times):
        record = after_failure(record, rules, T0 + timedelta(seconds=i * every_s))
    return record


@pytest.mark.parametrize(("count", "delay"), [(0, 0), (2, 0), (3, 1), (4, 2), (5, 4), (9, 5)])
def test_the_delay_grows_after_the_free_failures_and_is_capped(count, delay):
    assert delay_seconds(count, RULES) == delay


def test_free_failures_cost_nothing_then_the_next_try_must_wait():
    assert wait_seconds(failed(2), RULES, T0) == 0
    record = failed(4)  # the fourth failure at T0 costs 2 s
    assert wait_seconds(record, RULES, T0) == 2
    assert wait_seconds(record, RULES, T0 + timedelta(seconds=1.5)) == 1  # rounded up
    assert wait_seconds(record, RULES, T0 + timedelta(seconds=2)) == 0


def test_enough_failures_lock_the_key_for_the_lock_time():
    record = failed(6)
    assert record.locked_until == T0 + timedelta(seconds=600)
    assert wait_seconds(record, RULES, T0 + timedelta(seconds=1)) == 599
    # Once the lock and the quiet spell are over, the key starts afresh.
    later = T0 + timedelta(seconds=900)
    assert wait_seconds(record, RULES, later) == 0
    assert after_failure(record, RULES, later).count == 1


def test_a_failure_after_a_quiet_spell_starts_the_count_again():
    record = failed(4)
    assert after_failure(record, RULES, T0 + timedelta(seconds=901)).count == 1
    assert after_failure(record, RULES, T0 + timedelta(seconds=10)).count == 5


def test_a_lock_is_not_extended_by_failures_counted_during_it():
    record = failed(6)
    again = after_failure(record, RULES, T0 + timedelta(seconds=60))
    assert again.locked_until == record.locked_until


def test_thirty_wrong_passwords_in_a_row_lock_an_account():
    # The report's attack: 30 tries in 12 s. Each try that comes too soon is refused
    # before the password is checked, so only the ones after each wait count.
    record, now, checked = Failures(), T0, 0
    for _ in range(30):
        if wait_seconds(record, ACCOUNT, now) == 0:
            record = after_failure(record, ACCOUNT, now)
            checked += 1
        now += timedelta(seconds=0.4)
    assert checked < 10 and record.locked_until is None  # slowed down, not yet locked
    for _ in range(20):  # a patient attacker waits out every delay
        now += timedelta(seconds=wait_seconds(record, ACCOUNT, now))
        record = after_failure(record, ACCOUNT, now)
    assert record.locked_until is not None
