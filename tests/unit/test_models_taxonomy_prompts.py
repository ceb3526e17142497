"""Taxonomy and prompts are data: both languages complete, placeholders present."""

import json
from pathlib import Path

import pytest

from models.prompts import REQUIRED_FIELDS, load_prompts
from models.taxonomy import LANGUAGES, load_taxonomy

EXPECTED_TYPES = [
    "stain",
    "tear",
    "discoloration",
    "pilling",
    "hole",
    "missing_button",
    "broken_stitch",
    "seam_open",
    "loose_thread",
    "print_damage",
    "zipper_damage",
    "snag",
    "normal",
]


def test_taxonomy_has_every_type_and_severity_in_every_language() -> None:
    taxonomy = load_taxonomy()
    assert taxonomy.type_keys == EXPECTED_TYPES
    assert taxonomy.severity_keys == ["minor", "moderate", "severe"]
    for label in (*taxonomy.defect_types, *taxonomy.severities):
        for language in LANGUAGES:
            assert label.name(language).strip()
            assert label.description(language).strip()
    assert taxonomy.defect_type("stain").name("ko") == "얼룩"
    assert taxonomy.version


def test_taxonomy_rejects_a_label_without_korean(tmp_path: Path) -> None:
    data = json.loads((Path(__file__).parents[2] / "models" / "taxonomy.json").read_text())
    del data["defect_types"][0]["ko"]
    path = tmp_path / "taxonomy.json"
    path.write_text(json.dumps(data))
    with pytest.raises(ValueError, match="lacks"):
        load_taxonomy(path)


def test_taxonomy_rejects_duplicate_keys(tmp_path: Path) -> None:
    data = json.loads((Path(__file__).parents[2] / "models" / "taxonomy.json").read_text())
    data["defect_types"].append(data["defect_types"][0])
    path = tmp_path / "taxonomy.json"
    path.write_text(json.dumps(data))
    with pytest.raises(ValueError, match="unique"):
        load_taxonomy(path)


@pytest.mark.parametrize("language", LANGUAGES)
def test_prompts_render_in_every_language(language: str) -> None:
    prompts = load_prompts()
    assert prompts.version == "v2" and prompts.examples == ()
    prompt_set = prompts.for_language(language)
    for field in REQUIRED_FIELDS:
        assert getattr(prompt_set, field).strip()
    taxonomy = load_taxonomy()
    question = prompt_set.type_question.format(
        choices=prompt_set.choices_text(taxonomy.defect_types, language)
    )
    for key in taxonomy.type_keys:  # the answers are listed by the key the model must say
        assert f"- {key}" in question
    severity = prompt_set.severity_question.format(
        choices=prompt_set.choices_text(taxonomy.severities, language),
        defect_type=taxonomy.defect_type("hole").name(language),
    )
    assert "- severe" in severity and taxonomy.defect_type("hole").name(language) in severity
    exception = prompt_set.exception_question.format(question="Is it lint?")
    assert "Is it lint?" in exception and "- yes" in exception and "- no" in exception


def test_unknown_prompt_version_and_language() -> None:
    with pytest.raises(ValueError, match="unknown prompt version"):
        load_prompts("v999")
    with pytest.raises(ValueError, match="not in"):
        load_prompts().for_language("fr")


def test_v1_is_kept_as_a_record_but_lacks_step_2() -> None:
    with pytest.raises(ValueError, match="exception_question"):
        load_prompts("v1")


def test_few_shot_examples_are_images_with_answers(tmp_path: Path) -> None:
    from PIL import Image

    data = json.loads((Path(__file__).parents[2] / "models" / "prompts" / "v2.json").read_text())
    (tmp_path / "examples").mkdir()
    Image.new("RGB", (64, 48), (120, 80, 40)).save(tmp_path / "examples" / "stain-1.png")
    data["version"] = "v2-site"
    data["examples"] = [{"image": "examples/stain-1.png", "answer": "stain"}]
    path = tmp_path / "v2-site.json"
    path.write_text(json.dumps(data))
    prompts = load_prompts(str(path))
    assert prompts.version == "v2-site"
    [example] = prompts.examples
    assert example.answer == "stain" and example.image_path.is_file()
    data["examples"][0]["image"] = "examples/missing.png"
    path.write_text(json.dumps(data))
    with pytest.raises(ValueError, match="missing.png"):
        load_prompts(str(path))
