"""Classifier candidates: the metrics on verified crops, the gate, a site's prompt versions,
per-arm prompts in Serve's configuration, and how a classifier run reads on the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image

from app.config import Settings
from app.learning.report import metrics_lines
from app.learning.rules import classifier_gate_rules
from app.policy.promotion import gate
from models.contracts import Classification, ModelPair
from models.prompts import SITE_DIR_VARIABLE, available_versions, load_prompts
from models.serve.app import AppSettings
from models.training.evaluate_classifier import (
    Answer,
    LabelledCrop,
    calibration_error,
    classifier_metrics,
    evaluate_classifier,
)
from tests.support import site_prompts


def answer(human: str, model: str, p: float = 0.9, severity: str = "moderate", **kw) -> Answer:  # type: ignore[no-untyped-def]
    human_severity = None if human == "normal" else kw.get("human_severity", "moderate")
    return Answer(human, human_severity, model, severity, p, kw.get("failed", False))


def test_metrics_worked_out_by_hand():
    answers = [
        answer("stain", "stain", 0.95),  # right type, right severity
        answer("stain", "stain", 0.85, severity="minor"),  # right type, wrong severity
        answer("hole", "stain", 0.6),  # wrong type, but a defect: the human agrees it is one
        answer("normal", "normal", 0.9),  # right
        answer("normal", "tear", 0.7),  # wrong, and a disagreement
        answer("hole", "unknown", 0.0, failed=True),  # could not judge: wrong and disagrees
    ]
    m = classifier_metrics(answers)
    assert m.crops == 6 and m.failed == 1
    assert m.accuracy == pytest.approx(3 / 6)
    assert m.human_agreement == pytest.approx(4 / 6)
    assert m.severity_accuracy == pytest.approx(1 / 2)  # of the two right-typed stains
    assert m.per_class["stain"].support == 2 and m.per_class["stain"].predicted == 3
    assert m.per_class["stain"].recall == pytest.approx(1.0)
    assert m.per_class["stain"].precision == pytest.approx(2 / 3)
    assert m.per_class["hole"].recall == 0.0 and m.per_class["hole"].precision == 0.0
    assert m.per_class["tear"].support == 0 and m.per_class["tear"].predicted == 1
    assert "unknown" not in m.per_class  # a failure is not a prediction


def test_calibration_error_is_the_weighted_gap_per_bin():
    assert calibration_error([(0.95, True), (0.95, True)]) == pytest.approx(0.05)
    # bin 0.9: confidence 0.9, accuracy 0.5 -> gap 0.4 on 2 of 4; bin 0.3: 0.3 vs 0 on 2 of 4
    pairs = [(0.9, True), (0.9, False), (0.3, False), (0.3, False)]
    assert calibration_error(pairs) == pytest.approx((2 * 0.4 + 2 * 0.3) / 4)
    assert calibration_error([(1.0, True)]) == pytest.approx(0.0)  # 1.0 lands in the top bin
    assert calibration_error([]) == 0.0


def test_no_crops_is_an_error_and_all_normal_crops_have_nothing_to_grade_on_severity():
    with pytest.raises(ValueError, match="no crops"):
        classifier_metrics([])
    assert classifier_metrics([answer("normal", "normal")]).severity_accuracy == 1.0


def test_a_crop_labelled_without_a_severity_is_not_graded_on_severity():
    """An imported label (`loupe import`) often names the type alone: the model's severity
    is neither right nor wrong there, so it must not pull the gate's severity down."""
    answers = [
        answer("stain", "stain"),  # right severity
        answer("hole", "hole", human_severity=None),  # imported: no severity to compare
    ]
    assert classifier_metrics(answers).severity_accuracy == 1.0
    assert classifier_metrics(answers[1:]).severity_accuracy == 1.0  # nothing to grade


