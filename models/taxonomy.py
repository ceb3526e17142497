"""The defect taxonomy: which defect types and severities the classifier may answer.

The taxonomy is data (`taxonomy.json`) so that a site adds a defect type by editing a
file, not code. Keys are the stable identifiers stored in the database and scored by the
classifier; display names and descriptions are per language for inspectors and prompts.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

DEFAULT_PATH = Path(__file__).with_name("taxonomy.json")
LANGUAGES = ("en", "ko")
NORMAL = "normal"


@dataclass(frozen=True)
class Label:
    """One answer the classifier may give, with its names and descriptions per language."""

    key: str
    names: dict[str, str]
    descriptions: dict[str, str]

    def name(self, language: str) -> str:
        return self.names.get(language) or self.names["en"]

    def description(self, language: str) -> str:
        return self.descriptions.get(language) or self.descriptions["en"]


@dataclass(frozen=True)
class Taxonomy:
    version: str
    defect_types: tuple[Label, ...]
    severities: tuple[Label, ...]

    @property
    def type_keys(self) -> list[str]:
        return [label.key for label in self.defect_types]

    @property
    def severity_keys(self) -> list[str]:
        return [label.key for label in self.severities]

    def defect_type(self, key: str) -> Label:
        return _find(self.defect_types, key)

    def severity(self, key: str) -> Label:
        return _find(self.severities, key)


def load_taxonomy(path: Path | str | None = None) -> Taxonomy:
    """Read and validate a taxonomy file (the packaged one by default)."""
    data = json.loads(Path(path or DEFAULT_PATH).read_text(encoding="utf-8"))
    taxonomy = Taxonomy(
        version=str(data["version"]),
        defect_types=tuple(_label(item) for item in data["defect_types"]),
        severities=tuple(_label(item) for item in data["severities"]),
    )
    _validate(taxonomy)
    return taxonomy


def _label(item: dict[str, Any]) -> Label:
    descriptions = item.get("description", {})
    return Label(
        key=str(item["key"]),
        names={lang: str(item[lang]) for lang in LANGUAGES if lang in item},
        descriptions={lang: str(text) for lang, text in descriptions.items()},
    )


def _validate(taxonomy: Taxonomy) -> None:
    # Fail at load time, not in the middle of an inspection: a missing translation or a
    # duplicated key would silently skew the classifier's answer distribution.
    for group in (taxonomy.defect_types, taxonomy.severities):
        keys = [label.key for label in group]
        if not keys or len(set(keys)) != len(keys):
            raise ValueError(f"taxonomy keys must be non-empty and unique: {keys}")
        for label in group:
            missing = [lang for lang in LANGUAGES if lang not in label.names]
            missing += [
                f"description.{lang}" for lang in LANGUAGES if lang not in label.descriptions
            ]
            if missing:
                raise ValueError(f"taxonomy label {label.key!r} lacks {missing}")
    if NORMAL not in taxonomy.type_keys:
        raise ValueError(f"taxonomy must contain the {NORMAL!r} defect type")


def _find(labels: tuple[Label, ...], key: str) -> Label:
    for label in labels:
        if label.key == key:
            return label
    raise KeyError(key)
