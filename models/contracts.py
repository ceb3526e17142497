"""Plain types at the boundary between the models and the rest of Loupe.

Nothing here imports torch or transformers: the web app and the Celery worker use these
types without loading a model. Boxes are absolute pixel coordinates (x1, y1, x2, y2) in
the original photo, after EXIF rotation.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

from PIL import Image

CHAMPION = "champion"
CHALLENGER = "challenger"
ARMS = (CHAMPION, CHALLENGER)


@dataclass(frozen=True)
class Box:
    x1: float
    y1: float
    x2: float
    y2: float

    @property
    def width(self) -> float:
        return self.x2 - self.x1

    @property
    def height(self) -> float:
        return self.y2 - self.y1


@dataclass(frozen=True)
class Detection:
    box: Box
    score: float


@dataclass(frozen=True)
class ExceptionAnswer:
    """Step 2: P(yes) for one global exception ("it is only a shadow", ...)."""

    key: str
    probability: float
    threshold: float

    @property
    def fired(self) -> bool:
        return self.probability >= self.threshold


@dataclass(frozen=True)
class Classification:
    """What the classifier says about one region, with the evidence for the reviewer.

    `defect_type` is the final label: step 1's candidate, or "normal" when a step 2
    exception fired. `type_probability` is that label's probability after step 2
    (`final_distribution`); `type_distribution` is step 1's distribution as scored.
    A non-empty `error` means the region could not be judged (the item goes to review).
    """

    defect_type: str
    type_probability: float
    severity: str
    severity_probability: float
    type_distribution: dict[str, float] = field(default_factory=dict)
    severity_distribution: dict[str, float] = field(default_factory=dict)
    candidate_type: str = ""
    exceptions: tuple[ExceptionAnswer, ...] = ()
    final_distribution: dict[str, float] = field(default_factory=dict)
    reason: str = ""
    error: str = ""

    @property
    def overturned_by(self) -> list[str]:
        return [answer.key for answer in self.exceptions if answer.fired]

    @classmethod
    def failed(cls, error: str, candidate_type: str = "") -> Classification:
        """A region that could not be judged: no label, no probability, only the error."""
        return cls(
            defect_type=candidate_type or "unknown",
            type_probability=0.0,
            severity="unknown",
            severity_probability=0.0,
            candidate_type=candidate_type,
            error=error,
        )

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Classification:
        values = dict(data)
        values["exceptions"] = tuple(ExceptionAnswer(**e) for e in data.get("exceptions", ()))
        return cls(**values)


@dataclass(frozen=True)
class RegionResult:
    photo_index: int
    box: Box
    detector_score: float
    classification: Classification
    # Cold start: no detector, the whole photo was classified as one region.
    whole_image: bool = False


@dataclass(frozen=True)
class InferenceResult:
    regions: list[RegionResult]
    detector_version: str  # "" when the arm runs classifier-only (cold start)
    classifier_version: str
    prompt_version: str
    arm: str = CHAMPION
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def classifier_only(self) -> bool:
        return not self.detector_version

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> InferenceResult:
        regions = [
            RegionResult(
                photo_index=int(r["photo_index"]),
                box=Box(**r["box"]),
                detector_score=float(r["detector_score"]),
                classification=Classification.from_dict(r["classification"]),
                whole_image=bool(r.get("whole_image", False)),
            )
            for r in data["regions"]
        ]
        arm = str(data.get("arm", CHAMPION))
        if arm not in ARMS:
            raise ValueError(f"unknown arm {arm!r}")
        return cls(
            regions=regions,
            detector_version=str(data["detector_version"]),
            classifier_version=str(data["classifier_version"]),
            prompt_version=str(data["prompt_version"]),
            arm=arm,
            timings={k: float(v) for k, v in data.get("timings", {}).items()},
        )


@dataclass(frozen=True)
class RegionToExplain:
    """A region whose one-sentence reason an inspector will read."""

    photo_index: int
    box: Box
    defect_type: str
    severity: str
    candidate_type: str = ""  # step 1's type, when step 2 turned the region into "normal"


class InferenceUnavailable(Exception):
    """The inference endpoint could not be reached, timed out, or answered an error."""


class Detector(Protocol):
    def detect(self, images: list[Image.Image]) -> list[list[Detection]]: ...


class Classifier(Protocol):
    def classify(self, crops: list[Image.Image]) -> list[Classification]: ...


class InferenceClient(Protocol):
    """What the worker calls: photos in, an InferenceResult out, or InferenceUnavailable."""

    def infer(self, *, inspection_id: str, photos: list[bytes]) -> InferenceResult: ...

    def explain(
        self,
        *,
        inspection_id: str,
        arm: str,
        photos: list[bytes],
        regions: list[RegionToExplain],
        language: str,
    ) -> list[str]: ...


@dataclass(frozen=True)
class ModelPair:
    """The models of one arm: a detector (or "" to run classifier-only) and a classifier,
    with its prompt version ("" for the app's default) and calibration temperature: both
    are part of the model version. A tuned classifier is its base (`classifier_uri`) plus
    a LoRA adapter (`adapter_uri`, models/tuning; "" for the base alone)."""

    detector_uri: str
    classifier_uri: str
    prompt_version: str = ""
    temperature: float = 1.0
    adapter_uri: str = ""
