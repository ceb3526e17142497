"""When `loupe run` starts a crashed child again, and when it gives up (pure: no I/O).

The supervisor (app/supervisor.py) tells these functions what happened to a child — it
started, it exited with a code — at a time on a monotonic clock, and does what they say:
start it again after a delay, or stop the whole system because the child keeps crashing.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime


@dataclass(frozen=True)
class RestartPolicy:
    # The first restart comes after a second: a kill -9 or an out-of-memory kill is
    # usually a one-off, and the items in flight are waiting for the worker.
    first_delay_s: float = 1.0
    # The delay doubles on each crash in a row, up to this: a child that cannot start (a
    # port taken, a database away) is tried about once a minute instead of spinning.
    max_delay_s: float = 60.0
    # A child that stayed up this long was healthy: its next crash starts the delays over.
    # A minute is longer than any child takes to start (Ray Serve: 10-30 s).
    stable_after_s: float = 60.0
    # Give up when a child has exited this many times within window_s: with the delays
    # above, a child that dies at start gives up after about a minute (1+2+4+8 s of
    # waiting plus its start-ups), and one that runs a minute and dies gives up after five
    # minutes; one crash now and then (an OOM a day) is restarted forever.
    max_crashes: int = 5
    window_s: float = 600.0


@dataclass(frozen=True)
class Restart:
    delay_s: float


@dataclass(frozen=True)
class GiveUp:
    reason: str


@dataclass(frozen=True)
class ChildRecord:
    """What the supervisor knows of one child; times are on its monotonic clock."""

    started_at: float
    restarts: int = 0  # how many times it was started again
    last_exit: int | None = None  # its last exit code (negative: killed by that signal)
    crashes: tuple[float, ...] = ()  # when it exited, within the policy's window
    streak: int = 0  # exits in a row without a stable run: the backoff's exponent
    next_start_at: float | None = None  # set while it waits to be started again
    gave_up: bool = False

    @property
    def state(self) -> str:
        if self.gave_up:
            return "gave_up"
        return "running" if self.next_start_at is None else "restarting"


def backoff_s(streak: int, policy: RestartPolicy) -> float:
    """1 s, 2 s, 4 s … up to the cap, for the first, second, third … crash in a row."""
    return min(policy.max_delay_s, policy.first_delay_s * 2 ** max(0, streak - 1))


def decide(crashes: tuple[float, ...], streak: int, policy: RestartPolicy) -> Restart | GiveUp:
    """Given the recent exits (the latest included) and the streak: restart when, or give up."""
    if len(crashes) >= policy.max_crashes:
        return GiveUp(
            f"{len(crashes)} exits within {policy.window_s:.0f} s "
            f"(the limit is {policy.max_crashes})"
        )
    return Restart(backoff_s(streak, policy))


def exited(
    record: ChildRecord, *, code: int, now: float, policy: RestartPolicy
) -> tuple[ChildRecord, Restart | GiveUp]:
    """The child exited at `now` with `code`: its new record and what to do about it."""
    stable = now - record.started_at >= policy.stable_after_s
    streak = 1 if stable else record.streak + 1
    crashes = tuple(t for t in record.crashes if now - t < policy.window_s) + (now,)
    decision = decide(crashes, streak, policy)
    updated = replace(record, last_exit=code, crashes=crashes, streak=streak)
    if isinstance(decision, GiveUp):
        return replace(updated, gave_up=True, next_start_at=None), decision
    return replace(updated, next_start_at=now + decision.delay_s), decision


def due(record: ChildRecord, now: float) -> bool:
    """Is it time to start this child again?"""
    return record.next_start_at is not None and now >= record.next_start_at


def restarted(record: ChildRecord, *, now: float) -> ChildRecord:
    return replace(record, started_at=now, restarts=record.restarts + 1, next_start_at=None)


def status(record: ChildRecord, *, now: float, wall_now: float) -> dict[str, object]:
    """The child as /healthz shows it. The next attempt is a wall-clock time (UTC), so that
    the answer stays true however long after the supervisor wrote it it is read."""
    next_attempt = None
    if record.next_start_at is not None:
        at = wall_now + max(0.0, record.next_start_at - now)
        next_attempt = datetime.fromtimestamp(at, UTC).isoformat(timespec="seconds")
    return {
        "state": record.state,
        "restarts": record.restarts,
        "last_exit": record.last_exit,
        "next_attempt_at": next_attempt,
    }


def describe_exit(name: str, record: ChildRecord, decision: Restart | GiveUp) -> str:
    """The log line for an exit: which child, its code, how many restarts, what comes next."""
    head = f"{name} exited with code {record.last_exit} (restarts so far: {record.restarts}"
    if isinstance(decision, GiveUp):
        return f"{head}); it keeps crashing: {decision.reason}"
    return f"{head}); next attempt in {decision.delay_s:g} s"
