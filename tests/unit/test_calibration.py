"""Temperature scaling on plain data: the winner never changes, a known miscalibration is
recovered, the cross-fitted error improves on an overconfident model, and the fitted
temperature reaches the served arm and the final distribution of a classification."""

from __future__ import annotations

import math
import random

import pytest

from models.calibration import fit_temperature, nll, temper
from models.contracts import ModelPair
from models.serve.app import AppSettings
from models.training.evaluate_classifier import Answer, classifier_metrics
from models.two_step import classify
from tests.unit.test_models_two_step import FakeScorer, questionnaire

CHOICES = ("stain", "hole", "tear", "normal")


def softmax(logits: list[float]) -> dict[str, float]:
    peak = max(logits)
    weights = [math.exp(v - peak) for v in logits]
    return {c: w / sum(weights) for c, w in zip(CHOICES, weights, strict=True)}


def overconfident_answers(n: int, sharpen: float, seed: int = 0) -> list[Answer]:
    """People's answers drawn from the true probabilities; the model reports them
    sharpened (logits times `sharpen`), so temperature `sharpen` undoes it."""
    rng = random.Random(seed)
    answers = []
    for _ in range(n):
        logits = [rng.gauss(0, 1.2) for _ in CHOICES]
        truth = softmax(logits)
        human = rng.choices(CHOICES, weights=[truth[c] for c in CHOICES])[0]
        reported = softmax([v * sharpen for v in logits])
        model = max(reported, key=reported.__getitem__)
        answers.append(Answer(human, None if human == "normal" else "minor", model, "minor",
                              reported[model], distribution=reported))  # fmt: skip
    return answers


def test_temper_keeps_the_winner_and_sums_to_one():
    distribution = {"stain": 0.7, "hole": 0.2, "normal": 0.1}
    assert temper(distribution, 1.0) == distribution
    for t in (0.3, 2.0, 10.0):
        scaled = temper(distribution, t)
        assert max(scaled, key=scaled.__getitem__) == "stain"
        assert sum(scaled.values()) == pytest.approx(1.0)
    assert temper(distribution, 2.0)["stain"] < 0.7 < temper(distribution, 0.5)["stain"]
    assert temper({"stain": 1.0, "hole": 0.0}, 2.0)["hole"] > 0.0  # no log(0)
    for bad in (0.0, -1.0, math.inf, math.nan):
        with pytest.raises(ValueError, match="temperature"):
            temper(distribution, bad)


def test_a_known_overconfidence_is_recovered():
    answers = overconfident_answers(1200, sharpen=2.0)
    pairs = [(a.distribution, a.human_type) for a in answers]
    fitted = fit_temperature(pairs)
    assert fitted == pytest.approx(2.0, rel=0.1)
    assert nll(pairs, fitted) < nll(pairs, 1.0)
    assert fit_temperature([]) == 1.0


def test_the_cross_fitted_error_shrinks_and_accuracy_does_not_move():
    answers = overconfident_answers(800, sharpen=3.0, seed=1)
    metrics = classifier_metrics(answers)
    assert metrics.temperature == pytest.approx(3.0, rel=0.15)
    assert metrics.calibrated_error < metrics.calibration_error / 2
    calibrated = [
        Answer(a.human_type, a.human_severity, a.model_type, a.model_severity,
               temper(a.distribution, metrics.temperature)[a.model_type],
               distribution=temper(a.distribution, metrics.temperature))
        for a in answers
    ]  # fmt: skip
    assert classifier_metrics(calibrated).accuracy == metrics.accuracy


def test_the_final_distribution_is_scaled_and_its_label_kept():
    plain = questionnaire()
    [unscaled] = classify(FakeScorer("stain"), 1, plain)
    [scaled] = classify(FakeScorer("stain"), 1, plain, temperature=2.0)
    assert scaled.defect_type == unscaled.defect_type == "stain"
    assert scaled.type_probability < unscaled.type_probability
    assert scaled.type_distribution == unscaled.type_distribution  # step 1 as scored
    assert scaled.final_distribution == pytest.approx(temper(unscaled.final_distribution, 2.0))


def test_each_arm_is_served_with_its_versions_temperature():
    settings = AppSettings(
        champion=ModelPair("", "/m/cls", "v2", 1.4), challenger=ModelPair("", "/m/cls", "v3"),
        challenger_share=0.1,
    )  # fmt: skip
    configs = settings.user_configs()
    assert configs["Classifier"]["temperature"] == 1.4
    assert configs["ChallengerClassifier"]["temperature"] == 1.0
