"""Versioned classifier prompts, one JSON file per version (`v2.json`, ...).

Prompts are data: a new wording is a new file, and every InferenceResult records the
prompt version that produced it so that error analysis can compare versions. Older
files stay as the record of what earlier results were asked (`v1.json` predates step 2
and no longer loads for classification).

A site's ML team writes its own versions (new wording, few-shot examples) into
LOUPE_PROMPTS_DIR, searched before the packaged ones, and tries them as a classifier
candidate (app.learning.classifier): the same gate and experiment as new weights, with
no code change. Every process that loads prompts (worker, Serve replicas) must see the
same directory.
"""

from __future__ import annotations

import hashlib
import json
import os
import string
from dataclasses import dataclass
from pathlib import Path

from models.taxonomy import LANGUAGES, Label

PROMPTS_DIR = Path(__file__).parent
DEFAULT_VERSION = "v2"
SITE_DIR_VARIABLE = "LOUPE_PROMPTS_DIR"

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
    # Where the example came from, opaque here (Loupe writes "decision_region:<id>"), so
    # that an evaluation can leave the crops a prompt shows out of what it is judged on.
    source: str = ""


@dataclass(frozen=True)
class Prompts:
    version: str
    languages: dict[str, PromptSet]
    examples: tuple[FewShotExample, ...] = ()
    path: Path | None = None  # the file it was read from

    def content_hash(self) -> str:
        """sha256 of the file and its example images: what a registered version pins. Read
        on demand: listing versions must not read every example image."""
        digest = hashlib.sha256(self.path.read_bytes() if self.path else b"")
        for example in self.examples:
            digest.update(example.image_path.read_bytes())
        return digest.hexdigest()

    def for_language(self, language: str) -> PromptSet:
        try:
            return self.languages[language]
        except KeyError:
            known = sorted(self.languages)
            raise ValueError(f"prompt language {language!r} not in {known}") from None


def prompt_dirs() -> list[Path]:
    """Where versions are looked up, in order: the site's directory, then the packaged one."""
    site = os.environ.get(SITE_DIR_VARIABLE, "").strip()
    return [Path(site), PROMPTS_DIR] if site else [PROMPTS_DIR]


def load_prompts(version: str = DEFAULT_VERSION) -> Prompts:
    """Reads `<version>.json` from prompt_dirs() (or a path to a prompts file) and checks
    every language, field and example."""
    path = prompt_path(version)
    data = json.loads(path.read_text(encoding="utf-8"))
    if not version.endswith(".json") and str(data.get("version")) != version:
        # Results record the file's version; serving loads by name: the two must agree.
        raise ValueError(f"{path} says it is version {data.get('version')!r}, not {version!r}")
    languages = {lang: _prompt_set(lang, fields) for lang, fields in data["languages"].items()}
    missing = [lang for lang in LANGUAGES if lang not in languages]
    if missing:
        raise ValueError(f"prompts {version} lack languages {missing}")
    examples = tuple(_example(path.parent, item) for item in data.get("examples", []))
    return Prompts(version=str(data["version"]), languages=languages, examples=examples,
                   path=path)  # fmt: skip


def prompt_path(version: str) -> Path:
    """The file of a version name (the site's directory first), or of a path to a file."""
    if version.endswith(".json"):
        path = Path(version)
    else:
        if not version or any(c in version for c in "/\\") or version.startswith("."):
            raise ValueError(f"{version!r} is not a prompt version name")
        found = [d / f"{version}.json" for d in prompt_dirs() if (d / f"{version}.json").is_file()]
        path = found[0] if found else PROMPTS_DIR / f"{version}.json"
    if not path.is_file():
        raise ValueError(f"unknown prompt version {version!r} (no {path.name})")
    return path


def available_versions() -> list[str]:
    """The versions that load for classification, newest name last (v1 predates step 2)."""
    names = sorted({p.stem for d in prompt_dirs() if d.is_dir() for p in d.glob("*.json")})
    usable = []
    for name in names:
        try:
            load_prompts(name)
        except (ValueError, KeyError, json.JSONDecodeError):
            continue
        usable.append(name)
    return usable


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
    return FewShotExample(
        image_path=image_path, answer=str(item["answer"]), source=str(item.get("source", ""))
    )
