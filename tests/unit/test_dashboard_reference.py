"""The models against imported labels: one item compared, a week summed (pure)."""

from __future__ import annotations

from app.dashboard.reference import ModelRegion, compare, labeled_boxes, summarise

STAIN = {"photo": 0, "type": "stain", "severity": None, "box": [10, 20, 110, 90]}


def region(defect_type: str, box=(10.0, 20.0, 110.0, 90.0), photo: int = 0) -> ModelRegion:
    return ModelRegion(photo, defect_type, box)


def test_a_box_is_found_by_its_type_where_it_is_and_located_by_any_defect_there():
    labels = {"label": None, "boxes": [STAIN]}
    assert compare("auto_reject", [region("stain")], labels).boxes == (("stain", True, True),)
    assert compare("auto_reject", [region("hole")], labels).boxes == (("stain", False, True),)
    shifted = region("stain", (60.0, 20.0, 160.0, 90.0))  # IoU 1/3: elsewhere
    assert compare("review", [shifted], labels).boxes == (("stain", False, False),)
    on_the_back = region("stain", photo=1)
    assert compare("review", [on_the_back], labels).boxes == (("stain", False, False),)
    # A region the classifier called normal finds nothing.
    assert compare("auto_pass", [region("normal")], labels).boxes == (("stain", False, False),)


def test_an_image_level_label_is_found_anywhere_and_normal_is_clean():
    folder = {"label": "pilling", "boxes": []}
    assert labeled_boxes(folder)[0].box is None
    assert compare("review", [region("pilling", photo=2)], folder).boxes == (
        ("pilling", True, True),
    )
    clean = compare("auto_reject", [region("stain")], {"label": "normal", "boxes": []})
    assert (clean.defective, clean.boxes) == (False, ())
    normal_box = {"label": None, "boxes": [{**STAIN, "type": "normal"}]}
    assert not compare("auto_pass", [], normal_box).defective


def test_a_week_counts_escapes_false_rejects_and_recall_per_type():
    labels = {"label": None, "boxes": [STAIN]}
    week = summarise([
        compare("auto_reject", [region("stain")], labels),
        compare("auto_pass", [], labels),  # an escape
        compare("review", [region("hole")], labels),
        compare("auto_reject", [region("stain")], {"label": None, "boxes": []}),  # false reject
        compare("auto_pass", [], {"label": "normal", "boxes": []}),
    ])  # fmt: skip
    assert week["items"] == 5
    assert week["defective"] == {"items": 3, "auto_pass": 1, "auto_reject": 1, "review": 1}
    assert week["clean"] == {"items": 2, "auto_pass": 1, "auto_reject": 1, "review": 0}
    assert (week["escaped_share"], week["false_reject_share"]) == (1 / 3, 1 / 2)
    assert week["per_type"] == [
        {"type": "stain", "boxes": 3, "found": 1, "located": 2, "recall": 1 / 3}
    ]
    assert summarise([])["escaped_share"] is None
