"""Choice scoring helpers: answer log-likelihoods, softmax over answers, the reason text."""

import math

import pytest
import torch

from models.scoring import (
    answer_log_likelihoods,
    best_choice,
    choice_distribution,
    first_sentence,
)


def test_answer_log_likelihood_sums_only_real_answer_tokens() -> None:
    probabilities = torch.tensor(
        [[[0.5, 0.25, 0.25], [0.1, 0.8, 0.1]], [[0.2, 0.2, 0.6], [0.3, 0.3, 0.4]]]
    )
    answer_ids = torch.tensor([[0, 1], [2, 0]])
    answer_mask = torch.tensor([[1, 1], [1, 0]])  # the second answer is one token long
    scores = answer_log_likelihoods(probabilities.log(), answer_ids, answer_mask)
    assert scores.tolist() == pytest.approx([math.log(0.5 * 0.8), math.log(0.6)])


def test_answer_log_likelihood_normalises_raw_logits() -> None:
    logits = torch.tensor([[[2.0, 0.0]]])
    score = answer_log_likelihoods(logits, torch.tensor([[0]]), torch.tensor([[1]]))
    assert score.item() == pytest.approx(math.log(math.e**2 / (math.e**2 + 1)))


def test_distribution_is_a_softmax_that_sums_to_one() -> None:
    distribution = choice_distribution(["a", "b", "c"], [math.log(1), math.log(2), math.log(1)])
    assert distribution == pytest.approx({"a": 0.25, "b": 0.5, "c": 0.25})
    assert sum(distribution.values()) == pytest.approx(1.0)


def test_distribution_is_stable_for_very_unlikely_answers() -> None:
    distribution = choice_distribution(["a", "b"], [-2000.0, -2001.0])
    assert distribution["a"] == pytest.approx(1 / (1 + math.exp(-1)))


def test_distribution_needs_one_score_per_choice() -> None:
    with pytest.raises(ValueError):
        choice_distribution(["a", "b"], [0.0])
    with pytest.raises(ValueError):
        choice_distribution([], [])


def test_best_choice_breaks_ties_by_order() -> None:
    assert best_choice({"stain": 0.4, "hole": 0.4, "normal": 0.2}) == ("stain", 0.4)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("  A brown   stain.\nSecond sentence. ", "A brown stain."),
        ("솔기가 벌어져 있습니다. 두 번째 문장.", "솔기가 벌어져 있습니다."),
        ("no full stop", "no full stop"),
        ("v1.2 label is fine! Next", "v1.2 label is fine!"),
    ],
)
def test_first_sentence(text: str, expected: str) -> None:
    assert first_sentence(text) == expected


def test_first_sentence_caps_length() -> None:
    capped = first_sentence("x" * 500, max_chars=200)
    assert len(capped) == 200 and capped.endswith("…")


def test_first_sentence_drops_characters_a_database_cannot_store() -> None:
    assert first_sentence("A st\x00ain\ufffd on\x07 the hem. More") == "A stain on the hem."
