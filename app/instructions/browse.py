"""What /ml/instructions shows of a snapshot: its examples filtered by kind, defect type and
language, one page at a time, and its balance report in the reader's language. Pure.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from typing import Any

from app.instructions.kinds import KINDS
from models.taxonomy import LANGUAGES

PER_PAGE = 50
MAX_FILTER = 50  # characters of a filter value the page accepts at all


class BadFilter(ValueError):
    """A filter value the page does not know; `field` and `allowed` say which and what is."""

    def __init__(self, field: str, value: str, allowed: Collection[str]) -> None:
        super().__init__(f"{field} must be one of {', '.join(allowed)}; not {value!r}")
        self.field = field
        self.value = value
        self.allowed = list(allowed)


@dataclass(frozen=True)
class Filters:
    kind: str = ""  # "" is every one
    defect_type: str = ""
    language: str = ""

    def match(self, example: Mapping[str, Any]) -> bool:
        return all(
            not wanted or example[field] == wanted
            for field, wanted in (("kind", self.kind), ("defect_type", self.defect_type),
                                  ("language", self.language))
        )  # fmt: skip

    def query(self) -> dict[str, str]:
        """The filters that are set, as the page's query parameters."""
        named = {"kind": self.kind, "type": self.defect_type, "language": self.language}
        return {name: value for name, value in named.items() if value}


def parse_filters(
    kind: str | None, defect_type: str | None, language: str | None, *, types: Collection[str]
) -> Filters:
    """The filters asked for (empty: all); BadFilter for a value outside `types`, the kinds
    or the languages."""
    chosen = []
    for field, value, allowed in (("kind", kind, KINDS), ("type", defect_type, types),
                                  ("language", language, LANGUAGES)):  # fmt: skip
        value = (value or "").strip()
        if value and value not in allowed:
            raise BadFilter(field, value, allowed)
        chosen.append(value)
    return Filters(*chosen)


@dataclass(frozen=True)
class Row:
    example: dict[str, Any]
    crop: dict[str, Any]


@dataclass(frozen=True)
class Page:
    rows: list[Row]
    total: int  # examples that match the filters
    number: int  # from 1
    pages: int


def page_of(
    manifest: Mapping[str, Any], filters: Filters, number: int, per_page: int = PER_PAGE
) -> Page:
    """Page `number` of the examples that match (the last page when it is past the end)."""
    crops = {crop["id"]: crop for crop in manifest["crops"]}
    matching = [example for example in manifest["examples"] if filters.match(example)]
    pages = max(1, -(-len(matching) // per_page))
    number = min(max(number, 1), pages)
    shown = matching[(number - 1) * per_page : number * per_page]
    rows = [Row(example, crops[example["crop"]]) for example in shown]
    return Page(rows, len(matching), number, pages)


Translator = Callable[..., str]


def balance_report(
    balance: Mapping[str, Any], t: Translator, type_name: Callable[[str], str]
) -> list[str]:
    """What class balancing did, in sentences (the page's version of the build's lines)."""
    if not balance["min_share"]:
        return [t("instructions.balance_off")]
    lines = [t("instructions.balance_target", target=f"{balance['target_share']:.1%}")]
    if balance["target_share"] != balance["min_share"]:
        lines.append(t("instructions.balance_lowered", asked=f"{balance['min_share']:.0%}"))
    after = balance["crops_after"]
    lifted = [f"{type_name(name)} {n} → {after[name]}"
              for name, n in balance["crops_before"].items() if after[name] != n]  # fmt: skip
    if not lifted:
        return [*lines, t("instructions.balance_nothing")]
    lines.append(t("instructions.balance_added", added=balance["added"], lifted=", ".join(lifted)))
    if not balance["reached"]:
        lines.append(t("instructions.balance_capped", cap=f"{balance['max_extra']:g}"))
    return lines
