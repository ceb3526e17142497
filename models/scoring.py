"""Pure helpers of the classifier: answer log-likelihoods, distributions, the reason text.

They work on plain tensors and strings so that unit tests need no model.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence

import torch

REASON_MAX_CHARS = 200
_SENTENCE_END = re.compile(r"(?<=[.!?。！？])\s")
# Control characters (NUL above all) cannot be stored in a PostgreSQL text column, and a
# model can emit them; a reason is for people, so they are dropped.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ufffd]")


def answer_log_likelihoods(
    logits: torch.Tensor, answer_ids: torch.Tensor, answer_mask: torch.Tensor
) -> torch.Tensor:
    """Sum of log P(answer token | everything before it), one value per answer.

    `logits[:, j]` must be the prediction for `answer_ids[:, j]` (i.e. the logits at the
    position just before each answer token); padded answer positions have mask 0. Summing
    (not averaging) gives the true sequence probability, so a label split into more tokens
    is not favoured or penalised by its length.
    """
    log_probs = logits.float().log_softmax(dim=-1)
    token_log_probs = log_probs.gather(-1, answer_ids.unsqueeze(-1)).squeeze(-1)
    return (token_log_probs * answer_mask.to(token_log_probs.dtype)).sum(dim=-1)


def choice_distribution(
    choices: Sequence[str], log_likelihoods: Sequence[float]
) -> dict[str, float]:
    """Softmax over the allowed answers: P(answer | the answer is one of them)."""
    if len(choices) != len(log_likelihoods) or not choices:
        raise ValueError("need one log-likelihood per choice, and at least one choice")
    peak = max(log_likelihoods)
    weights = [math.exp(value - peak) for value in log_likelihoods]  # stable for any range
    total = sum(weights)
    return {choice: weight / total for choice, weight in zip(choices, weights, strict=True)}


def best_choice(distribution: dict[str, float]) -> tuple[str, float]:
    """The most probable answer; ties go to the earlier choice (taxonomy order)."""
    label = max(distribution, key=lambda key: distribution[key])
    return label, distribution[label]


def first_sentence(text: str, max_chars: int = REASON_MAX_CHARS) -> str:
    """The first sentence of generated text, whitespace-collapsed and length-capped."""
    text = " ".join(_CONTROL.sub("", text).split())
    text = _SENTENCE_END.split(text, maxsplit=1)[0]
    if len(text) > max_chars:
        text = text[: max_chars - 1].rstrip() + "…"
    return text
