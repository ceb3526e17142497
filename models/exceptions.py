"""Step 2 of the classifier: global exceptions, and how their answers change a region.

Exceptions are data (`exceptions.json`, versioned like the prompts): each is a yes/no
question in every language, a threshold, and the defect types it can overturn. Adding
one is a file change. The arithmetic that combines the answers with step 1 is here, pure,
so that it is testable on plain numbers.
"""

from __future__ import annotations

import json
import math
import string
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from models.contracts import ExceptionAnswer
from models.taxonomy import LANGUAGES, NORMAL, Taxonomy

DEFAULT_PATH = Path(__file__).with_name("exceptions.json")
YES, NO = "yes", "no"
ANY_TYPE = "*"


@dataclass(frozen=True)
class ExceptionRule:
    key: str
    threshold: float
    applies_to: tuple[str, ...]
    names: dict[str, str]
    questions: dict[str, str]  # per language, with a {defect_type} placeholder

    def applies(self, candidate: str) -> bool:
        # "normal" has nothing to overturn; asking would only cost a forward pass.
        return candidate != NORMAL and (ANY_TYPE in self.applies_to or candidate in self.applies_to)

    def question(self, language: str, defect_type_name: str) -> str:
        text = self.questions.get(language) or self.questions["en"]
        return text.format(defect_type=defect_type_name)


@dataclass(frozen=True)
class ExceptionSet:
    version: str
    rules: tuple[ExceptionRule, ...]

    def for_candidate(self, candidate: str) -> list[ExceptionRule]:
        return [rule for rule in self.rules if rule.applies(candidate)]

    def check_against(self, taxonomy: Taxonomy) -> None:
        """Every `applies_to` type must exist: a typo would silently never apply."""
        known = set(taxonomy.type_keys)
        for rule in self.rules:
            unknown = [t for t in rule.applies_to if t != ANY_TYPE and t not in known]
            if unknown:
                raise ValueError(f"exception {rule.key!r} applies to unknown types {unknown}")


def load_exceptions(path: Path | str | None = None) -> ExceptionSet:
    """Read and validate an exceptions file (the packaged one by default)."""
    data = json.loads(Path(path or DEFAULT_PATH).read_text(encoding="utf-8"))
    rules = tuple(_rule(item) for item in data["exceptions"])
    keys = [rule.key for rule in rules]
    if len(set(keys)) != len(keys):
        raise ValueError(f"exception keys must be unique: {keys}")
    return ExceptionSet(version=str(data["version"]), rules=rules)


def _rule(item: dict[str, Any]) -> ExceptionRule:
    key = str(item["key"])
    threshold = float(item["threshold"])
    if not 0.0 < threshold <= 1.0:
        raise ValueError(f"exception {key!r}: threshold must be in (0, 1], got {threshold}")
    missing = [lang for lang in LANGUAGES if lang not in item]
    if missing:
        raise ValueError(f"exception {key!r} lacks languages {missing}")
    questions = {lang: str(item[lang]["question"]) for lang in LANGUAGES}
    for lang, text in questions.items():
        fields = {f for _, f, _, _ in string.Formatter().parse(text) if f}
        if fields != {"defect_type"}:
            raise ValueError(f"exception {key!r} ({lang}) must use {{defect_type}} only")
    applies_to = tuple(str(t) for t in item.get("applies_to", [ANY_TYPE]))
    if not applies_to:
        raise ValueError(f"exception {key!r} applies to nothing")
    return ExceptionRule(
        key=key,
        threshold=threshold,
        applies_to=applies_to,
        names={lang: str(item[lang]["name"]) for lang in LANGUAGES},
        questions=questions,
    )


def apply_exceptions(
    distribution: dict[str, float], candidate: str, answers: list[ExceptionAnswer]
) -> tuple[str, dict[str, float]]:
    """Step 1's distribution and step 2's answers -> (final label, final distribution).

    The candidate is a real defect only if no exception holds. Treating the checks as
    independent, P(candidate and no exception) = P1(candidate) * prod(1 - P(exception));
    the rest of the candidate's mass moves to "normal", and the other types keep theirs,
    so the result is still a distribution. The label becomes "normal" only when an
    exception reaches its threshold: a doubtful exception lowers the candidate's
    probability (and so the region's confidence, sending it to a human) but does not
    hide a defect on its own.
    """
    keep = math.prod(1.0 - answer.probability for answer in answers)
    moved = distribution[candidate] * (1.0 - keep)
    final = dict(distribution)
    final[candidate] -= moved
    final[NORMAL] = final.get(NORMAL, 0.0) + moved
    label = NORMAL if any(answer.fired for answer in answers) else candidate
    return label, final
