"""Instruction examples A-D from verified region answers: the right labels, in both languages.

Built on the packaged taxonomy, prompts, exceptions and templates, as a build reads them;
nothing here touches a database.
"""

from __future__ import annotations

import re

import pytest

from app.instructions.answers import ExceptionCheck, ModelAnswer, RegionAnswer
from app.instructions.examples import Context, Example
from app.instructions.facts import fact_examples
from app.instructions.reasoning import (
    contrast_examples,
    counterfactual_examples,
    failure_examples,
)
from app.instructions.wording import load_templates
from app.policy.routing import DecisionTable
from models.exceptions import load_exceptions
from models.prompts import load_prompts
from models.taxonomy import load_taxonomy
from models.two_step import SEVERITY

HANGUL = re.compile(r"[\uac00-\ud7a3]")
TAGS = {"en": {"shadow": "Shadow", "lighting": "Lighting"}, "ko": {"shadow": "그림자"}}
VERDICT = {"en": ("pass", "reject"), "ko": ("합격", "불합격")}
RIGHT = {"en": "The right answer is {}.", "ko": "정답은 {}입니다."}
LANGUAGES = ("en", "ko")


def context(table: DecisionTable | None = None) -> Context:
    return Context(load_taxonomy(), load_prompts("v2"), load_exceptions(), load_templates("i1"),
                   table or DecisionTable(), TAGS)  # fmt: skip


CTX = context()


def model(label: str, severity: str = "moderate", probability: float | None = 0.82,
          candidate: str | None = None, checks: tuple[ExceptionCheck, ...] = (),
          runner_up: str = "normal") -> ModelAnswer:  # fmt: skip
    distribution = {candidate or label: 0.8, runner_up: 0.15, "hole": 0.05}
    return ModelAnswer(label, severity, probability, candidate or label, distribution, checks)


def answer(human: str, severity: str | None, said: ModelAnswer | None, outcome: str = "changed",
           tags: tuple[str, ...] = (), note: str = "") -> RegionAnswer:  # fmt: skip
    return RegionAnswer(7, 3, "item", "ab/photo.png", "ab", (10.0, 10.0, 50.0, 40.0), outcome,
                        human, severity, said, tags, note)  # fmt: skip


def by_form(examples: list[Example]) -> dict[tuple[str, str], Example]:
    return {(e.form, e.subject): e for e in examples}


@pytest.mark.parametrize("language", LANGUAGES)
def test_kind_a_asks_the_production_questions_with_the_inspectors_answers(language: str) -> None:
    confused = answer("pilling", "moderate", model("stain"))
    examples = by_form(fact_examples(confused, CTX, language))
    questions = CTX.questionnaire(language)
    # Word for word what the classifier is scored with, answered with the allowed answer.
    assert examples["A.type", ""].user == questions.step1().text
    assert examples["A.type", ""].assistant == "pilling"
    step2 = dict(questions.step2("pilling"))
    assert examples["A.severity", ""].user == step2[SEVERITY].text
    assert examples["A.severity", ""].assistant == "moderate"
    for key in ("shadow_or_lighting", "removable_lint"):  # the exceptions pilling has
        assert examples["A.exception", key].user == step2[key].text
        assert examples["A.exception", key].assistant == "no"
    assert ("A.exception", "intentional_design") not in examples
    assert examples["A.is_type", "pilling"].assistant == "yes"
    assert examples["A.is_type", "stain"].assistant == "no"
    assert CTX.type_name("stain", language) in examples["A.is_type", "stain"].user
    assert all(e.kind == "A" and e.language == language and e.defect_type == "pilling"
               for e in examples.values())  # fmt: skip


@pytest.mark.parametrize("language", LANGUAGES)
def test_a_not_a_defect_says_yes_only_to_the_exception_its_tags_name(language: str) -> None:
    shadow = answer("normal", None, model("stain"), "not_defect", tags=("shadow",))
    examples = by_form(fact_examples(shadow, CTX, language))
    assert examples["A.type", ""].assistant == "normal"
    step2 = dict(CTX.questionnaire(language).step2("stain"))  # asked about the model's type
    assert examples["A.exception", "shadow_or_lighting"].user == step2["shadow_or_lighting"].text
    assert examples["A.exception", "shadow_or_lighting"].assistant == "yes"
    assert [k for f, k in examples if f == "A.exception"] == ["shadow_or_lighting"]
    assert examples["A.is_type", "stain"].assistant == "no"
    # Without a tag nobody said why it is not a defect: no exception is taught.
    untagged = fact_examples(answer("normal", None, model("stain"), "not_defect"), CTX, language)
    assert not [e for e in untagged if e.form == "A.exception"]


