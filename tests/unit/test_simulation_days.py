"""The simulated site's daily table (app.simulation.days), worked out by hand."""

from __future__ import annotations

import pytest

from app.simulation.days import Seen, day_row, table
from app.simulation.garments import garment


def seen(day, truth, route=None, verdict=None, by=None):  # type: ignore[no-untyped-def]
    """A garment as the API answers: routed once it has a route, queued before."""
    versions = ("det-1", "cls-1") if route else (None, None)
    return Seen(day, truth, "routed" if route else "queued", route, verdict, by, *versions)


def test_a_day_counts_its_own_garments_and_the_backlog_counts_them_all():
    garments = [
        seen(1, "reject", "auto_pass", "pass", "model"),  # an escape
        seen(1, "pass", "auto_reject", "reject", "model"),  # a false reject
        seen(1, "reject", "review", "reject", "inspector"),
        seen(1, "pass", "review"),  # waiting for its inspector
        seen(2, "pass"),  # tomorrow's, still queued
    ]
    row = day_row(1, garments)
    assert (row.items, row.routed, row.decided, row.backlog) == (4, 4, 3, 2)
    assert row.automatic_share == pytest.approx(0.5) and row.human_share == pytest.approx(0.5)
    assert row.accuracy == pytest.approx(1 / 3)
    assert row.escape_rate == pytest.approx(1 / 3)
    assert row.false_reject_rate == pytest.approx(1 / 3)
    assert (row.detector, row.classifier) == ("det-1", "cls-1")
    empty = day_row(3, garments)
    assert (empty.items, empty.accuracy, empty.detector) == (0, None, "-")
    assert "  1     4  50.0%  50.0%       3    33.3%   33.3%       2  det-1 / cls-1" in table([row])


def test_a_garment_is_drawn_from_its_seed_with_the_truth_it_was_given():
    a, b = garment(7, 1, 3, defect_rate=1.0), garment(7, 1, 3, defect_rate=1.0)
    assert a == b and a.truth == "reject" and a.defects
    clean = garment(7, 1, 4, defect_rate=0.0)
    assert clean.truth == "pass" and clean.defects == ()
    assert clean.photo[:2] == b"\xff\xd8"  # a JPEG, as cameras send


def test_beat_runs_at_the_simulations_speed_on_its_own_stack():
    from app.simulation.cli import accelerated_settings

    env = accelerated_settings(speed=1440, items_per_day=40)  # a day is a minute
    assert env["LOUPE_RETRAIN_CHECK_INTERVAL_S"] == "5"  # a simulated hour, 2.5 s, floored
    assert env["LOUPE_RETRAIN_COOLDOWN_S"] == "120"  # a simulated day of those hours
    assert env["LOUPE_RETRAIN_MIN_NEW_SAMPLES"] == "40"  # a day's garments
    slow = accelerated_settings(speed=24, items_per_day=1000)  # a day is an hour
    assert slow["LOUPE_EXPERIMENT_CHECK_INTERVAL_S"] == "150"


def test_models_to_start_with_need_a_stack_of_its_own():
    from click.testing import CliRunner

    from app.simulation.cli import simulate

    result = CliRunner().invoke(simulate, ["--detector", "/models/detector"])
    assert result.exit_code == 2 and "give --own-stack" in result.output


@pytest.fixture
def signal_handlers():  # type: ignore[no-untyped-def]
    """The test process's own handlers back afterwards (the command leaves them ignored)."""
    import signal

    saved = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    yield
    for sig, handler in saved.items():
        signal.signal(sig, handler)


def test_sigterm_stops_the_simulations_own_stack(monkeypatch, tmp_path, signal_handlers):
    """SIGTERM used to end the process at once and leave the stack's servers running."""
    import os
    import signal
    import time

    from app import standalone
    from app.simulation import cli

    events = []

    class Stack:  # the servers are not what is tested here: that they are stopped is
        def __init__(self, options):  # type: ignore[no-untyped-def]
            self.base_url = "http://127.0.0.1:1"

        def start(self) -> None:
            events.append("start")
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(5)  # the signal arrives first
            events.append("not interrupted")

        def stop(self) -> None:
            events.append("stop")

    monkeypatch.setattr(standalone, "Stack", Stack)
    plan = cli.Plan(1, 1, 1, 1, 0.0, 0.3, 1440.0, 0.0, 0, None, "admin")
    cli._on_own_stack(plan, tmp_path, {}, None, None)
    assert events == ["start", "stop"]
    assert signal.getsignal(signal.SIGTERM) == signal.SIG_IGN  # while stopping
