"""Refusal reasons: English where a string went before, and every one in each language."""

from __future__ import annotations

import copy
import pickle

import pytest

from app.i18n import catalogues, translate
from app.learning.classifier import Candidate, _refusal
from app.learning.dataset import training_problems
from app.policy.problems import Problem, codes
from app.policy.retrain import (
    DatasetRules,
    TriggerInput,
    TriggerRules,
    dataset_problems,
    should_retrain,
)


def pure_problems() -> list[Problem]:
    """What the pure checks refuse with; the other two keys need a database to produce."""
    rules = DatasetRules(min_samples=10, min_per_class=3)
    champion = Candidate("/m", "v2")
    return [
        *dataset_problems({"hole": 1}, 4, ["stain", "hole"], rules),
        *training_problems(40, {"stain": 20, "mud": 3}, ["stain"], rules),
        _refusal(champion, same=True, weights="w1"),
        _refusal(Candidate("/m", "v2", calibrate=True), same=False, weights="w1"),
    ]


def trigger_reasons() -> list[Problem]:
    data = TriggerInput(new_verified_samples=1200, reviewed=40, disagreements=12,
                        class_precision={"stain": 0.5}, class_support={"stain": 30})  # fmt: skip
    return should_retrain(data, TriggerRules()).reasons


OTHERS = [
    Problem("(training.py)", "refusal.nothing_to_fine_tune"),
    Problem("(runs.py)", "refusal.too_few_crops", count=2, minimum=50),
]
# What app.learning.trigger notes (it needs a database to produce them).
NOTES = [
    Problem("(trigger.py)", "trigger_note.cooling_down", run=3, until="2026-11-21 10:00"),
    Problem("(trigger.py)", "trigger_note.run_in_progress", run=3),
    Problem("(trigger.py)", "trigger_note.refused", run=3),
    Problem("(trigger.py)", "trigger_note.started", run=3),
]


def test_the_triggers_reasons_fire_with_their_numbers() -> None:
    assert trigger_reasons() == [
        "1200 new verified samples (trigger 1000)",
        "disagreement 30.0% of 40 reviews (trigger 15%)",
        "stain precision 0.50 over 30 regions (trigger < 0.70)",
    ]


def test_a_problem_is_its_english_text_with_a_code_beside_it() -> None:
    [few, empty, small] = dataset_problems(
        {"hole": 1}, 4, ["stain", "hole"], DatasetRules(min_samples=10, min_per_class=3)
    )
    assert few == "only 4 samples; at least 10 needed" and isinstance(few, str)
    assert empty == "class stain has no examples"
    assert small.code() == {"key": "refusal.class_small", "params": {"name": "hole", "count": 1,
                                                             "minimum": 3}}  # fmt: skip
    assert copy.deepcopy(small).code() == small.code()
    assert pickle.loads(pickle.dumps(small)).code() == small.code()
    # A plain string (as older code and older rows have) has no code to say it again with.
    assert codes([few, "as written"]) == [few.code(), None]


@pytest.mark.parametrize("language", sorted(catalogues()))
def test_every_refusal_reason_is_said_in_each_language(language: str) -> None:
    for problem in [*pure_problems(), *trigger_reasons(), *NOTES, *OTHERS]:
        key = problem.key
        assert key in catalogues()[language], key
        said = translate(language, key, **problem.params)
        assert "{" not in said  # every placeholder was filled
        if language == "en" and problem not in OTHERS + NOTES:
            # The page says what the command line says (less its command-line hints).
            assert problem.startswith(said), (problem, said)
