"""Our COCO-style AP against pycocotools on the same predictions, and the operating point."""

import contextlib
import io
from collections.abc import Sequence

import numpy as np
import pytest
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from models.contracts import Box
from models.training.evaluate import Prediction, compute_metrics, match
from models.training.synthetic import Annotation

CLASSES = ["hole", "pilling", "stain", "tear"]


def coco_reference(
    truths: Sequence[Sequence[Annotation]],
    predictions: Sequence[Sequence[Prediction]],
    classes: Sequence[str],
) -> dict[str, object]:
    """mAP50, mAP50-95 and per-class AP50 / AP50-95 as pycocotools computes them."""
    category = {name: index + 1 for index, name in enumerate(classes)}
    gt = COCO()
    gt.dataset = {
        "images": [{"id": i + 1, "width": 10_000, "height": 10_000} for i in range(len(truths))],
        "categories": [{"id": c, "name": name} for name, c in category.items()],
        # Ids start at 1: pycocotools reads a matched ground-truth id of 0 as "no match".
        "annotations": [
            {"id": n + 1, "image_id": i + 1, "category_id": category[a.label], "iscrowd": 0,
             "bbox": _xywh(a.box), "area": (a.box.x2 - a.box.x1) * (a.box.y2 - a.box.y1)}
            for n, (i, a) in enumerate((i, a) for i, t in enumerate(truths) for a in t)
        ],
    }  # fmt: skip
    results = [
        {
            "image_id": i + 1,
            "category_id": category[p.label],
            "bbox": _xywh(p.box),
            "score": p.score,
        }
        for i, ps in enumerate(predictions)
        for p in ps
    ]
    with contextlib.redirect_stdout(io.StringIO()):
        gt.createIndex()
        evaluation = COCOeval(gt, gt.loadRes(results), "bbox")
        evaluation.evaluate()
        evaluation.accumulate()
    # precision[T, R, K, area, maxDets]: area "all" and 100 detections, as summarize() reads.
    precision = evaluation.eval["precision"][:, :, :, 0, -1]
    per_class = {}
    for k, name in enumerate(classes):
        curve = precision[:, :, k]
        per_class[name] = None if (curve < 0).all() else (curve[0].mean(), curve.mean())
    return {
        "map50": precision[0][precision[0] > -1].mean(),
        "map50_95": precision[precision > -1].mean(),
        "per_class": per_class,
    }


def _xywh(box: Box) -> list[float]:
    return [box.x1, box.y1, box.x2 - box.x1, box.y2 - box.y1]


def _gt(label: str, x1: float, y1: float, x2: float, y2: float) -> Annotation:
    return Annotation(label, Box(x1, y1, x2, y2))


def _p(label: str, score: float, x1: float, y1: float, x2: float, y2: float) -> Prediction:
    return Prediction(label, Box(x1, y1, x2, y2), score)


def _hand_made() -> tuple[list[list[Annotation]], list[list[Prediction]]]:
    truths = [
        [_gt("stain", 10, 10, 50, 50), _gt("hole", 100, 100, 130, 140)],
        [],  # no ground truth: every prediction here is a false positive
        [_gt("tear", 20, 20, 30, 90), _gt("stain", 200, 200, 260, 230)],
        [_gt("hole", 5, 5, 25, 25)],  # missed entirely
        [],  # nothing at all
        [_gt("stain", 0, 0, 40, 40), _gt("stain", 30, 30, 70, 70)],  # overlapping pair
    ]
    predictions = [
        [
            _p("stain", 0.9, 11, 11, 50, 52),  # IoU about 0.93
            _p("stain", 0.8, 12, 10, 49, 49),  # duplicate of the same stain
            _p("hole", 0.7, 104, 104, 134, 146),  # IoU about 0.6
            _p("tear", 0.6, 300, 300, 320, 340),
        ],
        [_p("stain", 0.95, 0, 0, 30, 30), _p("hole", 0.7, 50, 50, 80, 80)],  # ties image 0's
        [_p("tear", 0.4, 21, 22, 31, 85), _p("pilling", 0.2, 0, 0, 9, 9)],  # pilling has no GT
        [],
        [],
        [
            _p("stain", 0.85, 2, 2, 42, 40),
            _p("stain", 0.85, 28, 29, 71, 70),  # a score tie inside one image
            _p("stain", 0.3, 10, 10, 60, 60),  # overlaps both, matches whichever is left
        ],
    ]
    return truths, predictions


def _random_case(seed: int) -> tuple[list[list[Annotation]], list[list[Prediction]]]:
    rng = np.random.default_rng(seed)
    truths, predictions = [], []
    for _ in range(40):
        truth, predicted = [], []
        for _ in range(rng.integers(0, 5)):
            x, y = rng.uniform(0, 400, 2)
            w, h = rng.uniform(8, 80, 2)
            label = str(rng.choice(CLASSES[:3]))  # tear keeps no ground truth
            truth.append(_gt(label, x, y, x + w, y + h))
            for _ in range(rng.integers(0, 3)):  # misses, hits and duplicates
                jitter = rng.normal(0, 0.15, 4) * [w, h, w, h]
                guess = label if rng.random() < 0.8 else str(rng.choice(CLASSES))
                box = np.array([x, y, x + w, y + h]) + jitter
                box[2:] = np.maximum(box[2:], box[:2] + 1)
                predicted.append(_p(guess, float(rng.random()), *box))
        for _ in range(rng.integers(0, 4)):  # background false positives
            x, y = rng.uniform(0, 400, 2)
            predicted.append(
                _p(str(rng.choice(CLASSES)), float(rng.random()), x, y, x + 20, y + 20)
            )
        truths.append(truth)
        predictions.append(predicted)
    return truths, predictions


