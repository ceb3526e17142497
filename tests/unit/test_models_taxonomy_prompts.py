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
    prompts = load_prompts("v1")
    assert prompts.version == "v1"
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


def test_unknown_prompt_version_and_language() -> None:
    with pytest.raises(ValueError, match="unknown prompt version"):
        load_prompts("v999")
    with pytest.raises(ValueError, match="not in"):
        load_prompts().for_language("fr")
