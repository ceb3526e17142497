"""Detector evaluation: COCO-style mAP50 and mAP50-95, precision and recall, per class.

The AP is our own implementation of what pycocotools computes for bounding boxes (area
"all", up to 100 detections per image and class): greedy matching in score order, a
precision envelope, 101 recall points. Production does not depend on pycocotools; a unit
test feeds the same predictions to both and requires agreement within 1e-6.

Precision and recall are read at one stated score threshold and IoU 0.5: they are what
an inspector experiences at an operating point, while the APs summarise all of them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from models.contracts import Box
from models.detector import RTDetrDetector
from models.training.data import label_ids
from models.training.synthetic import Annotation, Sample

# Exactly the thresholds pycocotools builds, so a tie at a threshold breaks the same way.
COCO_IOU_THRESHOLDS = tuple(float(t) for t in np.linspace(0.5, 0.95, 10))
RECALL_POINTS = np.linspace(0.0, 1.0, 101)
MAX_DETECTIONS = 100


@dataclass(frozen=True)
class Prediction:
    label: str
    box: Box
    score: float


@dataclass(frozen=True)
class ClassMetrics:
    ap50: float | None  # None: the class has no ground truth, so no AP exists
    ap50_95: float | None
    precision: float | None  # None: nothing predicted at the score threshold
    recall: float | None
    ground_truth: int
    predicted: int  # predictions at or above the score threshold
    true_positives: int


@dataclass(frozen=True)
class Metrics:
    map50: float | None
    map50_95: float | None  # the mean over iou_thresholds, COCO's 0.50:0.95 by default
    precision: float | None  # over all classes' boxes at the score threshold and IoU 0.5
    recall: float | None
    score_threshold: float
    iou_thresholds: tuple[float, ...]
    images: int
    per_class: dict[str, ClassMetrics]

    def summary(self) -> dict[str, float]:
        """The headline numbers the gate compares; undefined ones are left out."""
        values = {
            "map50": self.map50,
            "map50_95": self.map50_95,
            "precision": self.precision,
            "recall": self.recall,
        }
        return {name: value for name, value in values.items() if value is not None}

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def evaluate_detector(
    model_dir: str | Path,
    samples: Sequence[Sample],
    iou_thresholds: Sequence[float] = COCO_IOU_THRESHOLDS,
    *,
    score_threshold: float = 0.5,
    batch_size: int = 8,
    device: str = "cpu",
) -> Metrics:
    """Runs the detector saved in model_dir over the samples and scores its boxes."""
    predictions, id2label = predict(model_dir, [s.image for s in samples], batch_size, device)
    ids = label_ids(id2label, (a.label for s in samples for a in s.annotations))
    # A one-class detector is scored on "is there a defect here", whatever its type.
    truths = [
        [Annotation(id2label[ids[a.label]], a.box) for a in sample.annotations]
        for sample in samples
    ]
    return compute_metrics(
        truths,
        predictions,
        classes=sorted(id2label.values()),
        iou_thresholds=iou_thresholds,
        score_threshold=score_threshold,
    )


def predict(
    model_dir: str | Path, images: Sequence[Image.Image], batch_size: int = 8, device: str = "cpu"
) -> tuple[list[list[Prediction]], dict[int, str]]:
    """Labelled boxes per image, in its pixels, with the model's id2label.

    Each image gets the transformers post-processing's top (query, class) pairs, as many
    as there are queries, at threshold 0 as mAP needs. The model is loaded, and its input
    prepared and run, by the serving detector itself (`preprocess`, `_forward`), so the
    figures describe the model as it will serve. Boxes are clipped to the image and
    empty ones dropped, as serving does.
    """
    detector = RTDetrDetector.load(model_dir, device=device)
    id2label = {int(k): v for k, v in detector.model.config.id2label.items()}
    predictions: list[list[Prediction]] = []
    for start in range(0, len(images), batch_size):
        chunk = [image.convert("RGB") for image in images[start : start + batch_size]]
        outputs = detector._forward(detector.preprocess(chunk))
        sizes = [(image.height, image.width) for image in chunk]
        results = detector.processor.post_process_object_detection(
            outputs, threshold=0.0, target_sizes=sizes
        )
        for (height, width), result in zip(sizes, results, strict=True):
            predictions.append(_predictions(result, id2label, width, height))
    return predictions, id2label


def compute_metrics(
    truths: Sequence[Sequence[Annotation]],
    predictions: Sequence[Sequence[Prediction]],
    *,
    classes: Sequence[str] | None = None,
    iou_thresholds: Sequence[float] = COCO_IOU_THRESHOLDS,
    score_threshold: float = 0.5,
) -> Metrics:
    """Scores predictions against ground truth, image by image (same order in both)."""
    if len(truths) != len(predictions):
        raise ValueError(f"{len(truths)} images of ground truth, {len(predictions)} predicted")
    if not iou_thresholds:
        raise ValueError("at least one IoU threshold is needed")
    names = classes or sorted(
        {a.label for t in truths for a in t} | {p.label for ps in predictions for p in ps}
    )
    # AP50 is always reported, so 0.5 is evaluated even when the caller's list lacks it.
    thresholds = np.array(sorted({*iou_thresholds, 0.5}))
    wanted = np.isin(thresholds, np.asarray(iou_thresholds))
    at50 = int(np.flatnonzero(np.isclose(thresholds, 0.5))[0])
    per_class = {
        name: _class_metrics(truths, predictions, name, thresholds, wanted, at50, score_threshold)
        for name in names
    }
    return _overall(per_class, score_threshold, tuple(iou_thresholds), len(truths))


def _class_metrics(
    truths: Sequence[Sequence[Annotation]],
    predictions: Sequence[Sequence[Prediction]],
    name: str,
    thresholds: np.ndarray,
    wanted: np.ndarray,
    at50: int,
    score_threshold: float,
) -> ClassMetrics:
    scores: list[np.ndarray] = []
    matched: list[np.ndarray] = []  # (thresholds, detections) per image
    ground_truth = 0
    for truth, predicted in zip(truths, predictions, strict=True):
        gt = np.array([_xyxy(a.box) for a in truth if a.label == name]).reshape(-1, 4)
        dt = [p for p in predicted if p.label == name]
        # pycocotools: stable sort by score, then at most MAX_DETECTIONS per image and class.
        order = np.argsort([-p.score for p in dt], kind="mergesort")[:MAX_DETECTIONS]
        dt_boxes = np.array([_xyxy(dt[i].box) for i in order]).reshape(-1, 4)
        ious = box_iou(dt_boxes, gt)
        scores.append(np.array([dt[i].score for i in order], dtype=float))
        matched.append(np.array([match(ious, t) for t in thresholds]).reshape(len(thresholds), -1))
        ground_truth += len(gt)
    all_scores = np.concatenate(scores)
    all_matched = np.concatenate(matched, axis=1)
    ap = _average_precision(all_scores, all_matched, ground_truth)
    kept = all_scores >= score_threshold
    true_positives = int(all_matched[at50, kept].sum())
    flagged = int(kept.sum())
    return ClassMetrics(
        ap50=None if ap is None else float(ap[at50]),
        ap50_95=None if ap is None else float(ap[wanted].mean()),
        precision=true_positives / flagged if flagged else None,
        recall=true_positives / ground_truth if ground_truth else None,
        ground_truth=ground_truth,
        predicted=flagged,
        true_positives=true_positives,
    )


def match(ious: np.ndarray, threshold: float) -> np.ndarray:
    """Which detections (rows, best score first) find a ground truth box (columns).

    pycocotools' rule: each detection in turn takes the still-free ground truth box with
    the highest IoU, if that IoU is at least the threshold; among equal IoUs the last box
    wins. A detection's decision never depends on lower-scored ones, so the matches of
    the detections above any score threshold are a prefix of these.
    """
    n_dt, n_gt = ious.shape
    matched = np.zeros(n_dt, dtype=bool)
    free = np.ones(n_gt, dtype=bool)
    floor = min(threshold, 1 - 1e-10)
    for row in range(n_dt):
        candidates = np.where(free, ious[row], -np.inf)
        if n_gt == 0 or candidates.max() < floor:
            continue
        best = n_gt - 1 - int(np.argmax(candidates[::-1]))  # the last of the maxima
        free[best] = False
        matched[row] = True
    return matched


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of every box in a (n, 4) with every box in b (m, 4), both x1, y1, x2, y2."""
    width = np.minimum(a[:, None, 2], b[None, :, 2]) - np.maximum(a[:, None, 0], b[None, :, 0])
    height = np.minimum(a[:, None, 3], b[None, :, 3]) - np.maximum(a[:, None, 1], b[None, :, 1])
    inter = np.clip(width, 0, None) * np.clip(height, 0, None)
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    union = area_a[:, None] + area_b[None, :] - inter
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(union > 0, inter / union, 0.0)


