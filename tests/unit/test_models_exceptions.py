"""Step 2's exceptions are data; their answers move probability from the candidate to normal."""

import json
from pathlib import Path

import pytest

from models.contracts import ExceptionAnswer
from models.exceptions import DEFAULT_PATH, apply_exceptions, load_exceptions
from models.taxonomy import load_taxonomy

STEP1 = {"stain": 0.6, "hole": 0.1, "normal": 0.3}


def test_no_exception_keeps_the_candidate_and_the_distribution() -> None:
    label, final = apply_exceptions(STEP1, "stain", [])
    assert label == "stain" and final == STEP1


def test_doubtful_exceptions_lower_the_candidate_without_overturning_it() -> None:
    answers = [ExceptionAnswer("shadow", 0.5, 0.8), ExceptionAnswer("lint", 0.2, 0.8)]
    label, final = apply_exceptions(STEP1, "stain", answers)
    assert label == "stain"
    assert final["stain"] == pytest.approx(0.6 * 0.5 * 0.8)
    assert final["normal"] == pytest.approx(0.3 + 0.6 * (1 - 0.4))
    assert final["hole"] == 0.1 and sum(final.values()) == pytest.approx(1.0)


def test_an_exception_at_its_threshold_overturns() -> None:
    label, final = apply_exceptions(STEP1, "stain", [ExceptionAnswer("shadow", 0.8, 0.8)])
    assert label == "normal" and final["normal"] == pytest.approx(0.3 + 0.48)


def test_the_packaged_exceptions_load_and_fit_the_taxonomy() -> None:
    exceptions = load_exceptions()
    exceptions.check_against(load_taxonomy())
    assert [r.key for r in exceptions.rules] == [
        "shadow_or_lighting",
        "intentional_design",
        "removable_lint",
    ]
    assert all(0.5 <= rule.threshold <= 1.0 for rule in exceptions.rules)


def _write(tmp_path: Path, change) -> Path:  # type: ignore[no-untyped-def]
    data = json.loads(DEFAULT_PATH.read_text())
    change(data)
    path = tmp_path / "exceptions.json"
    path.write_text(json.dumps(data))
    return path


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d["exceptions"][0].pop("ko"), "lacks languages"),
        (lambda d: d["exceptions"][0].update(threshold=1.5), "threshold"),
        (lambda d: d["exceptions"].append(d["exceptions"][0]), "unique"),
        (lambda d: d["exceptions"][0]["en"].update(question="Is it a shadow?"), "defect_type"),
    ],
)
def test_bad_exception_files_are_refused(tmp_path: Path, change, message: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValueError, match=message):
        load_exceptions(_write(tmp_path, change))


def test_an_exception_for_an_unknown_type_is_refused(tmp_path: Path) -> None:
    path = _write(tmp_path, lambda d: d["exceptions"][1].update(applies_to=["stian"]))
    with pytest.raises(ValueError, match="stian"):
        load_exceptions(path).check_against(load_taxonomy())


def test_adding_an_exception_is_a_file_change(tmp_path: Path) -> None:
    extra = {
        "key": "fold_line",
        "threshold": 0.9,
        "applies_to": ["tear", "seam_open"],
        "en": {"name": "Fold", "question": "Is the {defect_type} only a fold line?"},
        "ko": {"name": "접힘", "question": "{defect_type}이(가) 접힌 자국일 뿐입니까?"},
    }
    exceptions = load_exceptions(_write(tmp_path, lambda d: d["exceptions"].append(extra)))
    assert [r.key for r in exceptions.for_candidate("tear")][-1] == "fold_line"
    assert "fold_line" not in [r.key for r in exceptions.for_candidate("stain")]
