"""Plain types at the boundary between the models and the rest of Loupe.

Nothing here imports torch or transformers: the web app and the Celery worker use these
types without loading a model. Boxes are absolute pixel coordinates (x1, y1, x2, y2) in
the original photo, after EXIF rotation.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

from PIL import Image


@dataclass(frozen=True)
class Box:
    x1: float
    y1: float
    x2: float
    y2: float


@dataclass(frozen=True)
class Detection:
    box: Box
    score: float


@dataclass(frozen=True)
class Classification:
    defect_type: str
    type_probability: float
    severity: str
    severity_probability: float
    type_distribution: dict[str, float] = field(default_factory=dict)
    severity_distribution: dict[str, float] = field(default_factory=dict)
    reason: str = ""


@dataclass(frozen=True)
class RegionResult:
    photo_index: int
    box: Box
    detector_score: float
    classification: Classification


@dataclass(frozen=True)
class InferenceResult:
    regions: list[RegionResult]
    detector_version: str
    classifier_version: str
    prompt_version: str
    arm: str = "champion"
    timings: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> InferenceResult:
        regions = [
            RegionResult(
                photo_index=int(r["photo_index"]),
                box=Box(**r["box"]),
                detector_score=float(r["detector_score"]),
                classification=Classification(**r["classification"]),
            )
            for r in data["regions"]
        ]
        return cls(
            regions=regions,
            detector_version=str(data["detector_version"]),
            classifier_version=str(data["classifier_version"]),
            prompt_version=str(data["prompt_version"]),
            arm=str(data.get("arm", "champion")),
            timings={k: float(v) for k, v in data.get("timings", {}).items()},
        )


class InferenceUnavailable(Exception):
    """The inference endpoint could not be reached, timed out, or answered an error."""


class Detector(Protocol):
    def detect(self, images: list[Image.Image]) -> list[list[Detection]]: ...


class Classifier(Protocol):
    def classify(self, crops: list[Image.Image]) -> list[Classification]: ...


class InferenceClient(Protocol):
    """What the worker calls: photos in, an InferenceResult out, or InferenceUnavailable."""

    def infer(self, *, inspection_id: str, photos: list[bytes]) -> InferenceResult: ...
