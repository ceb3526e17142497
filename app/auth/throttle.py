"""Failed logins, per account and per client address: recorded, checked, unlocked.

The rules are pure (app.policy.throttle); this keeps their state in `login_failure`, so
that every web process and every host sees the same counts, and logs what happens.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import CursorResult, delete, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from app.auth.service import record
from app.auth.tables import LoginFailure
from app.policy import throttle
from app.policy.throttle import ACCOUNT, ADDRESS, Failures, ThrottleRules

log = logging.getLogger("loupe.auth")

ACCOUNT_PREFIX = "account:"
ADDRESS_PREFIX = "address:"


def account_key(username: str) -> str:
    # One count whatever the case typed: "Admin" and "admin" are one target.
    return ACCOUNT_PREFIX + username.strip().lower()[:100]


def address_key(address: str) -> str:
    return ADDRESS_PREFIX + address[:100]


def _keys(username: str, address: str) -> dict[str, ThrottleRules]:
    return {account_key(username): ACCOUNT, address_key(address): ADDRESS}


def _failures(row: LoginFailure | None) -> Failures:
    if row is None:
        return Failures()
    return Failures(row.failures, row.last_failed_at, row.locked_until)


def wait_seconds(*, session: Session, username: str, address: str, now: datetime) -> int:
    """Seconds before this account may try to log in from this address (0: now)."""
    keys = _keys(username, address)
    found = session.scalars(select(LoginFailure).where(LoginFailure.key.in_(keys)))
    rows = {row.key: row for row in found}
    return max(
        throttle.wait_seconds(_failures(rows.get(key)), rules, now) for key, rules in keys.items()
    )


def record_failure(*, session: Session, username: str, address: str, now: datetime) -> int:
    """Count a failed login against the account and the address; the caller commits.

    Returns the wait it now costs. Each key's row is locked while it is counted, so that
    concurrent failures are all counted.
    """
    waits = []
    for key, rules in _keys(username, address).items():
        session.execute(
            insert(LoginFailure)
            .values(key=key, failures=0, last_failed_at=now)
            .on_conflict_do_nothing(index_elements=["key"])
        )
        row = session.scalar(select(LoginFailure).where(LoginFailure.key == key).with_for_update())
        assert row is not None
        before = _failures(row) if row.failures else Failures()
        after = throttle.after_failure(before, rules, now)
        row.failures = after.count
        row.last_failed_at = now  # after_failure stamps the failure with `now`
        row.locked_until = after.locked_until
        if after.locked_until != before.locked_until:
            log.warning("login locked: %s after %d failures, until %s", key, after.count,
                        after.locked_until.isoformat() if after.locked_until else "-")  # fmt: skip
            record(session=session, actor_id=None, action="login.lock", subject=key,
                   failures=after.count, address=address)  # fmt: skip
        waits.append(throttle.wait_seconds(after, rules, now))
    log.info("login failed for %r from %s", username[:100], address)
    session.flush()
    return max(waits)


def record_success(*, session: Session, username: str) -> None:
    """A good login clears the account's failures (not its address's: others share it)."""
    session.execute(delete(LoginFailure).where(LoginFailure.key == account_key(username)))


@dataclass(frozen=True)
class Lock:
    key: str
    failures: int
    locked_until: datetime

    @property
    def username(self) -> str | None:
        """The account's name; None for an address."""
        if not self.key.startswith(ACCOUNT_PREFIX):
            return None
        return self.key.removeprefix(ACCOUNT_PREFIX)

    @property
    def who(self) -> str:
        """The account's name or the address, as a person reads it."""
        return who(self.key)


def who(key: str) -> str:
    """ "account:mina" -> "mina", "address:10.0.0.7" -> "10.0.0.7"."""
    return key.split(":", 1)[-1]


def locks(*, session: Session, now: datetime) -> list[Lock]:
    """The accounts and addresses locked out now, the latest lock first."""
    rows = session.scalars(
        select(LoginFailure)
        .where(LoginFailure.locked_until > now)
        .order_by(LoginFailure.locked_until.desc())
    )
    return [Lock(r.key, r.failures, r.locked_until) for r in rows if r.locked_until]


def unlock(*, session: Session, key: str, actor_id: int | None) -> bool:
    """Forget a key's failures (an admin's unlock); False when there were none. The caller
    commits."""
    # A DELETE gives a CursorResult, which has the rowcount; Session.execute is typed to
    # return Result (the cast SQLAlchemy 2.0.44's changelog advises).
    deleted = cast(
        "CursorResult[Any]", session.execute(delete(LoginFailure).where(LoginFailure.key == key))
    ).rowcount
    if deleted:
        log.warning("login unlocked: %s", key)
        record(session=session, actor_id=actor_id, action="login.unlock", subject=key)
    return bool(deleted)
