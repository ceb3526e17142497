"""Source classes to taxonomy types: by name, by --map, or a stop listing what is left."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from app.imports.mapping import ClassCount, MappingError, parse_id_map, parse_pairs, resolve
from app.imports.plan import LabelledBox, Labels, Skipped, Tally, labels_of, summary_lines
from app.imports.records import SourceBox, SourceImage
from models.taxonomy import load_taxonomy
from tests.unit.imports_support import roboflow_yolo

TYPES = load_taxonomy().type_keys


def counts(**classes):
    return {name: ClassCount(boxes, images) for name, (boxes, images) in classes.items()}


def test_names_map_by_themselves_ignoring_case_and_map_names_the_rest():
    classes = counts(Hole=(3, 2), Knot=(5, 4), cut=(1, 1))
    class_map = resolve(classes, TYPES, parse_pairs(["knot=Snag", "cut=tear"], "--map"),
                        skip_unknown=False)  # fmt: skip
    assert class_map.targets == {"Hole": "hole", "Knot": "snag", "cut": "tear"}
    assert class_map.unused == ()


def test_unmapped_classes_stop_with_counts_and_a_near_type():
    classes = counts(hole=(3, 2), **{"Missing Button": (2, 2), "Logo": (0, 7)})
    with pytest.raises(MappingError) as caught:
        resolve(classes, TYPES, [], skip_unknown=False)
    message = str(caught.value)
    assert "Logo            7 images" in message
    assert (
        "Missing Button  2 boxes on 2 images   did you mean --map 'Missing Button=missing_button'?"
        in message
    )
    assert "--skip-unknown" in message and "stain, tear" in message
    skipping = resolve(classes, TYPES, [], skip_unknown=True)
    assert skipping.skipped == {"Missing Button", "Logo"} and skipping.target("Logo") is None


def test_bad_map_options_say_how_to_write_them():
    with pytest.raises(
        MappingError, match="'scratch' is not a defect type; the taxonomy has stain"
    ):
        resolve(counts(x=(1, 1)), TYPES, [("x", "scratch")], skip_unknown=False)
    with pytest.raises(MappingError, match="SRC=DST"):
        parse_pairs(["Knot"], "--map")
    with pytest.raises(MappingError, match="--id-map 5=hole"):
        parse_id_map(["five=hole"])
    assert parse_id_map(["5=hole"]) == {5: "hole"}
    assert resolve(counts(a=(1, 1)), TYPES, [("a", "hole"), ("b", "tear")],
                   skip_unknown=False).unused == ("b",)  # fmt: skip


def test_skipped_classes_leave_boxes_out_and_say_so():
    class_map = resolve(counts(hole=(1, 1), logo=(1, 1)), TYPES, [], skip_unknown=True)
    record = SourceImage(path=None, name="a.jpg", boxes=(  # type: ignore[arg-type]
        SourceBox("hole", 1, 1, 5, 5), SourceBox("logo", 10, 10, 20, 20)))  # fmt: skip
    labels = labels_of(record, 64, 48, class_map, mode="verified", unlabeled_is_negative=False)
    assert labels == Labels((LabelledBox("hole", None, 1, 1, 5, 5),), None, ("logo",))
    folder = SourceImage(path=None, name="logo/b.jpg", label="logo")  # type: ignore[arg-type]
    with pytest.raises(Skipped):
        labels_of(folder, 64, 48, class_map, mode="verified", unlabeled_is_negative=False)
    tally = Tally()
    tally.count(record, labels)
    tally.skipped["logo"] += 1
    lines = summary_lines(tally, dry_run=True)
    assert (
        lines[0]
        == "would import 1, already present 0, refused 0, skipped 1 (dry run: nothing was changed)"
    )
    assert "  boxes left out (--skip-unknown): logo 1" in lines


def test_the_command_stops_before_reading_any_image(tmp_path):
    from app.cli import main

    root = roboflow_yolo(
        tmp_path / "site", ["Knot", "hole"], {"train": {"a": "0 0.5 0.5 0.1 0.1\n"}}
    )
    (root / "train" / "images" / "a.jpg").write_bytes(b"not read: the stop comes first")
    result = CliRunner().invoke(
        main, ["import", "yolo", str(root), "--var-dir", str(tmp_path / "var")]
    )
    assert result.exit_code == 1
    assert "Knot  1 boxes on 1 images" in result.output
    assert "nothing was imported" in result.output
    assert not (tmp_path / "var").exists()
