"""Instruction templates are checked data; a manifest is content-addressed and balanced."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from app.instructions.cli import balance_lines
from app.instructions.export import chat_record
from app.instructions.manifest import BuildOptions, build_manifest, manifest_counts, snapshot_id
from app.instructions.wording import TEMPLATES_DIR, available_versions, load_templates
from tests.unit.test_instructions_builders import CTX, answer, context, model


def site_version(tmp_path: Path, name: str, change) -> Path:  # type: ignore[no-untyped-def]
    data = json.loads((TEMPLATES_DIR / "i1.json").read_text(encoding="utf-8"))
    data["version"] = name
    change(data)
    (tmp_path / f"{name}.json").write_text(json.dumps(data, ensure_ascii=False), "utf-8")
    return tmp_path


def test_the_packaged_templates_load_in_both_languages() -> None:
    templates = load_templates()
    assert templates.version == "i1" and set(templates.languages) == {"en", "ko"}
    assert templates.tag_exceptions["shadow"] == "shadow_or_lighting"
    assert "i1" in available_versions()


def test_a_site_version_is_found_first_and_checked(tmp_path: Path) -> None:
    def reword(data) -> None:  # type: ignore[no-untyped-def]
        data["languages"]["en"]["word.reject"] = "reject it"

    site = site_version(tmp_path, "i2-site", reword)
    assert load_templates("i2-site", site).text("en", "word.reject") == "reject it"
    assert available_versions(site) == ["i1", "i2-site"]
    with pytest.raises(ValueError, match="unknown instruction template version"):
        load_templates("i2-site")  # not without the site's directory


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d["languages"]["ko"].pop("D.type_answer"), "lack 'D.type_answer'"),
        (lambda d: d["languages"].pop("ko"), "lack languages"),
        (
            lambda d: d["languages"]["en"].update({"B.answer": "{answer_kye}."}),
            "unknown placeholders",
        ),
        (lambda d: d["languages"]["en"].update({"D.missed_answer": "A hole."}), "must use"),
        (lambda d: d["languages"]["en"].update({"E.extra": "?"}), "unknown templates"),
    ],
)
def test_a_broken_template_version_is_refused(tmp_path: Path, change, message: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValueError, match=message):
        load_templates("bad", site_version(tmp_path, "bad", change))


def test_a_tag_naming_an_unknown_exception_is_refused(tmp_path: Path) -> None:
    site = site_version(tmp_path, "typo", lambda d: d["tag_exceptions"].update(lint="lnt"))
    with pytest.raises(ValueError, match="unknown exceptions"):
        replace(CTX, templates=load_templates("typo", site))


ANSWERS = [
    replace(answer("pilling", "moderate", model("stain")), crop_id=1, decision_id=1),
    replace(answer("normal", None, model("stain"), "not_defect", tags=("shadow",)), crop_id=2),
    replace(answer("hole", "severe", None, "added"), crop_id=3),
    replace(answer("stain", "moderate", model("stain"), "confirmed"), crop_id=4, decision_id=9),
]


def test_the_same_answers_give_the_same_snapshot_id_and_other_answers_another() -> None:
    first = build_manifest(ANSWERS, CTX, BuildOptions())
    again = build_manifest(list(reversed(ANSWERS)), context(), BuildOptions(languages=("ko", "en")))
    assert snapshot_id(first) == snapshot_id(again)
    noted = [*ANSWERS[:3], replace(ANSWERS[3], note="brown mark")]
    assert snapshot_id(build_manifest(noted, CTX, BuildOptions())) != snapshot_id(first)


def test_counts_per_kind_type_and_language() -> None:
    manifest = build_manifest(ANSWERS, CTX, BuildOptions(min_share=0.0))
    counts = manifest_counts(manifest)
    assert set(counts["by_kind"]) == {"A", "B", "C", "D"}
    assert set(counts["by_type"]) == {"pilling", "normal", "hole", "stain"}
    assert counts["by_language"]["en"] == counts["by_language"]["ko"] == counts["examples"] / 2
    assert counts["crops"] == 4 and counts["samples"] == counts["examples"]
    assert counts["max_decision_id"] == 9
    only_b = build_manifest(ANSWERS, CTX, BuildOptions(kinds=("B",), languages=("ko",)))
    assert {e["kind"] for e in only_b["examples"]} == {"B"}
    assert {e["language"] for e in only_b["examples"]} == {"ko"}
    assert len(only_b["crops"]) == 3  # a drawn box has no pair to contrast


def test_rare_types_are_repeated_and_the_manifest_says_so() -> None:
    stains = [replace(ANSWERS[3], crop_id=i) for i in range(10, 29)]
    hole = replace(ANSWERS[2], crop_id=99)
    manifest = build_manifest([*stains, hole], CTX, BuildOptions())
    balance = manifest["balance"]
    assert balance["crops_before"] == {"hole": 1, "stain": 19}
    assert balance["crops_after"] == {"hole": 3, "stain": 19} and balance["added"] == 2
    repeat = {crop["id"]: crop["repeat"] for crop in manifest["crops"]}
    assert repeat[99] == 3 and set(repeat.values()) == {1, 3}
    counts = manifest_counts(manifest)
    assert counts["samples_by_type"]["hole"] == 3 * counts["by_type"]["hole"]


def test_answers_of_types_the_taxonomy_lacks_are_left_out_and_counted() -> None:
    retired = replace(ANSWERS[0], crop_id=50, defect_type="fuzz")
    manifest = build_manifest([*ANSWERS, retired], CTX, BuildOptions())
    assert manifest["left_out"] == {"unknown_types": 1}
    assert 50 not in {crop["id"] for crop in manifest["crops"]}


def test_unknown_kinds_or_languages_are_refused() -> None:
    with pytest.raises(ValueError, match="kinds are"):
        BuildOptions(kinds=("E",))
    with pytest.raises(ValueError, match="kinds are"):
        BuildOptions(languages=("fr",))


def test_an_example_is_a_chat_record_with_the_crop_before_the_question() -> None:
    manifest = build_manifest(ANSWERS, CTX, BuildOptions(kinds=("A",), languages=("en",)))
    example = manifest["examples"][0]
    record = chat_record(manifest, "abc", example, "crops/crop-1.png")
    system, user, assistant = record["messages"]
    assert [m["role"] for m in (system, user, assistant)] == ["system", "user", "assistant"]
    assert system["content"][0]["text"] == CTX.questionnaire("en").prompt_set.system
    assert user["content"][0] == {"type": "image", "image": "crops/crop-1.png"}
    assert user["content"][1] == {"type": "text", "text": example["user"]}
    assert assistant["content"] == [{"type": "text", "text": "pilling"}]
    assert record["images"] == ["crops/crop-1.png"]


def test_the_build_says_what_balancing_did() -> None:
    stains = [replace(ANSWERS[3], crop_id=i) for i in range(10, 29)]
    answers = [*stains, replace(ANSWERS[2], crop_id=99)]
    lifted = balance_lines(build_manifest(answers, CTX, BuildOptions())["balance"])
    assert lifted == [
        "balance: every defect type at least 10.0% of the crops: 2 crop repeats added",
        "  hole 1 -> 3",
    ]
    capped = build_manifest(answers, CTX, BuildOptions(min_share=0.3, max_extra=0.05))
    assert "stopped at the cap" in balance_lines(capped["balance"])[-1]
    off = build_manifest(answers, CTX, BuildOptions(min_share=0.0))
    assert balance_lines(off["balance"]) == ["balance: off (--min-share 0)"]