def test_evaluate_classifier_batches_the_crops_in_order_and_reports_progress():
    crops = [LabelledCrop(Image.new("RGB", (8, 8), (i, 0, 0)), "stain", "minor") for i in range(5)]
    batches: list[int] = []
    progress: list[tuple[int, int]] = []

    def classify(images: list[Image.Image]) -> list[Classification]:
        batches.append(len(images))
        return [
            Classification(
                "stain" if im.getpixel((0, 0))[0] % 2 == 0 else "normal", 0.8, "minor", 0.9
            )  # fmt: skip
            for im in images
        ]

    m = evaluate_classifier(
        classify, crops, batch_size=2, on_batch=lambda d, t: progress.append((d, t))
    )
    assert batches == [2, 2, 1]
    assert progress == [(2, 5), (4, 5), (5, 5)]
    assert m.accuracy == pytest.approx(3 / 5)  # crops 0, 2 and 4 say stain


def test_the_classifier_gate_uses_the_field_reports_criteria_and_the_regression_check():
    rules = classifier_gate_rules(Settings())
    assert rules.minimums == {"accuracy": 0.90, "human_agreement": 0.88}
    good = {"accuracy": 0.93, "human_agreement": 0.95, "severity_accuracy": 0.80,
            "false_positives_per_1000": 12.0}  # fmt: skip
    assert gate(good, None, rules).passed
    champion = {"accuracy": 0.96, "human_agreement": 0.95, "severity_accuracy": 0.80,
                "false_positives_per_1000": 10.0}  # fmt: skip
    result = gate(good, champion, rules)
    assert not result.passed
    assert any(r.startswith("FAIL: accuracy 0.9300 vs champion 0.9600") for r in result.reasons)
    low = gate({**good, "human_agreement": 0.80}, None, rules)
    assert "FAIL: human_agreement 0.8000 (minimum 0.88)" in low.reasons


def test_the_classifier_gate_holds_false_positives_per_1000_normal_crops_to_a_ceiling():
    rules = classifier_gate_rules(Settings())  # at most 50, at most 20 above the champion
    good = {"accuracy": 0.93, "human_agreement": 0.95, "severity_accuracy": 0.80}
    assert not gate(good, None, rules).passed  # not measured is not a pass
    many = gate({**good, "false_positives_per_1000": 88.0}, None, rules)
    assert not many.passed
    assert "FAIL: false_positives_per_1000 88.0000 (maximum 50.00)" in many.reasons
    champion = {**good, "false_positives_per_1000": 17.0}
    worse = gate({**good, "false_positives_per_1000": 40.0}, champion, rules)
    assert not worse.passed
    assert any(r.startswith("FAIL: false_positives_per_1000 40.0000 vs champion 17.0000")
               for r in worse.reasons)  # fmt: skip
    assert gate({**good, "false_positives_per_1000": 30.0}, champion, rules).passed


def test_gate_reasons_are_said_in_korean_and_english():
    from app.i18n import say, translator

    rules = classifier_gate_rules(Settings())
    metrics = {"accuracy": 0.5, "human_agreement": 0.95, "false_positives_per_1000": 88.0}
    stored = gate(metrics, None, rules).as_dict()
    english = say(translator("en"), stored["reasons"], stored["codes"])
    korean = say(translator("ko"), stored["reasons"], stored["codes"])
    assert "FAIL: accuracy 0.5000 is below the minimum 0.90" in english
    assert "불합격: false_positives_per_1000 88.0000이(가) 최대 기준 50.00보다 높습니다" in korean


def test_a_calibration_passes_only_if_it_lowers_the_calibration_error():
    from app.learning.classifier import calibration_check

    metrics = {"calibration_error": 0.12, "calibrated_error": 0.04, "temperature": 1.8,
               "served_temperature": 1.0}  # fmt: skip
    ok, line = calibration_check(metrics)
    assert ok and line == (
        "pass: calibration error 0.0400 at temperature 1.800 vs 0.1200 as served "
        "(temperature 1.000)"
    )
    ok, line = calibration_check({**metrics, "calibrated_error": 0.12})
    assert not ok and line.startswith("FAIL")


def test_only_a_calibration_may_be_the_champion_and_only_while_it_is():
    from app.learning.classifier import Candidate, _refusal

    plain, calibrate = Candidate("/m", "v2"), Candidate("/m", "v2", calibrate=True)
    assert "the candidate is the champion" in _refusal(plain, same=True, weights="w1")
    assert _refusal(plain, same=False, weights="w1") is None
    assert _refusal(calibrate, same=True, weights="w1") is None
    assert "the champion changed" in _refusal(calibrate, same=False, weights="w1")
    # Stored on the run: only a calibration says so, so older runs read back unchanged.
    assert plain.as_dict() == {"uri": "/m", "prompt_version": "v2"}
    assert Candidate(**calibrate.as_dict()) == calibrate