def assert_agrees_with_pycocotools(
    truths: Sequence[Sequence[Annotation]],
    predictions: Sequence[Sequence[Prediction]],
    classes: Sequence[str] = CLASSES,
) -> None:
    ours = compute_metrics(truths, predictions, classes=classes)
    reference = coco_reference(truths, predictions, classes)
    assert ours.map50 == pytest.approx(reference["map50"], abs=1e-6)
    assert ours.map50_95 == pytest.approx(reference["map50_95"], abs=1e-6)
    for name in classes:
        theirs = reference["per_class"][name]
        mine = ours.per_class[name]
        if theirs is None:
            assert mine.ap50 is None and mine.ap50_95 is None
        else:
            assert (mine.ap50, mine.ap50_95) == pytest.approx(theirs, abs=1e-6)


def test_hand_made_predictions_agree_with_pycocotools() -> None:
    truths, predictions = _hand_made()
    assert_agrees_with_pycocotools(truths, predictions)
    metrics = compute_metrics(truths, predictions, classes=CLASSES)
    assert metrics.per_class["pilling"].ap50 is None  # no ground truth, no AP
    assert 0 < metrics.map50 < 1 and 0 < metrics.map50_95 < metrics.map50


def test_equal_ious_break_the_way_pycocotools_breaks_them() -> None:
    # The first detection overlaps both boxes equally (IoU 9/11); which one it takes
    # decides whether the second detection matches at IoU 0.54 or at 0.82.
    truths = [[_gt("hole", 0, 0, 10, 10), _gt("hole", 2, 0, 12, 10)]]
    predictions = [[_p("hole", 0.6, 1, 0, 11, 10), _p("hole", 0.5, 3, 0, 13, 10)]]
    assert_agrees_with_pycocotools(truths, predictions)
    # Taking the second box leaves the first (IoU 0.54) to the second detection: both match
    # at 0.5 (AP 1), one at 0.55-0.80 (AP 51/101), none above. The other way would be 0.7.
    expected = (1 + 6 * 51 / 101) / 10
    assert compute_metrics(truths, predictions).map50_95 == pytest.approx(expected)


@pytest.mark.parametrize("seed", range(5))
def test_random_predictions_agree_with_pycocotools(seed: int) -> None:
    truths, predictions = _random_case(seed)
    assert_agrees_with_pycocotools(truths, predictions)


def test_perfect_predictions_score_one_and_a_higher_false_alarm_halves_ap() -> None:
    truths = [[_gt("hole", 10, 10, 20, 20)], [_gt("stain", 5, 5, 30, 30)]]
    perfect = [[_p("hole", 0.9, 10, 10, 20, 20)], [_p("stain", 0.8, 5, 5, 30, 30)]]
    metrics = compute_metrics(truths, perfect)
    headline = (metrics.map50, metrics.map50_95, metrics.precision, metrics.recall)
    assert headline == pytest.approx((1, 1, 1, 1))
    # One stain found after one false alarm: precision 1/2 at every recall point.
    late = [[_p("hole", 0.9, 10, 10, 20, 20)], [_p("stain", 0.9, 50, 50, 60, 60), perfect[1][0]]]
    assert compute_metrics(truths, late).per_class["stain"].ap50 == pytest.approx(0.5)


def test_precision_and_recall_are_read_at_the_score_threshold() -> None:
    truths, predictions = _hand_made()
    metrics = compute_metrics(truths, predictions, classes=CLASSES, score_threshold=0.5)
    # At >= 0.5: stain 0.9 TP, 0.8 dup FP, 0.95 FP, 0.85 TP, 0.85 TP; hole 0.7 TP, 0.7 FP;
    # tear 0.6 FP. The 0.4 tear, 0.3 stain and 0.2 pilling fall below the threshold.
    stain = metrics.per_class["stain"]
    assert (stain.true_positives, stain.predicted, stain.ground_truth) == (3, 5, 4)
    assert (stain.precision, stain.recall) == (pytest.approx(0.6), 0.75)
    assert metrics.per_class["tear"].precision == 0.0
    assert metrics.per_class["pilling"].precision is None  # nothing predicted above 0.5
    assert (metrics.precision, metrics.recall) == (pytest.approx(4 / 8), pytest.approx(4 / 7))
    # At 0.0 the 0.4 tear is found too; the 0.3 stain comes after both stains were taken.
    lenient = compute_metrics(truths, predictions, classes=CLASSES, score_threshold=0.0)
    assert lenient.recall == pytest.approx(5 / 7)
    assert lenient.summary().keys() == {"map50", "map50_95", "precision", "recall"}


def test_matching_takes_the_best_free_box_and_ties_go_to_the_last() -> None:
    ious = np.array([[0.6, 0.8], [0.7, 0.9], [0.5, 0.5]])
    assert match(ious, 0.5).tolist() == [True, True, False]
    # Equal IoUs: the first detection takes the last box, so the second finds none left.
    assert match(np.array([[0.6, 0.6], [0.0, 0.55]]), 0.5).tolist() == [True, False]
    assert match(np.zeros((2, 0)), 0.5).tolist() == [False, False]
    assert match(np.array([[0.49]]), 0.5).tolist() == [False]


def test_iou_thresholds_are_configurable_and_ap50_is_always_reported() -> None:
    truths, predictions = _hand_made()
    strict = compute_metrics(truths, predictions, iou_thresholds=[0.9])
    default = compute_metrics(truths, predictions)
    assert strict.map50 == pytest.approx(default.map50)
    assert strict.map50_95 < default.map50_95
    with pytest.raises(ValueError):
        compute_metrics(truths, predictions[:-1])
