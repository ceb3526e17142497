"""Kinds B, C and D: the reasoning that answers alone do not teach.

Teaching only "this is a stain" makes a model say yes more readily; teaching what tells
two types apart, what would change the verdict and what went wrong keeps it from
flagging look-alikes. Every sentence is a template filled from recorded facts (taxonomy
descriptions, exceptions, the decision table, the model's evidence, the inspector's tags
and note); nothing is invented.

- B, compare and contrast: the pair the model confused (its final label, or step 1's
  candidate, against the inspector's), or, where the model was right, the type step 1
  ranked next.
- C, counterfactual: would it still be a defect if an exception held (the exception the
  defect came closest to, by its tags or step 2's evidence), would it be rejected if it
  were the defect the model saw (for a "not a defect" whose tags name the exception), and
  what the model's type would look like.
- D, failure analysis: where the inspector disagreed (the dashboard's error case), what
  the model missed, with step 2's evidence where it explains the miss.
"""

from __future__ import annotations

from app.instructions.answers import ModelAnswer, RegionAnswer, error_of
from app.instructions.examples import Context, Example, percent
from models.taxonomy import NORMAL


def _example(answer: RegionAnswer, kind: str, form: str, subject: str, language: str,
             user: str, assistant: str) -> Example:  # fmt: skip
    return Example(answer.crop_id, kind, form, subject, language, answer.defect_type,
                   user, assistant)  # fmt: skip


def contrast_examples(answer: RegionAnswer, ctx: Context, language: str) -> list[Example]:
    other = _contrast_type(answer, ctx)
    if other is None:
        return []
    human = answer.defect_type
    order = ctx.taxonomy.type_keys
    first, second = sorted((human, other), key=order.index)  # the right one is not always first
    user = ctx.t(language, "B.question", first=ctx.type_name(first, language), first_key=first,
                 second=ctx.type_name(second, language), second_key=second)  # fmt: skip
    assistant = ctx.t(
        language, "B.answer", answer=ctx.type_name(human, language), answer_key=human,
        answer_description=ctx.type_description(human, language),
        other=ctx.type_name(other, language),
        other_description=ctx.type_description(other, language),
    )  # fmt: skip
    return [_example(answer, "B", "B.contrast", other, language, user, assistant)]


def _contrast_type(answer: RegionAnswer, ctx: Context) -> str | None:
    model = answer.model
    if model is None:
        return None
    for said in (model.defect_type, model.candidate_type, model.runner_up(answer.defect_type)):
        if said != answer.defect_type and ctx.is_type(said):
            return said
    return None


def counterfactual_examples(answer: RegionAnswer, ctx: Context, language: str) -> list[Example]:
    human, severity = answer.defect_type, answer.severity
    examples = []
    key = _closest_exception(answer, ctx) if human != NORMAL else None
    if key is not None and severity is not None and ctx.is_severity(severity):
        values = {"defect_type": ctx.type_name(human, language),
                  "exception": ctx.exception_name(key, language)}  # fmt: skip
        user = ctx.t(language, "C.exception_question", **values)
        assistant = ctx.t(language, "C.exception_answer", **values,
                          severity=ctx.severity_name(severity, language),
                          verdict=ctx.verdict(language, human, severity))  # fmt: skip
        examples.append(_example(answer, "C", "C.exception", key, language, user, assistant))
    real = _real_defect(answer, ctx, language)
    if real is not None:
        examples.append(real)
    elif answer.model is not None and answer.model.defect_type != human:
        other = answer.model.defect_type
        if ctx.is_type(other):
            user = ctx.t(language, "C.would_show_question", other=ctx.type_name(other, language))
            assistant = ctx.t(
                language, "C.would_show_answer",
                other_description=ctx.type_description(other, language),
                answer=ctx.type_name(human, language),
                answer_description=ctx.type_description(human, language),
            )  # fmt: skip
            examples.append(_example(answer, "C", "C.would_show", other, language, user,
                                     assistant))  # fmt: skip
    return examples


def _closest_exception(answer: RegionAnswer, ctx: Context) -> str | None:
    """The exception a real defect was closest to being taken for: one its tags name (the
    inspector saw the look-alike), else the one step 2 gave the highest probability, else
    the first that applies. One per crop: the same lesson for every exception would
    outnumber the rest."""
    applicable = [rule.key for rule in ctx.exceptions.for_candidate(answer.defect_type)]
    tagged = [key for key in ctx.exceptions_from_tags(answer.tags) if key in applicable]
    if tagged:
        return tagged[0]
    checks = [c for c in answer.model.exceptions if c.key in applicable] if answer.model else []
    if checks:
        return max(checks, key=lambda c: c.probability).key
    return applicable[0] if applicable else None