def test_a_sites_prompt_directory_is_searched_first(tmp_path: Path, monkeypatch):
    site_prompts(tmp_path, "v2-site")
    with pytest.raises(ValueError, match="unknown prompt version 'v2-site'"):
        load_prompts("v2-site")
    monkeypatch.setenv(SITE_DIR_VARIABLE, str(tmp_path))
    prompts = load_prompts("v2-site")
    assert prompts.version == "v2-site" and len(prompts.examples) == 1
    assert "v2-site" in available_versions() and "v2" in available_versions()
    assert "v1" not in available_versions()  # predates step 2: it does not load
    assert load_prompts("v2").version == "v2"  # the packaged ones still load


def test_the_content_hash_pins_the_wording_and_the_example_images(tmp_path: Path, monkeypatch):
    monkeypatch.setenv(SITE_DIR_VARIABLE, str(tmp_path))
    site_prompts(tmp_path, "v2-site")
    before = load_prompts("v2-site").content_hash()
    assert len(before) == 64 and before != load_prompts("v2").content_hash()
    Image.new("RGB", (56, 56), (0, 0, 0)).save(tmp_path / "examples" / "stain-1.png")
    assert load_prompts("v2-site").content_hash() != before


def test_a_file_must_call_itself_by_its_name_and_names_cannot_be_paths(tmp_path, monkeypatch):
    monkeypatch.setenv(SITE_DIR_VARIABLE, str(tmp_path))
    path = site_prompts(tmp_path, "v9")
    path.rename(tmp_path / "v10.json")
    with pytest.raises(ValueError, match="says it is version 'v9', not 'v10'"):
        load_prompts("v10")
    assert "v10" not in available_versions()
    for name in ("../v2", "a/b", ".hidden", ""):
        with pytest.raises(ValueError, match="not a prompt version name"):
            load_prompts(name)


def test_each_arm_gets_its_own_prompts_in_serves_configuration():
    settings = AppSettings(
        champion=ModelPair("", "/m/cls", "v2"),
        challenger=ModelPair("", "/m/cls", "v2-site"),
        challenger_share=0.1,
        prompt_version="v2",
    )
    configs = settings.user_configs()
    assert configs["Classifier"]["prompt_version"] == "v2"
    assert configs["ChallengerClassifier"]["prompt_version"] == "v2-site"
    default = AppSettings(champion=ModelPair("", "/m/cls"), prompt_version="v3")
    assert default.user_configs()["Classifier"]["prompt_version"] == "v3"


def test_a_classifier_runs_metrics_read_as_accuracy_and_agreement():
    metrics = json.loads(json.dumps({
        "evaluated_on": "verified_crops", "crops": 40, "accuracy": 0.9, "human_agreement": 0.95,
        "severity_accuracy": 0.8, "calibration_error": 0.05, "failed": 2, "temperature": 1.5,
        "calibrated_error": 0.03, "false_positives_per_1000": 25.0,
        "per_class": {"stain": {"support": 10, "predicted": 12, "recall": 0.9, "precision": 0.75}},
        "baseline": {"version": "cls-1", "prompt_version": "v2", "accuracy": 0.85,
                     "human_agreement": 0.9, "severity_accuracy": 0.8, "calibration_error": 0.1},
    }))  # fmt: skip
    lines = metrics_lines(metrics)
    assert lines[0] == (
        "metrics on 40 verified crops: accuracy 0.9000, human_agreement 0.9500, "
        "severity_accuracy 0.8000, calibration_error 0.0500, false_positives_per_1000 25.0000"
    )
    assert lines[1] == (
        "calibration: temperature 1.500 (served with the version); calibration error 0.0500 "
        "unscaled, 0.0300 scaled (cross-fitted)"
    )
    assert "2 crops could not be classified" in lines[2]
    assert "stain" in lines[3] and "(10 crops)" in lines[3]
    assert lines[4].startswith("baseline cls-1 with prompts v2: accuracy 0.8500")
