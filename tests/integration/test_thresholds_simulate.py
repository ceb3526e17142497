"""`loupe thresholds simulate` on a real PostgreSQL: the history as routed and decided,
read back in two queries and replayed under other bands."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from app.cli import main
from app.policy.routing import DecisionTable
from app.policy.thresholds import Band, RecordedItem, RecordedRegion, replay
from app.thresholds.tables import RoutingBand
from tests.integration.review_support import make_review_item

pytestmark = pytest.mark.integration

ROUTED = datetime(2026, 11, 18, 9, 0, tzinfo=UTC)


def routed(session, route, confidence, verdict, *, is_audit=False, severity="moderate",
           reason="uncertain", regions=1):  # type: ignore[no-untyped-def]  # fmt: skip
    task = make_review_item(session, confidence=confidence, severity=severity, is_audit=is_audit,
                            reason=reason, regions_per_photo=regions)  # fmt: skip
    inspection = task.inspection
    inspection.route, inspection.verdict, inspection.routed_at = route, verdict, ROUTED
    return inspection


def simulate(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["thresholds", "simulate", "--since", "2026-11-16",
                                       "--until", "2026-11-23", *args])  # fmt: skip
    return result.exit_code, result.output


def test_the_history_is_replayed_with_its_truth_where_people_checked(committed_db, tmp_path):
    routed(committed_db, "review", 0.80, "reject")
    routed(committed_db, "review", 0.85, "pass")
    routed(committed_db, "review", 0.72, "reject")
    routed(committed_db, "review", 0.97, "reject", is_audit=True, severity="minor")
    routed(committed_db, "review", 0.97, "pass", is_audit=True)
    routed(committed_db, "auto_reject", 0.97, "reject")
    routed(committed_db, "auto_reject", 0.97, "reject")
    routed(committed_db, "review", 0.97, None, is_audit=True)  # an audit not yet decided
    routed(committed_db, "review", 0.80, None)  # waiting: left out
    routed(committed_db, "review", 0.10, "reject", reason="inference_unavailable", regions=0)
    outside = routed(committed_db, "auto_pass", 0.99, "pass")
    outside.routed_at = ROUTED - timedelta(days=7)  # the week before
    committed_db.commit()

    code, out = simulate("--pairs", "0.95:0.70,0.80:0.75", "--min-support", "1", "--json",
                         "--var-dir", str(tmp_path))  # fmt: skip
    assert code == 0, out
    report = json.loads(out)
    assert (report["items"], report["waiting"], report["in_force"]) == (9, 1, "0.95:0.70")

    def region(confidence, severity="moderate"):  # type: ignore[no-untyped-def]
        return (RecordedRegion(0.9, confidence, "stain", severity),)

    expected = replay([
        RecordedItem(region(0.80), "reviewed", "reject"),
        RecordedItem(region(0.85), "reviewed", "pass"),
        RecordedItem(region(0.72), "reviewed", "reject"),
        RecordedItem(region(0.97, "minor"), "audited", "reject"),
        RecordedItem(region(0.97), "audited", "pass"),
        RecordedItem(region(0.97), "automatic", None),
        RecordedItem(region(0.97), "automatic", None),
        RecordedItem(region(0.97), "automatic", None),  # the audit not yet decided
        RecordedItem(None, "reviewed", "reject"),  # no regions: a human's, whatever the band
    ], [Band(0.95, 0.70), Band(0.80, 0.75)], table=DecisionTable(), detector_threshold=0.25,
       audit_rate=0.02, min_support=1)  # fmt: skip
    assert report["bands"] == [json.loads(json.dumps(e.as_dict())) for e in expected]
    in_force = report["bands"][0]
    # It passes one automatic item, the minor stain an audit found to be a defect: 1 of 9.
    assert in_force["escape"]["value"] == pytest.approx(1 / 9)

    code, out = simulate("--var-dir", str(tmp_path))
    assert code == 0 and "0.95:0.70" in out and "0.90:0.80" in out
    assert "refused: 9 decided items; at least 30 are needed" in out
    code, out = simulate("--grid", "--min-support", "1", "--var-dir", str(tmp_path))
    assert code == 0 and "the curve:" in out, out


def test_a_band_that_is_not_one_is_a_clear_error(committed_db, tmp_path):
    code, out = simulate("--pairs", "0.70:0.95", "--var-dir", str(tmp_path))
    assert code == 2 and "write HIGH:LOW with 0 <= LOW < HIGH <= 1" in out


def test_a_recommendation_says_its_guarantee_and_changes_nothing(committed_db, tmp_path):
    # The middle of the band in force went to people (all good items); 60 audits of the
    # confident rejects and of the minor stains found no mistake.
    for i in range(60):
        routed(committed_db, "review", 0.75 + 0.002 * i, "pass")
        routed(committed_db, "review", 0.97, "reject", is_audit=True)
        routed(committed_db, "review", 0.97, "pass", is_audit=True, severity="minor")
    for _ in range(200):
        routed(committed_db, "auto_reject", 0.97, "reject")
    committed_db.commit()

    result = CliRunner().invoke(main, ["thresholds", "recommend", "--max-escape", "0.05",
                                       "--since", "2026-11-16", "--until", "2026-11-23",
                                       "--var-dir", str(tmp_path)])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "With probability 0.9 the escape rate is at most 5.00% under 0.97:0.90" in result.output
    assert "sends 2.0% to people (the band in force, 0.95:0.70: 17.5%)" in result.output
    assert "Nothing was changed: --propose puts it on /ml/models" in result.output
    proposed = CliRunner().invoke(main, ["thresholds", "recommend", "--max-escape", "0.05",
                                         "--since", "2026-11-16", "--until", "2026-11-23",
                                         "--propose", "--var-dir", str(tmp_path)])  # fmt: skip
    assert "an ml user applies it on /ml/models" in proposed.output, proposed.output
    committed_db.rollback()
    [band] = committed_db.scalars(select(RoutingBand)).all()
    assert (band.high, band.low, band.state, band.source) == (0.97, 0.90, "proposed", "recommend")
    assert band.note.startswith("With probability 0.9 the escape rate is at most 5.00% (380 items")

    def recommend(max_escape: str):  # type: ignore[no-untyped-def]
        args = ["thresholds", "recommend", "--max-escape", max_escape, "--since", "2026-11-16",
                "--until", "2026-11-23", "--json", "--var-dir", str(tmp_path)]  # fmt: skip
        result = CliRunner().invoke(main, args)
        return result.exit_code, json.loads(result.output)

    # Nearly no escape: only bands that send every 0.97 to people are safe.
    code, strict = recommend("0.0001")
    assert code == 0 and strict["chosen"]["escape"]["unchecked"] == 0
    assert strict["chosen"]["human_share"] > strict["in_force"]["human_share"]
    # Photos where the detector found nothing pass under any band; audits found defects
    # in them: no band is safe.
    for _ in range(40):
        routed(committed_db, "review", 0.0, "reject", is_audit=True, regions=0)
    committed_db.commit()
    code, none = recommend("0.05")
    assert code == 1 and none["chosen"] is None and none["audits"] == 160
