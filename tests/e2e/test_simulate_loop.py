"""`loupe simulate`, short: two days of a simulated site against the running stack (tiny
models), through the public interfaces only. Stations upload garments with known
defects; inspectors made for the run log in and work the queue over HTTP as the page
does; the daily table comes out on stdout and as CSV, and the backlog clears.

It runs after the browser tests (its file name sorts last): the stack is shared, and its
inspectors confirm any item they do not know."""

from __future__ import annotations

import csv
from collections import Counter

import pytest
from click.testing import CliRunner
from sqlalchemy import create_engine, text

from app.cli import main
from app.simulation.garments import garment

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

    # The inspectors marked each garment's truth: the regions of every decision on a
    # simulated garment are its planted defects, one each (drawn where the model missed).
    engine = create_engine(live_stack.database_url)
    with engine.connect() as db:
        marked = db.execute(text("""
            SELECT i.external_id, coalesce(array_agg(r.defect_type) FILTER (
                       WHERE r.outcome <> 'not_defect' AND r.defect_type <> 'normal'), '{}')
            FROM review_task t JOIN inspection i ON i.id = t.inspection_id
            JOIN decision d ON d.id = t.decision_id
            LEFT JOIN decision_region r ON r.decision_id = d.id
            WHERE i.external_id LIKE 'sim-0-d%'
            GROUP BY i.external_id
        """)).all()  # fmt: skip
    engine.dispose()
    assert any(types for _, types in marked), "the inspectors marked some defects"
    for external_id, types in marked:
        day, index = external_id.split("-d")[1].split("-")
        planted = garment(0, int(day), int(index), defect_rate=0.5).defects
        assert Counter(types) == Counter(planted), external_id
