"""`loupe run`'s restart decisions: backoff, its reset after a stable run, and giving up."""

from __future__ import annotations

from datetime import UTC, datetime

from app.policy import restarts
from app.policy.restarts import ChildRecord, GiveUp, Restart, RestartPolicy

POLICY = RestartPolicy()  # 1 s doubling to 60 s; stable after 60 s; 5 exits in 600 s


def crash_loop(record: ChildRecord, times: list[float], policy: RestartPolicy = POLICY):
    """Exits at the given times, each restart at once after its delay; the decisions."""
    decisions = []
    for at in times:
        record, decision = restarts.exited(record, code=-9, now=at, policy=policy)
        decisions.append(decision)
        if isinstance(decision, GiveUp):
            break
        record = restarts.restarted(record, now=record.next_start_at)
    return record, decisions


def test_the_delay_doubles_from_one_second_up_to_a_minute():
    assert [restarts.backoff_s(n, POLICY) for n in range(1, 10)] == [
        1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 60.0, 60.0, 60.0,
    ]  # fmt: skip


def test_a_child_that_dies_at_start_waits_longer_each_time_then_gives_up():
    record = ChildRecord(started_at=0.0)
    now, times = 0.0, []
    for delay in (0, 1, 2, 4, 8):  # it dies 0.5 s after each start
        now += delay + 0.5
        times.append(now)
    record, decisions = crash_loop(record, times)
    assert decisions[:4] == [Restart(1.0), Restart(2.0), Restart(4.0), Restart(8.0)]
    assert isinstance(decisions[4], GiveUp) and "5 exits within 600 s" in decisions[4].reason
    assert record.gave_up and record.state == "gave_up" and record.restarts == 4


def test_a_stable_run_starts_the_delays_over():
    record = ChildRecord(started_at=0.0)
    record, decisions = crash_loop(record, [1.0, 3.5, 8.0])  # three quick crashes: 1, 2, 4 s
    assert decisions == [Restart(1.0), Restart(2.0), Restart(4.0)]
    # Started again at 12 s, up for two minutes: healthy, so the next crash waits 1 s.
    record, decision = restarts.exited(record, code=1, now=132.0, policy=POLICY)
    assert decision == Restart(1.0) and record.streak == 1


def test_an_occasional_crash_is_restarted_forever():
    # Every 4 minutes: never 5 exits within 10 minutes.
    record, decisions = crash_loop(ChildRecord(started_at=0.0), [240.0 * i for i in range(1, 30)])
    assert all(d == Restart(1.0) for d in decisions) and len(decisions) == 29
    assert record.restarts == 29 and len(record.crashes) == 3


def test_a_child_that_runs_a_minute_and_dies_each_time_gives_up_within_minutes():
    times = [61.0 * i for i in range(1, 10)]
    record, decisions = crash_loop(ChildRecord(started_at=0.0), times)
    assert isinstance(decisions[-1], GiveUp) and len(decisions) == 5


def test_only_crashes_within_the_window_count():
    policy = RestartPolicy(max_crashes=3, window_s=100.0)
    assert isinstance(restarts.decide((10.0, 50.0, 90.0), 3, policy), GiveUp)
    record = ChildRecord(started_at=200.0, crashes=(10.0, 50.0), streak=2)
    record, decision = restarts.exited(record, code=1, now=201.0, policy=policy)
    assert isinstance(decision, Restart) and record.crashes == (201.0,)


def test_a_waiting_child_is_due_at_its_time_and_then_running_again():
    record, decision = restarts.exited(ChildRecord(started_at=0.0), code=-9, now=5.0, policy=POLICY)
    assert record.state == "restarting" and record.last_exit == -9
    assert not restarts.due(record, 5.9) and restarts.due(record, 6.0)
    record = restarts.restarted(record, now=6.0)
    assert (record.state, record.restarts, record.started_at) == ("running", 1, 6.0)
    assert not restarts.due(record, 100.0)


def test_the_status_names_state_restarts_exit_and_the_next_attempt_in_wall_time():
    record, _ = restarts.exited(ChildRecord(started_at=0.0), code=-9, now=5.0, policy=POLICY)
    wall = datetime(2026, 12, 1, 8, 0, 0, tzinfo=UTC).timestamp()
    assert restarts.status(record, now=5.0, wall_now=wall) == {
        "state": "restarting",
        "restarts": 0,
        "last_exit": -9,
        "next_attempt_at": "2026-12-01T08:00:01+00:00",
    }
    running = restarts.restarted(record, now=6.0)
    assert restarts.status(running, now=7.0, wall_now=wall)["next_attempt_at"] is None


def test_the_log_line_says_which_child_its_code_restarts_and_what_comes_next():
    record = ChildRecord(started_at=0.0, restarts=2)
    record, decision = restarts.exited(record, code=-9, now=1.0, policy=POLICY)
    line = restarts.describe_exit("worker", record, decision)
    assert line == "worker exited with code -9 (restarts so far: 2); next attempt in 1 s"
    record, decision = restarts.exited(
        ChildRecord(started_at=0.0, crashes=(0.1, 0.2, 0.3, 0.4)), code=3, now=0.5, policy=POLICY
    )
    line = restarts.describe_exit("serve", record, decision)
    assert "keeps crashing: 5 exits within 600 s" in line
