"""The two-step classification, independent of the model that scores the answers.

Step 1 decides the defect: the type from the taxonomy ("normal" included), then the
severity of that type. Step 2 asks every applicable global exception as a yes/no question.
Step 2's questions are built from the candidate type's key alone (`Questionnaire.step2`
takes nothing else), so step 1's prompt, answers or any generated text cannot reach them:
the field report found that showing the first step's reasoning makes the second agree
with it. The scorer keeps the same separation (models/classifier.py).

`ask` scores questions about crops: [(crop index, Question)] -> one distribution each.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from models.calibration import temper
from models.contracts import Classification, ExceptionAnswer
from models.exceptions import NO, YES, ExceptionSet, apply_exceptions
from models.prompts import Prompts, PromptSet
from models.scoring import best_choice
from models.taxonomy import Taxonomy

SEVERITY = "severity"


class UninterpretableOutput(ValueError):
    """The model's scores do not form a distribution (NaN, infinities, zero mass)."""


@dataclass(frozen=True)
class Question:
    text: str  # what the user turn says after the image
    choices: tuple[str, ...]  # the allowed answers, scored in full


Ask = Callable[[list[tuple[int, Question]]], list[dict[str, float]]]


@dataclass(frozen=True)
class Questionnaire:
    """Every question the classifier asks, rendered from versioned data in one language."""

    taxonomy: Taxonomy
    prompts: Prompts
    exceptions: ExceptionSet
    language: str

    def __post_init__(self) -> None:
        self.exceptions.check_against(self.taxonomy)
        self.prompt_set.type_question  # noqa: B018 (fails early on an unknown language)

    @property
    def prompt_set(self) -> PromptSet:
        return self.prompts.for_language(self.language)

    @property
    def version(self) -> str:
        """What decided the wording and the answers: prompts, exceptions and taxonomy."""
        return f"{self.prompts.version}+{self.exceptions.version}+t{self.taxonomy.version}"

    def step1(self) -> Question:
        p = self.prompt_set
        choices = p.choices_text(self.taxonomy.defect_types, self.language)
        return Question(p.type_question.format(choices=choices), tuple(self.taxonomy.type_keys))

    def step2(self, candidate: str) -> list[tuple[str, Question]]:
        """(key, question) for the severity and each applicable exception of a candidate."""
        p, name = self.prompt_set, self._name(candidate)
        choices = p.choices_text(self.taxonomy.severities, self.language)
        severity = p.severity_question.format(choices=choices, defect_type=name)
        questions = [(SEVERITY, Question(severity, tuple(self.taxonomy.severity_keys)))]
        for rule in self.exceptions.for_candidate(candidate):
            text = p.exception_question.format(question=rule.question(self.language, name))
            questions.append((rule.key, Question(text, (YES, NO))))
        return questions

    def reason_prompt(self, defect_type: str, severity: str, candidate: str = "") -> str:
        p = self.prompt_set
        if defect_type == "normal" and candidate and candidate != "normal":
            return p.reason_not_defect.format(defect_type=self._name(candidate))
        level = self.taxonomy.severity(severity).name(self.language)
        return p.reason.format(defect_type=self._name(defect_type), severity=level)

    def threshold(self, key: str) -> float:
        return next(rule.threshold for rule in self.exceptions.rules if rule.key == key)

    def _name(self, key: str) -> str:
        return self.taxonomy.defect_type(key).name(self.language)


def classify(
    ask: Ask, crop_count: int, questionnaire: Questionnaire, temperature: float = 1.0
) -> list[Classification]:
    """Runs both steps for `crop_count` crops with two calls to `ask`; the final type
    distribution is scaled by the model version's `temperature` (models.calibration)."""
    types = ask([(i, questionnaire.step1()) for i in range(crop_count)])
    candidates: dict[int, str] = {}
    errors: dict[int, str] = {}
    for i, distribution in enumerate(types):
        try:
            candidates[i] = best_choice(checked(distribution))[0]
        except UninterpretableOutput as exc:
            errors[i] = f"step 1: {exc}"
    requests, keys = [], []
    for i, candidate in candidates.items():
        for key, question in questionnaire.step2(candidate):
            requests.append((i, question))
            keys.append((i, key))
    answers: dict[int, dict[str, dict[str, float]]] = {i: {} for i in candidates}
    for (i, key), distribution in zip(keys, ask(requests) if requests else [], strict=True):
        answers[i][key] = distribution
    results = []
    for i in range(crop_count):
        if i in errors:
            results.append(Classification.failed(errors[i]))
            continue
        try:
            results.append(
                _combine(types[i], candidates[i], answers[i], questionnaire, temperature)
            )
        except UninterpretableOutput as exc:
            results.append(Classification.failed(f"step 2: {exc}", candidates[i]))
    return results


def _combine(
    types: dict[str, float],
    candidate: str,
    answers: dict[str, dict[str, float]],
    questionnaire: Questionnaire,
    temperature: float = 1.0,
) -> Classification:
    severities = checked(answers[SEVERITY])
    severity, severity_probability = best_choice(severities)
    exceptions = tuple(
        ExceptionAnswer(key, checked(answer)[YES], questionnaire.threshold(key))
        for key, answer in answers.items()
        if key != SEVERITY
    )
    label, final = apply_exceptions(types, candidate, list(exceptions))
    # Calibrated last: routing reads this distribution, and scaling never changes its winner.
    final = temper(final, temperature)
    return Classification(
        defect_type=label,
        type_probability=final[label],
        severity=severity,
        severity_probability=severity_probability,
        type_distribution=types,
        severity_distribution=severities,
        candidate_type=candidate,
        exceptions=exceptions,
        final_distribution=final,
    )


def checked(distribution: dict[str, float], tolerance: float = 1e-3) -> dict[str, float]:
    """The distribution itself, or UninterpretableOutput if it is not one.

    With half-precision weights a forward pass can overflow into NaN or infinity; such a
    score must send the item to a human, never be read as a confident answer.
    """
    values = list(distribution.values())
    if not values or not all(math.isfinite(v) and 0.0 <= v <= 1.0 for v in values):
        raise UninterpretableOutput(f"scores are not probabilities: {distribution}")
    if abs(sum(values) - 1.0) > tolerance:
        raise UninterpretableOutput(f"scores sum to {sum(values):.4f}, not 1")
    return distribution
