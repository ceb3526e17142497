"""`loupe simulate`, short: two days of a simulated site against the running stack (tiny
models), through the public interfaces only. Stations upload garments with known
defects; inspectors made for the run log in and work the queue over HTTP as the page
does; the daily table comes out on stdout and as CSV, and the backlog clears.

It runs after the browser tests (its file name sorts last): the stack is shared, and its
inspectors confirm any item they do not know."""

from __future__ import annotations

import csv

import pytest
from click.testing import CliRunner

from app.cli import main

pytestmark = pytest.mark.e2e


def test_two_simulated_days_run_through_the_whole_loop(live_stack, tmp_path, monkeypatch):
    monkeypatch.setenv("LOUPE_SIMULATE_ADMIN_PASSWORD", live_stack.password("admin"))
    table = tmp_path / "days.csv"
    result = CliRunner().invoke(main, [
        "simulate", "--days", "2", "--stations", "2", "--inspectors", "2",
        "--items-per-day", "4", "--speed", "43200", "--inspector-error", "0",
        "--defect-rate", "0.5", "--drain-timeout", "240", "--csv", str(table),
        "--url", live_stack.base_url, "--token", live_stack.station_token,
        "--var-dir", str(tmp_path),
    ])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "simulating 2 day(s)" in result.output and "after the backlog cleared" in result.output
    rows = list(csv.DictReader(table.open()))
    assert [(r["day"], r["items"], r["routed"], r["decided"]) for r in rows] == [
        ("1", "4", "4", "4"), ("2", "4", "4", "4"),
    ]  # fmt: skip
    assert rows[-1]["backlog"] == "0"
    for row in rows:
        assert row["detector"] != "-" and row["classifier"] != "-"
        # Inspectors who make no mistakes decide every garment they see right.
        if float(row["human_share"]) == 1.0:
            assert float(row["accuracy"]) == 1.0
    assert "inspectors decided" in result.output
