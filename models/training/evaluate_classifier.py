"""How well a classifier (weights and prompts) agrees with inspectors on verified crops.

The field report's criteria for the VLM are accuracy (the defect type, "normal" included)
and agreement with the experts (is there a defect here at all?). Both are measured on
crops a person judged: a region the model proposed and the human confirmed, changed or
called "not a defect", or a box the human drew. Also reported: severity accuracy where
the type was right, per-class recall and precision, and the expected calibration error of
the type probability, which the routing thresholds rely on. The temperature that
calibrates it (models.calibration) is fitted on the same crops and registered with the
version; the calibrated error is measured by two-fold cross-fitting (fitted on one half,
measured on the other), so it is not flattered by fitting and measuring on one set.

A crop the classifier failed on counts as wrong and as a disagreement: a candidate that
errors must not look better for it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from PIL import Image

from models.calibration import fit_temperature, temper
from models.contracts import Classification
from models.taxonomy import NORMAL

CALIBRATION_BINS = 10


@dataclass(frozen=True)
class LabelledCrop:
    """A crop and the human's answer for it (severity None when it is not a defect)."""

    image: Image.Image
    defect_type: str
    severity: str | None


@dataclass(frozen=True)
class Answer:
    """The human's and the model's answer for one crop: all the metrics need."""

    human_type: str
    human_severity: str | None
    model_type: str
    model_severity: str
    probability: float
    failed: bool = False
    distribution: dict[str, float] = field(default_factory=dict)  # the final type distribution


@dataclass(frozen=True)
class ClassMetrics:
    support: int  # crops the human gave this type
    predicted: int  # crops the model gave this type
    recall: float
    precision: float


@dataclass(frozen=True)
class ClassifierMetrics:
    crops: int
    accuracy: float  # defect type, "normal" included
    human_agreement: float  # defect or not, as the human said
    severity_accuracy: float  # on defects whose type the model got right
    calibration_error: float  # expected calibration error of the type probability
    temperature: float  # fitted on these crops; serving scales the probabilities with it
    calibrated_error: float  # the calibration error at a fitted temperature, cross-fitted
    failed: int  # crops the classifier could not judge (counted as wrong)
    # Crops the human called normal, and how many in 1,000 of them the model called a
    # defect (the instruction-tuning seed's measure; a failed answer is not a claim).
    normal_crops: int = 0
    false_positives_per_1000: float = 0.0
    per_class: dict[str, ClassMetrics] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def answer_for(crop: LabelledCrop, classification: Classification) -> Answer:
    return Answer(
        human_type=crop.defect_type,
        human_severity=crop.severity,
        model_type=classification.defect_type,
        model_severity=classification.severity,
        probability=classification.type_probability,
        failed=bool(classification.error),
        distribution=dict(classification.final_distribution),
    )


def classifier_metrics(answers: Sequence[Answer]) -> ClassifierMetrics:
    """The metrics of a set of answers. Pure."""
    if not answers:
        raise ValueError("no crops to evaluate the classifier on")
    right = [not a.failed and a.model_type == a.human_type for a in answers]
    agree = [not a.failed and (a.model_type == NORMAL) == (a.human_type == NORMAL) for a in answers]
    # Graded on severity: right-typed defects whose label has one (an imported label may not).
    typed = [
        a
        for a, ok in zip(answers, right, strict=True)
        if ok and a.human_type != NORMAL and a.human_severity is not None
    ]
    severity_right = sum(a.model_severity == a.human_severity for a in typed)
    support = Counter(a.human_type for a in answers)
    normal = [a for a in answers if a.human_type == NORMAL]
    false_alarms = sum(not a.failed and a.model_type != NORMAL for a in normal)
    predicted = Counter(a.model_type for a in answers if not a.failed)
    hits = Counter(a.human_type for a, ok in zip(answers, right, strict=True) if ok)
    per_class = {
        name: ClassMetrics(
            support=support[name],
            predicted=predicted[name],
            recall=_share(hits[name], support[name]),
            precision=_share(hits[name], predicted[name]),
        )
        for name in sorted(set(support) | set(predicted))
    }
    return ClassifierMetrics(
        crops=len(answers),
        accuracy=_share(sum(right), len(answers)),
        human_agreement=_share(sum(agree), len(answers)),
        # No typed defect at all (a set of "normal" crops): nothing to get wrong.
        severity_accuracy=_share(severity_right, len(typed)) if typed else 1.0,
        calibration_error=calibration_error(
            (a.probability, ok) for a, ok in zip(answers, right, strict=True)
        ),
        temperature=fit_temperature(_pairs(answers)),
        calibrated_error=cross_fitted_error(answers),
        failed=sum(a.failed for a in answers),
        normal_crops=len(normal),
        false_positives_per_1000=1000.0 * _share(false_alarms, len(normal)),
        per_class=per_class,
    )


def calibration_error(pairs: Iterable[tuple[float, bool]], bins: int = CALIBRATION_BINS) -> float:
    """Expected calibration error: the crop-weighted gap between confidence and accuracy
    in equal-width probability bins. 0 for a perfectly calibrated model."""
    totals: list[list[float]] = [[0.0, 0.0, 0.0] for _ in range(bins)]  # n, confidence, hits
    n = 0
    for probability, correct in pairs:
        slot = totals[min(bins - 1, max(0, int(probability * bins)))]
        slot[0] += 1
        slot[1] += probability
        slot[2] += float(correct)
        n += 1
    if n == 0:
        return 0.0
    return sum(abs(conf - hits) for count, conf, hits in totals if count) / n


def cross_fitted_error(answers: Sequence[Answer]) -> float:
    """The calibration error after temperature scaling, each half of the crops scaled with
    the temperature fitted on the other half."""
    halves = (answers[0::2], answers[1::2])
    pairs = []
    for fit_on, measured in ((halves[0], halves[1]), (halves[1], halves[0])):
        temperature = fit_temperature(_pairs(fit_on))
        for a in measured:
            right = not a.failed and a.model_type == a.human_type
            scaled = temper(a.distribution, temperature).get(a.model_type, a.probability)
            pairs.append((0.0 if a.failed else scaled, right))
    return calibration_error(pairs)


def _pairs(answers: Sequence[Answer]) -> list[tuple[dict[str, float], str]]:
    return [(a.distribution, a.human_type) for a in answers if not a.failed and a.distribution]


def evaluate_classifier(
    classify: Callable[[list[Image.Image]], list[Classification]],
    crops: Sequence[LabelledCrop],
    *,
    batch_size: int = 8,
    on_batch: Callable[[int, int], None] | None = None,
) -> ClassifierMetrics:
    """Classify every crop in batches (the production classifier's `classify`) and measure.

    `on_batch(done, total)` is called after each batch, for progress.
    """
    answers: list[Answer] = []
    for start in range(0, len(crops), batch_size):
        batch = crops[start : start + batch_size]
        classifications = classify([crop.image for crop in batch])
        answers += [answer_for(c, k) for c, k in zip(batch, classifications, strict=True)]
        if on_batch is not None:
            on_batch(len(answers), len(crops))
    return classifier_metrics(answers)


def _share(part: int, whole: int) -> float:
    return part / whole if whole else 0.0
