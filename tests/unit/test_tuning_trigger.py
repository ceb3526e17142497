"""The classifier's trigger (app.policy.retrain.should_tune): when it fires, and why not."""

from __future__ import annotations

import pytest

from app.i18n import catalogues, translate
from app.policy.problems import Problem
from app.policy.retrain import ClassifierTriggerInput, ClassifierTriggerRules, should_tune

RULES = ClassifierTriggerRules(min_new_crops=500, max_error_rate=0.10,
                               max_false_positives_per_1000=50.0)  # fmt: skip


def data(new: int = 600, judged: int = 200, errors: int = 10, normal: int = 100,
         false_positives: int = 2) -> ClassifierTriggerInput:  # fmt: skip
    return ClassifierTriggerInput(new, judged, errors, normal, false_positives)


@pytest.mark.parametrize(
    ("seen", "fires", "keys"),
    [
        # Enough new crops, both measures within their bars: quiet, and where each stood.
        (data(), False, ["tune_new_crops", "tune_error_rate_within",
                         "tune_false_positives_within"]),
        # The error rate above its bar: fires, and only the bar crossed is a reason.
        (data(errors=21), True, ["tune_new_crops", "tune_error_rate"]),
        # False positives above theirs: 6 in 100 normal regions is 60 per 1,000.
        (data(false_positives=6), True, ["tune_new_crops", "tune_false_positives"]),
        (data(errors=30, false_positives=6), True,
         ["tune_new_crops", "tune_error_rate", "tune_false_positives"]),
        # A bar crossed but too few new crops to tune on: quiet, saying both.
        (data(new=499, errors=30), False, ["tune_few_crops", "tune_error_rate"]),
        (data(new=10), False, ["tune_few_crops", "tune_error_rate_within",
                               "tune_false_positives_within"]),
        # Exactly at a bar is not above it; exactly the crops needed is enough.
        (data(new=500, errors=20, false_positives=5), False,
         ["tune_new_crops", "tune_error_rate_within", "tune_false_positives_within"]),
        (data(new=500, errors=21), True, ["tune_new_crops", "tune_error_rate"]),
        # Nothing to measure a rate on is above no bar.
        (data(judged=0, errors=0, normal=0, false_positives=0), False,
         ["tune_new_crops", "tune_no_judged", "tune_no_normal"]),
        (data(normal=0, false_positives=0, errors=40), True,
         ["tune_new_crops", "tune_error_rate"]),
    ],
)  # fmt: skip
def test_it_fires_on_enough_new_crops_and_a_bar_crossed(
    seen: ClassifierTriggerInput, fires: bool, keys: list[str]
) -> None:
    decision = should_tune(seen, RULES)
    assert decision.fire is fires
    assert [reason.key for reason in decision.reasons] == [f"trigger.{key}" for key in keys]
    assert all(isinstance(reason, Problem) for reason in decision.reasons)


def test_the_reasons_carry_their_numbers() -> None:
    fired = should_tune(data(new=640, errors=30, false_positives=6), RULES)
    assert fired.reasons == [
        "640 new verified crops since the last tuning (trigger 500)",
        "30 classification errors in 200 judged regions: 15.0% (trigger > 10%)",
        "6 false positives in 100 normal regions: 60.0 per 1,000 (trigger > 50)",
    ]
    assert fired.reasons[1].code() == {
        "key": "trigger.tune_error_rate",
        "params": {"rate": "15.0%", "errors": 30, "judged": 200, "trigger": "10%"},
    }
    quiet = should_tune(data(new=12, judged=0, errors=0), RULES)
    assert quiet.reasons == [
        "only 12 new verified crops since the last tuning (trigger 500)",
        "no judged regions in the window to measure classification errors on (trigger > 10%)",
        "2 false positives in 100 normal regions: 20.0 per 1,000 (within 50)",
    ]


def test_the_rates_and_odd_bars_read_right() -> None:
    assert data(judged=0, errors=0).error_rate is None
    assert data(normal=0, false_positives=0).false_positives_per_1000 is None
    assert data(normal=400, false_positives=3).false_positives_per_1000 == pytest.approx(7.5)
    rules = ClassifierTriggerRules(min_new_crops=1, max_error_rate=0.125,
                                   max_false_positives_per_1000=7.5)  # fmt: skip
    decision = should_tune(data(errors=26, normal=400, false_positives=4), rules)
    assert decision.fire
    assert decision.reasons[1].params["trigger"] == "12.5%"
    assert decision.reasons[2].params == {"per_1000": "10.0", "count": 4, "normal": 400,
                                          "trigger": "7.5"}  # fmt: skip


def every_reason() -> list[Problem]:
    seen = [
        data(errors=30, false_positives=6),
        data(new=1),
        data(judged=0, errors=0, normal=0, false_positives=0),
    ]
    return [reason for d in seen for reason in should_tune(d, RULES).reasons]


# What app.learning.tuning_trigger notes beside the detector's notes (it needs a database).
NOTES = [
    Problem("(tuning_trigger.py)", "trigger_note.no_champion"),
    Problem("(tuning_trigger.py)", "trigger_note.cannot_tune", reason="nothing to tune"),
]


@pytest.mark.parametrize("language", sorted(catalogues()))
def test_every_reason_is_said_in_each_language(language: str) -> None:
    reasons = every_reason()
    assert {r.key for r in reasons} >= {
        "trigger.tune_new_crops", "trigger.tune_few_crops", "trigger.tune_error_rate",
        "trigger.tune_error_rate_within", "trigger.tune_no_judged",
        "trigger.tune_false_positives", "trigger.tune_false_positives_within",
        "trigger.tune_no_normal",
    }  # fmt: skip
    for problem in [*reasons, *NOTES]:
        assert problem.key in catalogues()[language], problem.key
        said = translate(language, problem.key, **problem.params)
        assert "{" not in said and said.strip()
        if language == "en":
            # The catalogue says what the English text says (the notes' text is the log's).
            assert said == problem or problem in NOTES
