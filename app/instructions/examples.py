"""A training example, and the versioned data every builder reads (Context).

An example is one question about one crop and the answer the inspector's verdict makes
right, in one language. Its id names the crop, the form and what it asks about, so the
same data always yields the same ids and a person can point at one example.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from app.instructions.wording import Templates
from app.policy.routing import DecisionTable
from models.exceptions import ExceptionSet
from models.prompts import Prompts
from models.taxonomy import Taxonomy
from models.two_step import Questionnaire


@dataclass(frozen=True)
class Example:
    crop_id: int
    kind: str  # A | B | C | D
    form: str  # which question: "A.type", "A.is_type", "B.contrast", "D.missed", ...
    subject: str  # what it asks about beyond the form (a type or exception key), or ""
    language: str
    defect_type: str  # the inspector's label of the crop: what class balance counts
    user: str  # the question, asked after the crop's image
    assistant: str

    @property
    def id(self) -> str:
        return f"{self.crop_id}:{self.form}:{self.subject}:{self.language}"


@dataclass
class Context:
    """Taxonomy, prompts, exceptions, templates, decision table and tag names: everything
    an example's wording comes from. None of it is read from a database."""

    taxonomy: Taxonomy
    prompts: Prompts
    exceptions: ExceptionSet
    templates: Templates
    table: DecisionTable
    tag_names: Mapping[str, Mapping[str, str]] = field(default_factory=dict)  # language -> tag
    _questionnaires: dict[str, Questionnaire] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        known = {rule.key for rule in self.exceptions.rules}
        unknown = sorted(set(self.templates.tag_exceptions.values()) - known)
        if unknown:
            # A typo here would silently never teach the exception it names.
            raise ValueError(
                f"templates {self.templates.version}: tag_exceptions name unknown exceptions "
                f"{unknown} (known: {sorted(known)})"
            )

    def questionnaire(self, language: str) -> Questionnaire:
        """The production questions in `language` (the prompts the classifier is scored with)."""
        if language not in self._questionnaires:
            self._questionnaires[language] = Questionnaire(
                self.taxonomy, self.prompts, self.exceptions, language
            )
        return self._questionnaires[language]

    def t(self, language: str, name: str, /, **values: object) -> str:
        return self.templates.text(language, name, **values)

    def is_type(self, key: str | None) -> bool:
        return key is not None and key in self.taxonomy.type_keys

    def is_severity(self, key: str | None) -> bool:
        return key is not None and key in self.taxonomy.severity_keys

    def type_name(self, key: str, language: str) -> str:
        return self.taxonomy.defect_type(key).name(language)

    def type_description(self, key: str, language: str) -> str:
        return self.taxonomy.defect_type(key).description(language)

    def severity_name(self, key: str, language: str) -> str:
        return self.taxonomy.severity(key).name(language) if self.is_severity(key) else key

    def severity_description(self, key: str, language: str) -> str:
        return self.taxonomy.severity(key).description(language)

    def exception_name(self, key: str, language: str) -> str:
        rule = next(r for r in self.exceptions.rules if r.key == key)
        return rule.names.get(language) or rule.names["en"]

    def exceptions_from_tags(self, tags: Iterable[str]) -> list[str]:
        """The step 2 exceptions the inspector's tags say hold, in tag order, once each."""
        keys = (self.templates.tag_exceptions.get(tag) for tag in tags)
        return list(dict.fromkeys(key for key in keys if key))

    def verdict(self, language: str, defect_type: str, severity: str) -> str:
        """The decision table's verdict for a region, as a word of `language`."""
        return self.t(language, f"word.{self.table.verdict(defect_type, severity)}")

    def tags_clause(self, language: str, tags: Iterable[str]) -> str:
        names = self.tag_names.get(language, {})
        listed = ", ".join(names.get(tag, tag) for tag in tags)
        return self.t(language, "clause.tags", tags=listed) if listed else ""

    def note_clause(self, language: str, note: str) -> str:
        # Newlines in a note would break the answer into lines the model then imitates.
        note = " ".join(note.split())
        return self.t(language, "clause.note", note=note) if note else ""


def percent(probability: float) -> int:
    return round(probability * 100)