@pytest.mark.parametrize("language", LANGUAGES)
def test_kind_b_contrasts_the_pair_the_model_confused(language: str) -> None:
    [example] = contrast_examples(answer("pilling", "moderate", model("stain")), CTX, language)
    assert (example.kind, example.subject) == ("B", "stain")
    # Offered in taxonomy order (stain before pilling), so the right one is not always first.
    assert example.user.index("stain") < example.user.index("pilling")
    assert example.assistant.startswith("pilling.")
    assert CTX.type_description("pilling", language) in example.assistant
    assert CTX.type_description("stain", language) in example.assistant
    # Where the model was right, the type step 1 ranked next is the contrast.
    right = answer("hole", "severe", model("hole", runner_up="tear"), "confirmed")
    [ranked] = contrast_examples(right, CTX, language)
    assert ranked.subject == "tear" and ranked.assistant.startswith("hole.")
    assert contrast_examples(answer("hole", "severe", None, "added"), CTX, language) == []


@pytest.mark.parametrize("language", LANGUAGES)
def test_kind_c_reasons_from_the_exceptions_tags_and_decision_table(language: str) -> None:
    passing, rejecting = VERDICT[language]
    lit = answer("stain", "moderate", model("stain"), "confirmed", tags=("lighting",))
    [exception] = counterfactual_examples(lit, CTX, language)
    assert (exception.form, exception.subject) == ("C.exception", "shadow_or_lighting")
    assert CTX.exception_name("shadow_or_lighting", language) in exception.user
    assert exception.assistant.endswith(f"{rejecting}.")
    # Without tags, the exception step 2 came closest to firing on.
    close = model("stain", checks=(ExceptionCheck("shadow_or_lighting", 0.1, 0.8, False),
                                   ExceptionCheck("removable_lint", 0.6, 0.8, False)))  # fmt: skip
    minor = answer("stain", "minor", close, "confirmed")
    [lint] = counterfactual_examples(minor, CTX, language)
    assert lint.subject == "removable_lint" and lint.assistant.endswith(f"{passing}.")
    # The site's decision table decides the verdict.
    strict = context(DecisionTable(overrides={"stain": {"*": "reject"}}))
    assert counterfactual_examples(minor, strict, language)[0].assistant.endswith(f"{rejecting}.")

    shadow = answer("normal", None, model("stain"), "not_defect", tags=("shadow",))
    [real] = counterfactual_examples(shadow, CTX, language)
    assert (real.form, real.subject) == ("C.real_defect", "shadow_or_lighting")
    assert rejecting in real.assistant and TAGS[language]["shadow"] in real.assistant

    [would] = counterfactual_examples(answer("normal", None, model("stain"), "not_defect"), CTX,
                                      language)  # fmt: skip
    assert (would.form, would.subject) == ("C.would_show", "stain")
    assert would.assistant.startswith(CTX.type_description("stain", language))


@pytest.mark.parametrize("language", LANGUAGES)
def test_kind_d_explains_each_error_case_and_only_error_cases(language: str) -> None:
    assert failure_examples(answer("stain", "moderate", model("stain"), "confirmed"), CTX,
                            language) == []  # fmt: skip
    missed_check = ExceptionCheck("shadow_or_lighting", 0.4, 0.8, False)
    shadow = answer("normal", None, model("stain", checks=(missed_check,)), "not_defect",
                    tags=("shadow",), note="a lamp\nshadow")  # fmt: skip
    [fp] = failure_examples(shadow, CTX, language)
    assert (fp.form, fp.subject) == ("D.type", "stain")
    assert "82%" in fp.user and TAGS[language]["shadow"] in fp.user
    assert "40%" in fp.assistant and "80%" in fp.assistant  # step 2's evidence
    assert "“a lamp shadow”" in fp.assistant  # the note, on one line
    assert fp.assistant.endswith(RIGHT[language].format("normal"))

    overturned = model("normal", candidate="hole",
                       checks=(ExceptionCheck("shadow_or_lighting", 0.9, 0.8, True),))  # fmt: skip
    [fn] = failure_examples(answer("hole", "severe", overturned), CTX, language)
    assert fn.subject == "normal" and "90%" in fn.assistant
    assert CTX.exception_name("shadow_or_lighting", language) in fn.assistant
    assert fn.assistant.endswith(RIGHT[language].format("hole"))

    [severity] = failure_examples(answer("stain", "severe", model("stain")), CTX, language)
    assert (severity.form, severity.subject) == ("D.severity", "moderate")
    assert CTX.severity_name("severe", language) in severity.user
    assert severity.assistant.endswith(RIGHT[language].format("severe"))

    [drawn] = failure_examples(answer("hole", "severe", None, "added"), CTX, language)
    assert drawn.form == "D.missed" and drawn.assistant.endswith(RIGHT[language].format("hole"))
    # A region whose model answer is unknown (it was never judged) has no error to explain.
    assert failure_examples(answer("normal", None, None, "added"), CTX, language) == []


def test_korean_examples_are_korean_and_english_ones_are_not() -> None:
    cases = [
        answer("pilling", "moderate", model("stain")),
        answer("normal", None, model("stain"), "not_defect", tags=("shadow",)),
        answer("hole", "severe", None, "added"),
    ]
    builders = (fact_examples, contrast_examples, counterfactual_examples, failure_examples)
    for language in LANGUAGES:
        examples = [e for case in cases for build in builders for e in build(case, CTX, language)]
        assert {e.kind for e in examples} == {"A", "B", "C", "D"}
        for example in examples:
            assert bool(HANGUL.search(example.user)) == (language == "ko"), example.id
