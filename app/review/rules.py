"""The site's configuration a decision is checked against: the routing policy, the
vocabulary an inspector may choose from, the quick tags, and the verdict table the page
shows. Built once per settings object."""

from __future__ import annotations

from dataclasses import dataclass

from app.config import Settings
from app.policy.routing import DecisionTable, Thresholds
from app.review import edits
from app.review.proposal import verdict_table
from models.taxonomy import NORMAL, load_taxonomy


@dataclass(frozen=True)
class Rules:
    """The site's configuration that a decision is checked against."""

    thresholds: Thresholds
    table: DecisionTable
    vocabulary: edits.Vocabulary
    tags: frozenset[str]
    verdicts: dict[str, str]  # "type/severity" -> verdict, for the page (proposal.verdict_table)

    @classmethod
    def from_settings(cls, settings: Settings) -> Rules:
        taxonomy = load_taxonomy()
        table = settings.routing.table
        return cls(
            thresholds=settings.routing.thresholds,
            table=table,
            vocabulary=edits.Vocabulary(
                types=frozenset(t for t in taxonomy.type_keys if t != NORMAL),
                severities=frozenset(taxonomy.severity_keys),
            ),
            tags=frozenset(settings.tag_keys),
            verdicts=verdict_table(table, taxonomy.type_keys, taxonomy.severity_keys),
        )


_rules_cache: list[tuple[Settings, Rules]] = []


def rules_for(settings: Settings) -> Rules:
    """Rules from settings, built once per settings object (tests replace the settings)."""
    for cached_settings, rules in _rules_cache:
        if cached_settings is settings:
            return rules
    rules = Rules.from_settings(settings)
    _rules_cache[:] = [(settings, rules)]
    return rules
