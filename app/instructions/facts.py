"""Kind A, fact verification: the production questions, answered as the inspector did.

The type and severity questions and step 2's exception questions are the prompts'
own (models.two_step.Questionnaire), word for word, and the answer is the allowed answer
the scorer compares (a taxonomy key, a severity key, "yes" or "no"), so tuning lifts
exactly the probability that routing reads. The yes/no questions ("does this region show
a hole?") come from the templates.

Exception answers are only as sure as the inspector said: a real defect means no
exception held ("no" to each); a region called "not a defect" gets "yes" only for the
exceptions its tags name (a "shadow" tag: shadow or lighting), since without a tag nobody
said why it was not a defect.
"""

from __future__ import annotations

from app.instructions.answers import RegionAnswer
from app.instructions.examples import Context, Example
from models.exceptions import NO, YES
from models.taxonomy import NORMAL
from models.two_step import SEVERITY


def fact_examples(answer: RegionAnswer, ctx: Context, language: str) -> list[Example]:
    questions = ctx.questionnaire(language)

    def example(form: str, subject: str, user: str, assistant: str) -> Example:
        return Example(answer.crop_id, "A", form, subject, language, answer.defect_type,
                       user, assistant)  # fmt: skip

    human = answer.defect_type
    examples = [example("A.type", "", questions.step1().text, human)]
    if human != NORMAL:
        severity = answer.severity if ctx.is_severity(answer.severity) else None
        for key, question in questions.step2(human):
            if key != SEVERITY:
                examples.append(example("A.exception", key, question.text, NO))
            elif severity is not None:
                examples.append(example("A.severity", "", question.text, severity))
    elif answer.model is not None and answer.model.candidate_type != NORMAL:
        # Asked as production asks it: about step 1's candidate.
        held = ctx.exceptions_from_tags(answer.tags)
        candidate = answer.model.candidate_type
        asked = questions.step2(candidate)[1:] if ctx.is_type(candidate) else []
        for key, question in asked:
            if key in held:
                examples.append(example("A.exception", key, question.text, YES))
    for subject, reply in _is_type_answers(answer, ctx):
        name = ctx.type_name(subject, language)
        user = ctx.t(language, "A.is_type", defect_type=name)
        examples.append(example("A.is_type", subject, user, reply))
    return examples


def _is_type_answers(answer: RegionAnswer, ctx: Context) -> list[tuple[str, str]]:
    """(type, yes/no): yes for the inspector's defect type, no for each type the model
    gave that the inspector did not."""
    human = answer.defect_type
    replies = [(human, YES)] if human != NORMAL else []
    if answer.model is not None:
        for said in dict.fromkeys((answer.model.defect_type, answer.model.candidate_type)):
            if said not in (human, NORMAL) and ctx.is_type(said):
                replies.append((said, NO))
    return replies
