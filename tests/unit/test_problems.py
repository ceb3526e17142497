"""Refusal reasons: English where a string went before, and every one in each language."""

from __future__ import annotations

import pytest

from app.i18n import catalogues, translate
from app.learning.classifier import Candidate, _refusal
from app.learning.dataset import training_problems
from app.policy.problems import Problem, codes
from app.policy.retrain import DatasetRules, dataset_problems


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


OTHERS = [
    Problem("(training.py)", "nothing_to_fine_tune"),
    Problem("(runs.py)", "too_few_crops", count=2, minimum=50),
]


def test_a_problem_is_its_english_text_with_a_code_beside_it() -> None:
    [few, empty, small] = dataset_problems(
        {"hole": 1}, 4, ["stain", "hole"], DatasetRules(min_samples=10, min_per_class=3)
    )
    assert few == "only 4 samples; at least 10 needed" and isinstance(few, str)
    assert empty == "class stain has no examples"
    assert small.code() == {"key": "class_small", "params": {"name": "hole", "count": 1,
                                                             "minimum": 3}}  # fmt: skip
    # A plain string (as older code and older rows have) has no code to say it again with.
    assert codes([few, "as written"]) == [few.code(), None]


@pytest.mark.parametrize("language", sorted(catalogues()))
def test_every_refusal_reason_is_said_in_each_language(language: str) -> None:
    for problem in [*pure_problems(), *OTHERS]:
        key = f"refusal.{problem.key}"
        assert key in catalogues()[language], key
        said = translate(language, key, **problem.params)
        assert "{" not in said  # every placeholder was filled
        if language == "en" and problem not in OTHERS:
            # The page says what the command line says (less its command-line hints).
            assert problem.startswith(said), (problem, said)
