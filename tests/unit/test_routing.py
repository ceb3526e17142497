"""The routing policy, table-tested against DESIGN.md's rules."""

import pytest

from app.policy.routing import DecisionTable, RegionScore, Thresholds, region_confidence, route
from app.policy.sampling import audit_draw

T = Thresholds()  # 0.25 / 0.95 / 0.70, audit 2 %
TABLE = DecisionTable()
NO_AUDIT = 0.99


def r(det: float, prob: float, dtype: str = "stain", sev: str = "moderate") -> RegionScore:
    return RegionScore(detector_score=det, type_probability=prob, defect_type=dtype, severity=sev)


@pytest.mark.parametrize(
    ("regions", "kind", "reason", "verdict"),
    [
        ([], "auto_pass", "no_defect", "pass"),
        ([r(0.24, 1.0)], "auto_pass", "no_defect", "pass"),  # below the detector threshold
        ([r(0.99, 0.99, sev="severe")], "auto_reject", "confident", "reject"),
        ([r(0.99, 0.99, sev="moderate")], "auto_reject", "confident", "reject"),
        ([r(0.99, 0.99, sev="minor")], "auto_pass", "confident", "pass"),
        ([r(0.99, 0.99, dtype="normal", sev="severe")], "auto_pass", "confident", "pass"),
        ([r(0.9, 0.9)], "review", "uncertain", None),  # 0.81 is in [0.70, 0.95)
        ([r(1.0, 0.70)], "review", "uncertain", None),  # the low bound is inclusive
        ([r(1.0, 0.95, sev="severe")], "auto_reject", "confident", "reject"),  # high inclusive
        ([r(0.8, 0.8)], "auto_pass", "likely_false_alarm", "pass"),  # 0.64 < 0.70
        # a confident minor stain does not auto-pass a doubtful second region
        ([r(0.99, 0.99, sev="minor"), r(0.9, 0.85, "hole", "severe")], "review", "uncertain", None),
        # a confident reject decides the item whatever else is on it
        ([r(0.99, 0.99, "hole", "severe"), r(0.9, 0.85)], "auto_reject", "confident", "reject"),
    ],
)
def test_route_table(regions, kind, reason, verdict):
    result = route(regions, T, TABLE, NO_AUDIT)
    assert (result.kind, result.reason, result.verdict) == (kind, reason, verdict)
    assert result.is_audit is False


def test_failure_goes_to_review_never_to_a_pass():
    result = route(None, T, TABLE, NO_AUDIT)
    assert result.kind == "review"
    assert result.reason == "inference_unavailable"
    assert result.verdict is None


@pytest.mark.parametrize("regions", [[], [r(0.99, 0.99, sev="severe")], [r(0.5, 0.5)]])
def test_audit_sample_of_automatic_routes_goes_to_review(regions):
    audited = route(regions, T, TABLE, audit_draw=0.01)
    assert audited.kind == "review"
    assert audited.is_audit is True
    assert audited.verdict is None


def test_review_items_are_not_marked_as_audits():
    assert route([r(0.9, 0.9)], T, TABLE, audit_draw=0.0).is_audit is False


def test_review_priority_carries_confidence_and_worst_severity():
    result = route([r(0.9, 0.9, sev="minor"), r(0.9, 0.85, sev="severe")], T, TABLE, NO_AUDIT)
    assert result.confidence == pytest.approx(0.81)
    assert result.severity == "severe"


def test_thresholds_are_configuration():
    strict = Thresholds(detector=0.5, high=0.99, low=0.5)
    assert route([r(0.4, 1.0)], strict, TABLE, NO_AUDIT).reason == "no_defect"
    assert route([r(0.97, 0.97, sev="severe")], strict, TABLE, NO_AUDIT).kind == "review"


def test_site_override_makes_a_hole_always_a_reject():
    table = DecisionTable.from_json('{"hole": {"*": "reject"}}')
    assert route([r(0.99, 0.99, "hole", "minor")], T, table, NO_AUDIT).kind == "auto_reject"
    assert route([r(0.99, 0.99, "stain", "minor")], T, table, NO_AUDIT).kind == "auto_pass"


@pytest.mark.parametrize(
    "bad", ['["hole"]', '{"hole": "reject"}', '{"hole": {"*": "maybe"}}', "{not json"]
)
def test_bad_override_json_is_refused(bad):
    with pytest.raises(ValueError):
        DecisionTable.from_json(bad)


def test_unknown_severity_is_never_passed():
    assert TABLE.verdict("stain", "catastrophic") == "reject"


def test_region_confidence_needs_both_models_sure():
    assert region_confidence(0.99, 0.5) < 0.70
    assert region_confidence(1.0, 1.0) == 1.0


def test_audit_draw_is_stable_and_roughly_uniform():
    assert audit_draw("abc") == audit_draw("abc")
    draws = [audit_draw(str(i)) for i in range(20_000)]
    assert all(0.0 <= d < 1.0 for d in draws)
    share = sum(d < 0.02 for d in draws) / len(draws)
    assert 0.015 < share < 0.025


def failed(det: float = 0.9) -> RegionScore:
    return RegionScore(det, 0.0, "unknown", "unknown", failed=True)


def test_a_region_the_models_could_not_judge_sends_the_item_to_review():
    result = route([r(0.99, 0.99, sev="minor"), failed()], T, TABLE, audit_draw=0.0)
    assert (result.kind, result.reason, result.verdict, result.is_audit) == (
        "review",
        "model_error",
        None,
        False,
    )
    # Below the detector threshold a failed region is as irrelevant as any other.
    assert route([failed(det=0.1)], T, TABLE, NO_AUDIT).kind == "auto_pass"


@pytest.mark.parametrize("regions", [[], [r(0.99, 0.99, sev="severe")], [r(0.3, 0.3)]])
def test_cold_start_sends_everything_to_review(regions):
    result = route(regions, T, TABLE, audit_draw=0.0, cold_start=True)
    assert (result.kind, result.reason, result.verdict, result.is_audit) == (
        "review",
        "cold_start",
        None,
        False,
    )


def test_cold_start_keeps_the_confidence_for_priority():
    result = route([r(1.0, 0.8, sev="severe")], T, TABLE, NO_AUDIT, cold_start=True)
    assert result.confidence == pytest.approx(0.8) and result.severity == "severe"


def test_a_normal_regions_severity_does_not_raise_priority():
    result = route([r(0.9, 0.9, "normal", "severe"), r(0.9, 0.85, sev="minor")], T, TABLE, 0.99)
    assert result.kind == "review" and result.severity == "minor"


def test_a_confidence_that_is_not_a_number_is_never_sure():
    assert region_confidence(float("nan"), 0.99) == 0.0
    assert route([r(0.99, float("nan"))], T, TABLE, NO_AUDIT).reason == "likely_false_alarm"


def test_the_policy_is_built_once_from_settings_and_follows_a_copy():
    from app.config import Settings

    settings = Settings(threshold_high=0.9, decision_overrides='{"hole": {"*": "reject"}}')
    policy = settings.routing
    assert settings.routing is policy  # built once
    assert (policy.thresholds.high, policy.table.verdict("hole", "minor")) == (0.9, "reject")
    stricter = settings.model_copy(update={"threshold_high": 0.99})
    assert stricter.routing.thresholds.high == 0.99 and settings.routing is policy
    assert policy.route([r(0.99, 0.99, "hole", "minor")], NO_AUDIT).kind == "auto_reject"
