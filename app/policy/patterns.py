"""Error patterns and the action each one suggests. Pure: rules and patterns in, actions out.

A pattern is a group of error cases with the same kind, model label, human label, field
and tag, e.g. "false_positive · stain → normal · tag shadow": the model keeps calling
shadows stains. The suggestion comes from an ordered list of rules (data, so a site can
change them without code): the first rule whose every condition matches wins. An empty
condition matches anything.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

FALLBACK_ACTION = "add_to_retraining_set"


@dataclass(frozen=True)
class Pattern:
    kind: str
    model_label: str | None
    human_label: str | None
    field: str | None = None
    tag: str | None = None

    def title(self) -> str:
        """The pattern as the dashboard names it: kind · model → human · tag."""
        parts = [self.kind]
        if self.field == "severity":
            parts.append(f"{self.model_label or '∅'} severity")
        else:
            parts.append(f"{self.model_label or 'missed'} → {self.human_label or '?'}")
        if self.tag:
            parts.append(f"tag {self.tag}")
        return " · ".join(parts)


@dataclass(frozen=True)
class ActionRule:
    action: str
    kind: str | None = None
    model_label: str | None = None
    human_label: str | None = None
    field: str | None = None
    # Any one of these tags; empty matches patterns with or without a tag.
    tags: tuple[str, ...] = ()

    def matches(self, pattern: Pattern) -> bool:
        checks = (
            (self.kind, pattern.kind),
            (self.model_label, pattern.model_label),
            (self.human_label, pattern.human_label),
            (self.field, pattern.field),
        )
        if any(wanted is not None and wanted != actual for wanted, actual in checks):
            return False
        return not self.tags or pattern.tag in self.tags


KNOWN_KEYS = {"action", "kind", "model_label", "human_label", "field", "tags"}


def parse_rules(text: str) -> list[ActionRule]:
    """Rules from JSON: a list of objects with an "action" and optional conditions."""
    data = json.loads(text)
    if not isinstance(data, list):
        raise ValueError("pattern action rules must be a JSON list of objects")
    rules = []
    for i, item in enumerate(data):
        if not isinstance(item, dict) or not isinstance(item.get("action"), str):
            raise ValueError(f"rule {i} must be an object with an 'action' string")
        unknown = set(item) - KNOWN_KEYS
        if unknown:
            raise ValueError(f"rule {i} has unknown keys: {', '.join(sorted(unknown))}")
        tags = item.get("tags", [])
        if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
            raise ValueError(f"rule {i}: 'tags' must be a list of strings")
        rules.append(ActionRule(**{**item, "tags": tuple(tags)}))
    return rules


def suggest_action(pattern: Pattern, rules: Sequence[ActionRule]) -> str:
    """The action of the first matching rule; new training data when no rule matches."""
    return next((rule.action for rule in rules if rule.matches(pattern)), FALLBACK_ACTION)
