"""Versioned instruction templates, one JSON file per version (`templates/i1.json`, ...).

Templates are data, like the classifier's prompts: a new wording is a new file, a
snapshot names the version (and the file's hash) it was built with, and a site writes
its own versions into LOUPE_INSTRUCTION_TEMPLATES_DIR, searched before the packaged
ones. Every language must have every template, and each template may only use its own
placeholders: a typo would otherwise put "{defect_typ}" into thousands of examples, and a
missing placeholder would drop the very label the example teaches.
"""

from __future__ import annotations

import hashlib
import json
import string
from dataclasses import dataclass
from pathlib import Path

from models.taxonomy import LANGUAGES

TEMPLATES_DIR = Path(__file__).parent / "templates"
DEFAULT_VERSION = "i1"

_HUMAN = {"human", "human_key", "human_description"}
# name -> (placeholders it may use, placeholders it must use).
FIELDS: dict[str, tuple[set[str], set[str]]] = {
    "A.is_type": ({"defect_type"}, {"defect_type"}),
    "B.question": ({"first", "second", "first_key", "second_key"}, {"first_key", "second_key"}),
    "B.answer": (
        {"answer", "answer_key", "answer_description", "other", "other_description"},
        {"answer_key"},
    ),
    "C.exception_question": ({"defect_type", "exception"}, {"defect_type", "exception"}),
    "C.exception_answer": ({"exception", "defect_type", "severity", "verdict"}, {"verdict"}),
    "C.real_defect_question": (
        {"defect_type", "severity", "exception"},
        {"defect_type", "exception"},
    ),
    "C.real_defect_answer": (
        {"defect_type", "severity", "verdict", "exception", "tags_clause"},
        {"verdict"},
    ),
    "C.would_show_question": ({"other"}, {"other"}),
    "C.would_show_answer": (
        {"other_description", "answer", "answer_description"},
        {"other_description", "answer"},
    ),
    "D.type_question": (
        {"model", "model_key", "probability_clause", "human", "human_key", "tags_clause"},
        {"model", "human"},
    ),
    "D.type_answer": (
        _HUMAN | {"model", "model_description", "evidence_clause", "note_clause"},
        {"human_key"},
    ),
    "D.severity_question": (
        {"defect_type", "model_severity", "human_severity", "tags_clause"},
        {"model_severity", "human_severity"},
    ),
    "D.severity_answer": (
        {"human_severity", "human_severity_key", "human_severity_description", "note_clause"},
        {"human_severity_key"},
    ),
    "D.missed_question": (_HUMAN | {"severity_clause", "tags_clause"}, {"human"}),
    "D.missed_answer": (_HUMAN | {"note_clause"}, {"human_key"}),
    "clause.probability": ({"percent"}, {"percent"}),
    "clause.tags": ({"tags"}, {"tags"}),
    "clause.note": ({"note"}, {"note"}),
    "clause.severity": ({"severity"}, {"severity"}),
    "clause.exception_missed": (
        {"exception", "percent", "threshold", "model"},
        {"exception", "percent"},
    ),
    "clause.exception_wrong": (
        {"exception", "percent", "candidate"},
        {"exception", "candidate"},
    ),
    "word.pass": (set(), set()),
    "word.reject": (set(), set()),
}


@dataclass(frozen=True)
class Templates:
    version: str
    languages: dict[str, dict[str, str]]
    # A review tag -> the step 2 exception it says holds ("shadow" -> shadow_or_lighting).
    tag_exceptions: dict[str, str]
    sha256: str  # of the file: a snapshot pins the exact wording it was built with

    def text(self, language: str, name: str, /, **values: object) -> str:
        """Template `name` in `language`, filled in."""
        try:
            template = self.languages[language][name]
        except KeyError:
            raise ValueError(f"templates {self.version} have no {name!r} in {language!r}") from None
        return template.format(**values)


def template_dirs(site_dir: Path | None = None) -> list[Path]:
    """Where versions are looked up, in order: the site's directory, then the packaged one."""
    return [Path(site_dir), TEMPLATES_DIR] if site_dir else [TEMPLATES_DIR]


def load_templates(version: str = DEFAULT_VERSION, site_dir: Path | None = None) -> Templates:
    """Reads `<version>.json` (the site's directory first) and checks every language,
    template and placeholder."""
    path = template_path(version, site_dir)
    body = path.read_bytes()
    data = json.loads(body)
    if str(data.get("version")) != version:
        # Snapshots record the version by name: the name and the file must agree.
        raise ValueError(f"{path} says it is version {data.get('version')!r}, not {version!r}")
    languages = {str(lang): _language(version, str(lang), fields)
                 for lang, fields in data["languages"].items()}  # fmt: skip
    missing = [lang for lang in LANGUAGES if lang not in languages]
    if missing:
        raise ValueError(f"templates {version} lack languages {missing}")
    tags = data.get("tag_exceptions", {})
    if not isinstance(tags, dict) or not all(isinstance(v, str) for v in tags.values()):
        raise ValueError(f"templates {version}: tag_exceptions must map tags to exception keys")
    return Templates(version, languages, {str(k): v for k, v in tags.items()},
                     hashlib.sha256(body).hexdigest())  # fmt: skip


def template_path(version: str, site_dir: Path | None = None) -> Path:
    if not version or any(c in version for c in "/\\") or version.startswith("."):
        raise ValueError(f"{version!r} is not a template version name")
    for directory in template_dirs(site_dir):
        if (directory / f"{version}.json").is_file():
            return directory / f"{version}.json"
    raise ValueError(f"unknown instruction template version {version!r}")


def available_versions(site_dir: Path | None = None) -> list[str]:
    """The versions that load, by name."""
    names = sorted(
        {p.stem for d in template_dirs(site_dir) if d.is_dir() for p in d.glob("*.json")}
    )
    usable = []
    for name in names:
        try:
            load_templates(name, site_dir)
        except (ValueError, KeyError, json.JSONDecodeError):
            continue
        usable.append(name)
    return usable


def _language(version: str, language: str, fields: dict[str, str]) -> dict[str, str]:
    for name, (allowed, required) in FIELDS.items():
        if name not in fields:
            raise ValueError(f"templates {version} [{language}] lack {name!r}")
        used = {f for _, f, _, _ in string.Formatter().parse(fields[name]) if f is not None}
        if not used <= allowed:
            raise ValueError(
                f"templates {version} [{language}].{name} use unknown placeholders "
                f"{sorted(used - allowed)}; allowed: {sorted(allowed)}"
            )
        if not required <= used:
            raise ValueError(
                f"templates {version} [{language}].{name} must use {sorted(required - used)}"
            )
    unknown = sorted(set(fields) - set(FIELDS))
    if unknown:
        raise ValueError(f"templates {version} [{language}] have unknown templates {unknown}")
    return {name: str(fields[name]) for name in FIELDS}
