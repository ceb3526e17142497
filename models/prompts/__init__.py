"""Versioned classifier prompts, one JSON file per version (`v2.json`, ...).

Prompts are data: a new wording is a new file, and every InferenceResult records the
prompt version that produced it so that error analysis can compare versions. Older
files stay as the record of what earlier results were asked (`v1.json` predates step 2
and no longer loads for classification).
"""

from __future__ import annotations

import json
import string
from dataclasses import dataclass
from pathlib import Path

from models.taxonomy import LANGUAGES, Label

PROMPTS_DIR = Path(__file__).parent
DEFAULT_VERSION = "v2"

# Placeholders each template must use; a template missing one would silently ask the
# model a different question than the code thinks it asks.
REQUIRED_FIELDS = {
    "system": set(),
    "type_question": {"choices"},
    "severity_question": {"choices", "defect_type"},
    "exception_question": {"question"},
    "example_question": set(),
    "reason": {"defect_type", "severity"},
    "reason_not_defect": {"defect_type"},
    "choice_line": {"key", "description"},
}


@dataclass(frozen=True)
class PromptSet:
    """The prompts of one language."""

    system: str
    type_question: str
    severity_question: str
    exception_question: str
    example_question: str
    reason: str
    reason_not_defect: str
    choice_line: str

    def choices_text(self, labels: tuple[Label, ...] | list[Label], language: str) -> str:
        """Lists the allowed answers, one per line, the way the questions expect them."""
        return "\n".join(
            self.choice_line.format(
                key=label.key,
                name=label.name(language),
                description=label.description(language),
            )
            for label in labels
        )


@dataclass(frozen=True)
class FewShotExample:
    """A photo crop and the defect type an inspector gave it, shown before the crop."""

    image_path: Path
    answer: str


@dataclass(frozen=True)
class Prompts:
    version: str
    languages: dict[str, PromptSet]
    examples: tuple[FewShotExample, ...] = ()

    def for_language(self, language: str) -> PromptSet:
        try:
            return self.languages[language]
        except KeyError:
            known = sorted(self.languages)
            raise ValueError(f"prompt language {language!r} not in {known}") from None


def load_prompts(version: str = DEFAULT_VERSION) -> Prompts:
    """Reads `<version>.json` next to this module (or a path to a prompts file) and checks
    every language, field and example."""
    path = Path(version) if version.endswith(".json") else PROMPTS_DIR / f"{version}.json"
    if not path.is_file():
        raise ValueError(f"unknown prompt version {version!r} (no {path.name})")
    data = json.loads(path.read_text(encoding="utf-8"))
    languages = {lang: _prompt_set(lang, fields) for lang, fields in data["languages"].items()}
    missing = [lang for lang in LANGUAGES if lang not in languages]
    if missing:
        raise ValueError(f"prompts {version} lack languages {missing}")
    examples = tuple(_example(path.parent, item) for item in data.get("examples", []))
    return Prompts(version=str(data["version"]), languages=languages, examples=examples)


def _prompt_set(language: str, fields: dict[str, str]) -> PromptSet:
    for name, required in REQUIRED_FIELDS.items():
        if name not in fields:
            raise ValueError(f"prompts[{language}] lack {name!r}")
        used = {f for _, f, _, _ in string.Formatter().parse(fields[name]) if f}
        if not required <= used:
            raise ValueError(f"prompts[{language}].{name} must use {sorted(required - used)}")
    return PromptSet(**{name: fields[name] for name in REQUIRED_FIELDS})


def _example(root: Path, item: dict[str, str]) -> FewShotExample:
    image_path = (root / item["image"]).resolve()
    if not image_path.is_file():
        raise ValueError(f"few-shot example image {item['image']!r} not found under {root}")
    return FewShotExample(image_path=image_path, answer=str(item["answer"]))
