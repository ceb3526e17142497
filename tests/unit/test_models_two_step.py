"""The two-step classification on plain data: questions, probabilities, exceptions."""

from __future__ import annotations

import math

import pytest

from models.exceptions import load_exceptions
from models.prompts import load_prompts
from models.taxonomy import load_taxonomy
from models.two_step import Question, Questionnaire, classify


def questionnaire(language: str = "en") -> Questionnaire:
    return Questionnaire(load_taxonomy(), load_prompts(), load_exceptions(), language)


class FakeScorer:
    """Answers from fixed scores and records every question it was asked."""

    def __init__(self, candidate: str, exception_yes: float = 0.1, severity: str = "moderate"):
        self.candidate, self.exception_yes, self.severity = candidate, exception_yes, severity
        self.asked: list[list[tuple[int, Question]]] = []

    def __call__(self, requests: list[tuple[int, Question]]) -> list[dict[str, float]]:
        self.asked.append(requests)
        return [self._answer(question) for _, question in requests]

    def _answer(self, question: Question) -> dict[str, float]:
        if question.choices == ("yes", "no"):
            return {"yes": self.exception_yes, "no": 1 - self.exception_yes}
        favourite = self.candidate if self.candidate in question.choices else self.severity
        rest = (1 - 0.7) / (len(question.choices) - 1)
        return {c: 0.7 if c == favourite else rest for c in question.choices}


def test_step1_lists_every_type_and_step2_names_the_candidate() -> None:
    q = questionnaire()
    step1 = q.step1()
    assert step1.choices == tuple(load_taxonomy().type_keys)
    assert all(f"- {key}:" in step1.text for key in step1.choices)
    step2 = dict(q.step2("stain"))
    assert set(step2) == {"severity", "shadow_or_lighting", "intentional_design", "removable_lint"}
    assert step2["severity"].choices == ("minor", "moderate", "severe")
    assert all("Stain" in question.text for question in step2.values())
    assert step2["removable_lint"].choices == ("yes", "no")


def test_exceptions_apply_only_to_their_types_and_never_to_normal() -> None:
    q = questionnaire()
    assert [key for key, _ in q.step2("zipper_damage")] == ["severity", "shadow_or_lighting"]
    assert [key for key, _ in q.step2("normal")] == ["severity"]


def test_korean_questions_use_korean_names() -> None:
    step2 = dict(questionnaire("ko").step2("hole"))
    assert "구멍" in step2["shadow_or_lighting"].text


def test_probabilities_sum_to_one_and_the_label_is_step1s_when_no_exception_fires() -> None:
    scorer = FakeScorer("hole", exception_yes=0.1)
    [result] = classify(scorer, 1, questionnaire())
    assert (result.defect_type, result.candidate_type) == ("hole", "hole")
    assert result.severity == "moderate"
    assert sum(result.type_distribution.values()) == pytest.approx(1.0)
    assert sum(result.final_distribution.values()) == pytest.approx(1.0)
    assert sum(result.severity_distribution.values()) == pytest.approx(1.0)
    # Two exceptions apply to a hole; each one's doubt lowers the hole's probability.
    assert result.type_probability == pytest.approx(0.7 * 0.9 * 0.9)
    assert not result.overturned_by


def test_an_exception_above_its_threshold_turns_the_region_normal_and_keeps_the_evidence() -> None:
    scorer = FakeScorer("stain", exception_yes=0.85)
    [result] = classify(scorer, 1, questionnaire())
    assert result.defect_type == "normal" and result.candidate_type == "stain"
    assert result.type_distribution["stain"] == pytest.approx(0.7)  # step 1 as scored
    assert set(result.overturned_by) == {
        "shadow_or_lighting",
        "intentional_design",
        "removable_lint",
    }
    for answer in result.exceptions:
        assert answer.probability == pytest.approx(0.85) and answer.threshold == 0.8
    kept = 0.7 * 0.15**3
    assert result.final_distribution["stain"] == pytest.approx(kept)
    other = 0.3 / 12  # FakeScorer spreads 0.3 over the 12 other types
    assert result.type_probability == pytest.approx(other + 0.7 - kept)


def test_step2_never_receives_step1s_text() -> None:
    scorer = FakeScorer("tear")
    q = questionnaire()
    classify(scorer, 3, q)
    step1_calls, step2_calls = scorer.asked
    assert {question.text for _, question in step1_calls} == {q.step1().text}
    step1_text = q.step1().text
    descriptions = [label.description("en") for label in load_taxonomy().defect_types]
    for _, question in step2_calls:
        assert step1_text not in question.text
        assert not any(d in question.text for d in descriptions if "Tear" not in d)
        assert "0.7" not in question.text  # nor step 1's probabilities
    assert sorted({crop for crop, _ in step2_calls}) == [0, 1, 2]


def test_scores_that_are_not_a_distribution_fail_the_region_not_the_batch() -> None:
    calls = []

    def ask(requests):
        calls.append(requests)
        broken = {key: math.nan for key in requests[0][1].choices}
        fine = FakeScorer("stain")
        return [broken if crop == 1 else fine._answer(q) for crop, q in requests]

    results = classify(ask, 2, questionnaire())
    assert results[0].error == "" and results[0].defect_type == "stain"
    assert results[1].error.startswith("step 1:") and results[1].type_probability == 0.0
    assert {crop for crop, _ in calls[1]} == {0}  # the broken crop is not asked step 2


def test_reason_prompts_say_the_final_label_or_that_it_is_not_a_defect() -> None:
    q = questionnaire()
    assert "Hole with Severe severity" in q.reason_prompt("hole", "severe")
    not_defect = q.reason_prompt("normal", "minor", candidate="stain")
    assert "possible Stain" in not_defect and "not to be a defect" in not_defect
    assert q.version == "v2+x1+t2024.1"