def _average_precision(
    scores: np.ndarray, matched: np.ndarray, ground_truth: int
) -> np.ndarray | None:
    """AP per IoU threshold, 101-point interpolated; None without ground truth (as COCO)."""
    if ground_truth == 0:
        return None
    order = np.argsort(-scores, kind="mergesort")
    hits = matched[:, order]
    true_pos = np.cumsum(hits, axis=1, dtype=float)
    false_pos = np.cumsum(~hits, axis=1, dtype=float)
    result = np.zeros(len(matched))
    for index in range(len(matched)):
        recall = true_pos[index] / ground_truth
        precision = true_pos[index] / (true_pos[index] + false_pos[index] + np.spacing(1))
        # The envelope: precision at a recall is the best precision at any higher recall.
        envelope = np.maximum.accumulate(precision[::-1])[::-1]
        positions = np.searchsorted(recall, RECALL_POINTS, side="left")
        sampled = np.zeros(len(RECALL_POINTS))
        reachable = positions < len(envelope)
        sampled[reachable] = envelope[positions[reachable]]
        result[index] = sampled.mean()
    return result


def _overall(
    per_class: dict[str, ClassMetrics],
    score_threshold: float,
    iou_thresholds: tuple[float, ...],
    images: int,
) -> Metrics:
    """COCO's means skip classes without ground truth; precision and recall pool boxes."""
    ap50 = [m.ap50 for m in per_class.values() if m.ap50 is not None]
    ap50_95 = [m.ap50_95 for m in per_class.values() if m.ap50_95 is not None]
    true_positives = sum(m.true_positives for m in per_class.values())
    predicted = sum(m.predicted for m in per_class.values())
    ground_truth = sum(m.ground_truth for m in per_class.values())
    return Metrics(
        map50=float(np.mean(ap50)) if ap50 else None,
        map50_95=float(np.mean(ap50_95)) if ap50_95 else None,
        precision=true_positives / predicted if predicted else None,
        recall=true_positives / ground_truth if ground_truth else None,
        score_threshold=score_threshold,
        iou_thresholds=iou_thresholds,
        images=images,
        per_class=per_class,
    )


def _predictions(
    result: dict[str, Any], id2label: dict[int, str], width: int, height: int
) -> list[Prediction]:
    boxes = result["boxes"].detach().float().cpu().numpy()
    boxes = np.clip(boxes, 0, [width, height, width, height])
    scores = result["scores"].detach().float().cpu().tolist()
    labels = result["labels"].detach().cpu().tolist()
    return [
        Prediction(id2label[int(label)], Box(*(float(v) for v in box)), float(score))
        for box, score, label in zip(boxes, scores, labels, strict=True)
        if box[2] > box[0] and box[3] > box[1]
    ]


def _xyxy(box: Box) -> tuple[float, float, float, float]:
    return box.x1, box.y1, box.x2, box.y2
