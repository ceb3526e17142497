"""Live progress throttling, the heartbeat thread, and what the command line prints."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest

from app.learning.progress import Heartbeat, ProgressReporter, RunAbandoned
from app.learning.report import check_line, metrics_lines, run_lines
from app.learning.tables import TrainingRun, TriggerCheck

NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_progress_is_written_at_most_every_interval_and_always_at_the_end():
    clock, written = Clock(), []

    def write(**values: float) -> bool:
        written.append(values)
        return True

    report = ProgressReporter(write=write, every_s=1.0, pool_size=10, batch_size=4, clock=clock)
    for step in range(1, 11):
        clock.now = step * 0.3  # 0.3 s a step
        report(step, 10, 1.0 / step, (10 - step) * 0.3)
    assert [w["step"] for w in written] == [1, 5, 9, 10]
    assert written[-1] == {"step": 10, "total_steps": 10, "loss": 0.1, "eta_s": 0.0, "epoch": 4.0}


def test_a_run_taken_away_stops_training():
    report = ProgressReporter(write=lambda **_: False, every_s=0.0, pool_size=2, batch_size=8)
    with pytest.raises(RunAbandoned, match="step 3"):
        report(3, 10, 0.5, 1.0)


def test_the_heartbeat_beats_until_the_block_ends():
    beats = threading.Semaphore(0)
    with Heartbeat(beats.release, every_s=0.01) as heartbeat:
        assert beats.acquire(timeout=5) and beats.acquire(timeout=5)
    assert not heartbeat.thread.is_alive()


def test_a_failing_beat_does_not_stop_the_heartbeat():
    calls = []

    def beat() -> None:
        calls.append(1)
        raise ConnectionError("database restarting")

    with Heartbeat(beat, every_s=0.01) as heartbeat:
        while len(calls) < 3:
            heartbeat.stop.wait(0.01)


def _run(**values: object) -> TrainingRun:
    defaults = {"id": 7, "status": "running", "phase": "training", "trigger": "cli", "step": 40,
                "total_steps": 100, "loss": 1.25, "eta_s": 30.0, "epoch": 1.5,
                "created_at": NOW, "heartbeat_at": NOW - timedelta(seconds=4),
                "refusal_reasons": [], "metrics": {}}  # fmt: skip
    return TrainingRun(**{**defaults, **values})


def test_a_running_run_shows_its_progress():
    lines = run_lines(_run(), now=NOW)
    assert lines[0] == "run 7: running (training), started by cli"
    assert lines[-1] == (
        "  step 40/100, epoch 1.50, loss 1.2500, about 30 s left, last heard 4 s ago"
    )


def test_a_finished_run_shows_metrics_and_every_gate_reason():
    metrics = {"evaluated_on": "val", "images": 12, "map50": 0.5, "map50_95": 0.25,
               "precision": None, "recall": 0.75, "note": "the frozen test set is empty",
               "per_class": {"hole": {"ap50": 0.5, "precision": 0.6, "recall": 0.7,
                                      "ground_truth": 4}},
               "baseline": {"version": "det-a1", "map50": 0.4}}  # fmt: skip
    gate = {"passed": False, "reasons": ["FAIL: map50 0.5000 (minimum 0.85)", "pass: recall"]}
    lines = run_lines(_run(status="succeeded", phase="done", metrics=metrics, gate=gate,
                           model_version_id=3))  # fmt: skip
    text = "\n".join(lines)
    assert (
        "metrics on the val split (12 photos): map50 0.5000, map50_95 0.2500, precision -" in text
    )
    assert "note: the frozen test set is empty" in text
    assert "hole           AP50 0.5000  precision 0.6000  recall 0.7000  (4 boxes)" in text
    assert "baseline det-a1: map50 0.4000" in text
    assert "gate FAILED:\n    FAIL: map50 0.5000 (minimum 0.85)\n    pass: recall" in text
    assert "about" not in text  # no ETA for a finished run
    assert metrics_lines({"evaluated_on": None, "note": "nothing"}) == ["not evaluated: nothing"]


def test_a_refused_run_and_a_check_in_one_line():
    refused = run_lines(_run(status="refused", phase="refused", total_steps=None,
                             refusal_reasons=["only 3 samples; at least 200 needed"]))  # fmt: skip
    assert refused[-1] == "  refused: only 3 samples; at least 200 needed"
    check = TriggerCheck(checked_at=NOW, new_verified_samples=12, reviewed=40, disagreements=8,
                         class_precision={"stain": 0.5, "hole": 0.9}, class_support={"stain": 30},
                         fired=True, reasons=["disagreement 20.0% of 40 reviews (trigger 15%)"],
                         note="started run 4")  # fmt: skip
    assert check_line(check) == (
        "2026-11-21 12:00:00 UTC  FIRED  detector: new samples 12, disagreement 20.0% of 40, "
        "lowest precision stain 0.50/30, hole 0.90/0\n"
        "    disagreement 20.0% of 40 reviews (trigger 15%)\n    started run 4"
    )