def _real_defect(answer: RegionAnswer, ctx: Context, language: str) -> Example | None:
    """For a region the inspector called not a defect, with a tag that says which
    exception held: if it were the defect the model saw, would it be rejected?"""
    model = answer.model
    if answer.defect_type != NORMAL or model is None:
        return None
    seen, severity = model.candidate_type, model.severity
    if seen == NORMAL or not ctx.is_type(seen) or not ctx.is_severity(severity):
        return None
    rule = next((r for r in ctx.exceptions.for_candidate(seen)
                 if r.key in ctx.exceptions_from_tags(answer.tags)), None)  # fmt: skip
    if rule is None:
        return None
    values = {"defect_type": ctx.type_name(seen, language),
              "severity": ctx.severity_name(severity, language),
              "exception": ctx.exception_name(rule.key, language)}  # fmt: skip
    user = ctx.t(language, "C.real_defect_question", **values)
    assistant = ctx.t(language, "C.real_defect_answer", **values,
                      verdict=ctx.verdict(language, seen, severity),
                      tags_clause=ctx.tags_clause(language, answer.tags))  # fmt: skip
    return _example(answer, "C", "C.real_defect", rule.key, language, user, assistant)


def failure_examples(answer: RegionAnswer, ctx: Context, language: str) -> list[Example]:
    case, model = error_of(answer), answer.model
    if case is None:
        return []
    if model is None:
        return [_missed(answer, ctx, language)]
    if case.field == "severity":
        severity = answer.severity
        if severity is None or not ctx.is_severity(severity):
            return []
        return [_wrong_severity(answer, model, severity, ctx, language)]
    if not ctx.is_type(model.defect_type):
        return []
    return [_wrong_type(answer, model, ctx, language)]


def _wrong_type(answer: RegionAnswer, model: ModelAnswer, ctx: Context, language: str) -> Example:
    human, said = answer.defect_type, model.defect_type
    probability = (ctx.t(language, "clause.probability", percent=percent(model.probability))
                   if model.probability is not None else "")  # fmt: skip
    user = ctx.t(
        language, "D.type_question", model=ctx.type_name(said, language), model_key=said,
        probability_clause=probability, human=ctx.type_name(human, language), human_key=human,
        tags_clause=ctx.tags_clause(language, answer.tags),
    )  # fmt: skip
    assistant = ctx.t(
        language, "D.type_answer", human=ctx.type_name(human, language), human_key=human,
        human_description=ctx.type_description(human, language),
        model=ctx.type_name(said, language), model_description=ctx.type_description(said, language),
        evidence_clause=_evidence_clause(answer, model, ctx, language),
        note_clause=ctx.note_clause(language, answer.note),
    )  # fmt: skip
    return _example(answer, "D", "D.type", said, language, user, assistant)


def _evidence_clause(answer: RegionAnswer, model: ModelAnswer, ctx: Context, language: str) -> str:
    """Step 2's part in the miss: an exception the tags say held but that did not fire, or
    one that fired on a real defect (step 1 was right, the conclusion was not)."""
    if answer.defect_type == NORMAL:
        for key in ctx.exceptions_from_tags(answer.tags):
            check = model.check(key)
            if check is not None and not check.fired:
                return ctx.t(language, "clause.exception_missed",
                             exception=ctx.exception_name(key, language),
                             percent=percent(check.probability),
                             threshold=percent(check.threshold),
                             model=ctx.type_name(model.defect_type, language))  # fmt: skip
    elif model.candidate_type == answer.defect_type and model.overturned_by:
        check = model.overturned_by[0]
        return ctx.t(language, "clause.exception_wrong",
                     exception=ctx.exception_name(check.key, language),
                     percent=percent(check.probability),
                     candidate=ctx.type_name(model.candidate_type, language))  # fmt: skip
    return ""


def _wrong_severity(
    answer: RegionAnswer, model: ModelAnswer, human: str, ctx: Context, language: str
) -> Example:
    user = ctx.t(
        language, "D.severity_question", defect_type=ctx.type_name(answer.defect_type, language),
        model_severity=ctx.severity_name(model.severity, language),
        human_severity=ctx.severity_name(human, language),
        tags_clause=ctx.tags_clause(language, answer.tags),
    )  # fmt: skip
    assistant = ctx.t(
        language, "D.severity_answer", human_severity=ctx.severity_name(human, language),
        human_severity_key=human,
        human_severity_description=ctx.severity_description(human, language),
        note_clause=ctx.note_clause(language, answer.note),
    )  # fmt: skip
    return _example(answer, "D", "D.severity", model.severity, language, user, assistant)


def _missed(answer: RegionAnswer, ctx: Context, language: str) -> Example:
    human = answer.defect_type
    severity = ""
    if answer.severity is not None and ctx.is_severity(answer.severity):
        name = ctx.severity_name(answer.severity, language)
        severity = ctx.t(language, "clause.severity", severity=name)
    names = {"human": ctx.type_name(human, language), "human_key": human}
    user = ctx.t(language, "D.missed_question", **names, severity_clause=severity,
                 tags_clause=ctx.tags_clause(language, answer.tags))  # fmt: skip
    assistant = ctx.t(language, "D.missed_answer", **names,
                      human_description=ctx.type_description(human, language),
                      note_clause=ctx.note_clause(language, answer.note))  # fmt: skip
    return _example(answer, "D", "D.missed", "", language, user, assistant)
