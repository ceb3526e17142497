"""Excluding examples: a snapshot less some examples is what a build with them excluded
makes, to the byte; and what /ml/instructions shows of a manifest (filters, pages, balance).
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from app.instructions.browse import (
    BadFilter,
    Filters,
    balance_report,
    page_of,
    parse_filters,
)
from app.instructions.exclusions import BadReason, clean_reason
from app.instructions.manifest import (
    BuildOptions,
    build_manifest,
    manifest_counts,
    snapshot_id,
    without_examples,
)
from app.instructions.tables import InstructionExclusion  # noqa: F401 (the table is declared)
from tests.unit.test_instructions_builders import CTX
from tests.unit.test_instructions_manifest import ANSWERS

STAINS = [replace(ANSWERS[3], crop_id=i) for i in range(10, 29)]
HOLE = replace(ANSWERS[2], crop_id=99)


def ids(manifest: dict) -> list[str]:
    return [example["id"] for example in manifest["examples"]]


def test_a_build_without_exclusions_says_nothing_of_them() -> None:
    manifest = build_manifest(ANSWERS, CTX, BuildOptions())
    assert "excluded" not in manifest
    assert without_examples(manifest, ["no-such-example"]) == manifest


def test_excluding_from_a_snapshot_is_building_with_the_exclusion() -> None:
    full = build_manifest(ANSWERS, CTX, BuildOptions())
    one = ids(full)[5]
    smaller = without_examples(full, [one])
    assert one not in ids(smaller) and len(ids(smaller)) == len(ids(full)) - 1
    assert smaller["excluded"] == [one]
    rebuilt = build_manifest(ANSWERS, CTX, BuildOptions(), excluded={one, "gone:A.type::en"})
    assert rebuilt == smaller and snapshot_id(rebuilt) == snapshot_id(smaller)
    assert snapshot_id(without_examples(full, [one])) == snapshot_id(smaller)  # same again
    # Two exclusions one after the other: the build with both.
    two = ids(full)[-1]
    both = build_manifest(ANSWERS, CTX, BuildOptions(), excluded=[one, two])
    assert without_examples(smaller, [two]) == both
    assert both["excluded"] == sorted([one, two])


def test_a_crop_without_examples_goes_and_the_balance_is_worked_out_again() -> None:
    full = build_manifest([*STAINS, HOLE], CTX, BuildOptions())
    assert full["balance"]["crops_after"]["hole"] == 3
    hole_examples = [e["id"] for e in full["examples"] if e["crop"] == 99]
    smaller = without_examples(full, hole_examples)
    assert 99 not in {crop["id"] for crop in smaller["crops"]}
    assert smaller["balance"]["crops_before"] == {"stain": 19} and smaller["balance"]["added"] == 0
    assert {crop["repeat"] for crop in smaller["crops"]} == {1}
    assert manifest_counts(smaller)["samples"] == len(smaller["examples"])
    assert smaller == build_manifest([*STAINS, HOLE], CTX, BuildOptions(), excluded=hole_examples)


def test_reasons_are_one_trimmed_line_and_required() -> None:
    assert clean_reason("  label\n is   wrong ") == "label is wrong"
    with pytest.raises(BadReason) as missing:
        clean_reason(" \n ")
    assert missing.value.code == "missing"
    with pytest.raises(BadReason) as long:
        clean_reason("x" * 501)
    assert long.value.code == "too_long"


def test_filters_are_checked_and_match_examples() -> None:
    assert parse_filters(None, "", "  ", types=["hole"]) == Filters()  # none set: everything
    assert parse_filters(" A ", None, None, types=["hole"]) == Filters(kind="A")
    filters = parse_filters("B", "hole", "ko", types=["hole"])
    assert filters.query() == {"kind": "B", "type": "hole", "language": "ko"}
    assert filters.match({"kind": "B", "defect_type": "hole", "language": "ko"})
    assert not filters.match({"kind": "B", "defect_type": "hole", "language": "en"})
    for bad in (("E", None, None), (None, "spaghetti", None), (None, None, "fr")):
        with pytest.raises(BadFilter):
            parse_filters(*bad, types=["hole"])


def test_pages_of_the_matching_examples() -> None:
    manifest = build_manifest(ANSWERS, CTX, BuildOptions())
    everything = page_of(manifest, Filters(), 1, per_page=10)
    assert everything.total == len(manifest["examples"]) and len(everything.rows) == 10
    assert everything.pages == -(-everything.total // 10)
    last = page_of(manifest, Filters(), 10_000, per_page=10)
    assert last.number == last.pages and last.rows
    only_c = page_of(manifest, Filters(kind="C", language="en"), 1)
    assert only_c.rows and all(r.example["kind"] == "C" for r in only_c.rows)
    assert all(r.crop["id"] == r.example["crop"] for r in only_c.rows)
    assert page_of(manifest, Filters(defect_type="tear"), 1).pages == 1  # none: one empty page


def test_the_balance_report_in_words() -> None:
    def t(key: str, **values: object) -> str:
        return f"{key}{sorted(values.items())}"

    balance = build_manifest([*STAINS, HOLE], CTX, BuildOptions())["balance"]
    lines = balance_report(balance, t, str.upper)
    assert lines[0] == "instructions.balance_target[('target', '10.0%')]"
    assert lines[1] == "instructions.balance_added[('added', 2), ('lifted', 'HOLE 1 → 3')]"
    off = build_manifest([*STAINS, HOLE], CTX, BuildOptions(min_share=0))["balance"]
    assert balance_report(off, t, str) == ["instructions.balance_off[]"]
    capped = build_manifest([*STAINS, HOLE], CTX, BuildOptions(min_share=0.3, max_extra=0.05))
    assert balance_report(capped["balance"], t, str)[-1].startswith("instructions.balance_capped")
