"""Temperature scaling: probabilities that mean what they say.

Routing trusts the classifier's type probability (0.95 and up: decided automatically).
A softmax over answer log-likelihoods is a probability over the choices, but a language
model's is usually overconfident, and a model with new prompts or weights may be over-
or underconfident in its own way. One temperature per model version, fitted on crops
people verified, fixes the scale without changing which answer wins (Guo et al. 2017,
"On Calibration of Modern Neural Networks"): p_i(T) = softmax(log p_i / T).

Pure: distributions in, a temperature out.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

MIN_T, MAX_T = 0.05, 20.0
_FLOOR = 1e-12  # a zero probability would make the log-likelihood of a miss infinite


def temper(distribution: dict[str, float], temperature: float) -> dict[str, float]:
    """The distribution at this temperature; its most probable answer does not change."""
    if temperature <= 0 or not math.isfinite(temperature):
        raise ValueError(f"temperature must be positive and finite, not {temperature}")
    if temperature == 1.0 or not distribution:
        return dict(distribution)
    logs = {k: math.log(max(p, _FLOOR)) / temperature for k, p in distribution.items()}
    peak = max(logs.values())
    weights = {k: math.exp(v - peak) for k, v in logs.items()}
    total = sum(weights.values())
    return {k: w / total for k, w in weights.items()}


def nll(pairs: Sequence[tuple[dict[str, float], str]], temperature: float) -> float:
    """Mean negative log-likelihood of the people's answers at this temperature."""
    return -sum(
        math.log(max(temper(dist, temperature).get(answer, 0.0), _FLOOR)) for dist, answer in pairs
    ) / len(pairs)


def fit_temperature(pairs: Sequence[tuple[dict[str, float], str]], iterations: int = 60) -> float:
    """The temperature that makes the people's answers most likely (golden-section search
    on log T; the NLL of temperature scaling is unimodal in it). 1.0 without data.

    `pairs` are (the model's distribution, the answer a person gave); an answer the
    distribution does not offer counts as a miss at every temperature.
    """
    usable = [(d, a) for d, a in pairs if d]
    if not usable:
        return 1.0
    low, high = math.log(MIN_T), math.log(MAX_T)
    ratio = (math.sqrt(5) - 1) / 2
    a, b = high - ratio * (high - low), low + ratio * (high - low)
    fa, fb = nll(usable, math.exp(a)), nll(usable, math.exp(b))
    for _ in range(iterations):
        if fa <= fb:
            high, b, fb = b, a, fa
            a = high - ratio * (high - low)
            fa = nll(usable, math.exp(a))
        else:
            low, a, fa = a, b, fb
            b = low + ratio * (high - low)
            fb = nll(usable, math.exp(b))
    return math.exp((low + high) / 2)
