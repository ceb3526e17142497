"""The inspector's region edits become one answer per region, checked against the item."""

from __future__ import annotations

import json

import pytest

from app.review.edits import (
    InvalidEdits,
    ModelRegion,
    PhotoSize,
    RegionAnswer,
    Vocabulary,
    answers,
    parse,
)

REGIONS = [
    ModelRegion(1, 10, (0.0, 0.0, 50.0, 50.0), "stain", "minor"),
    ModelRegion(2, 10, (60.0, 0.0, 90.0, 40.0), "hole", "severe"),
]
PHOTOS = [PhotoSize(10, 320, 240)]
VOCAB = Vocabulary(frozenset({"stain", "hole", "tear"}), frozenset({"minor", "moderate", "severe"}))


def run(edits):
    return answers(parse(json.dumps(edits)), regions=REGIONS, photos=PHOTOS, vocabulary=VOCAB)


def test_untouched_regions_are_confirmed_as_the_model_said():
    assert run([]) == [
        RegionAnswer(1, 10, (0.0, 0.0, 50.0, 50.0), "stain", "minor", "confirmed"),
        RegionAnswer(2, 10, (60.0, 0.0, 90.0, 40.0), "hole", "severe", "confirmed"),
    ]
    assert parse("") == []


def test_changed_not_a_defect_and_added():
    result = run(
        [
            {"region": 1, "type": "tear", "severity": "minor"},
            {"region": 2, "not_defect": True},
            {"photo": 10, "box": [300, 250, 200.04, 100], "type": "stain", "severity": "moderate"},
        ]
    )
    assert [(a.outcome, a.defect_type, a.severity) for a in result] == [
        ("changed", "tear", "minor"),
        ("not_defect", "normal", None),
        ("added", "stain", "moderate"),
    ]
    # Drawn boxes are put in order and clipped to the photo.
    assert result[2].region_id is None and result[2].box == (200.0, 100.0, 300.0, 240.0)


def test_an_edit_back_to_the_model_answer_is_a_confirmation():
    [first, _] = run([{"region": 1, "type": "stain", "severity": "minor"}])
    assert first.outcome == "confirmed"


def test_the_models_own_answer_may_stay_even_outside_the_vocabulary():
    overturned = ModelRegion(3, 10, (0.0, 0.0, 9.0, 9.0), "normal", "unknown")
    [answer] = answers(
        [{"region": 3, "type": "normal", "severity": "severe"}],
        regions=[overturned],
        photos=PHOTOS,
        vocabulary=VOCAB,
    )
    assert (answer.outcome, answer.defect_type, answer.severity) == ("changed", "normal", "severe")


@pytest.mark.parametrize(
    ("edits", "message"),
    [
        ([{"region": 99, "type": "tear"}], "not on this item"),
        ([{"region": True, "type": "tear"}], "not on this item"),
        ([{"region": 1, "type": "<script>"}], "unknown type"),
        ([{"region": 1, "severity": "huge"}], "unknown severity"),
        ([{"photo": 11, "box": [0, 0, 10, 10], "type": "tear", "severity": "minor"}], "photo"),
        ([{"photo": 10, "box": [0, 0, 10, 10], "severity": "minor"}], "needs a defect type"),
        ([{"photo": 10, "box": [0, 0, 1, 1], "type": "tear", "severity": "minor"}], "too small"),
        ([{"photo": 10, "box": [0, 0, 10], "type": "tear", "severity": "minor"}], "four"),
        ([{"photo": 10, "box": ["a", 0, 9, 9], "type": "tear", "severity": "minor"}], "numbers"),
    ],
)
def test_edits_that_do_not_fit_the_item_are_refused(edits, message):
    with pytest.raises(InvalidEdits, match=message):
        run(edits)


@pytest.mark.parametrize("raw", ["{", '{"region": 1}', "[1, 2]", json.dumps([{}] * 201)])
def test_malformed_json_is_refused(raw):
    with pytest.raises(InvalidEdits):
        parse(raw)


def test_nan_coordinates_are_refused():
    with pytest.raises(InvalidEdits, match="numbers"):
        answers(
            parse('[{"photo": 10, "box": [NaN, 0, 50, 50], "type": "tear", "severity": "minor"}]'),
            regions=REGIONS,
            photos=PHOTOS,
            vocabulary=VOCAB,
        )
