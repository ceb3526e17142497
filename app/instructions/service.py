"""Build an instruction snapshot: read the verified answers, word the examples, store it.

load the versioned data (taxonomy, the champion's prompts, exceptions, templates, the
site's decision table, tag names) -> read the verified region answers, frozen test items
left out, and the examples the ML team excluded -> build the manifest (pure), those
examples left out -> write it under its sha256 and record its row.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from app.config import Settings
from app.i18n import catalogues
from app.instructions.examples import Context
from app.instructions.exclusions import excluded_example_ids
from app.instructions.manifest import BuildOptions, build_manifest
from app.instructions.snapshots import save_snapshot
from app.instructions.source import count_frozen_answers, region_answers
from app.instructions.tables import InstructionSnapshot
from app.instructions.wording import DEFAULT_VERSION, load_templates
from app.storage import ObjectStore
from models.exceptions import load_exceptions
from models.prompts import load_prompts
from models.taxonomy import load_taxonomy

TAG_PREFIX = "tag."


class NothingToBuild(ValueError):
    """No verified answer yields an example: the message says why, for a person to read."""


@dataclass(frozen=True)
class BuildResult:
    snapshot: InstructionSnapshot
    manifest: dict[str, Any]
    created: bool  # False: the same data was built before, and this is that snapshot
    frozen_left_out: int  # verified answers of frozen test items, never used


def load_context(settings: Settings, *, template_version: str, prompt_version: str) -> Context:
    """The versioned data the examples are worded from, as the site has configured it."""
    tag_names = {
        language: {key.removeprefix(TAG_PREFIX): text
                   for key, text in catalogue.items() if key.startswith(TAG_PREFIX)}
        for language, catalogue in catalogues().items()
    }  # fmt: skip
    return Context(
        taxonomy=load_taxonomy(),
        prompts=load_prompts(prompt_version),
        exceptions=load_exceptions(),
        templates=load_templates(template_version, settings.instruction_templates_dir),
        table=settings.routing.table,
        tag_names=tag_names,
    )


def champion_prompt_version(session: Session, settings: Settings) -> str:
    """The prompts the serving classifier is scored with: kind A must ask exactly those."""
    from app.learning.classifier import champion_classifier

    champion = champion_classifier(session, settings)
    return champion.prompt_version if champion else settings.prompt_version


def build_snapshot(
    *,
    session: Session,
    store: ObjectStore,
    settings: Settings,
    options: BuildOptions,
    template_version: str = DEFAULT_VERSION,
    prompt_version: str = "",
) -> BuildResult:
    """Build and store a snapshot of the verified answers now (the row is not committed).

    ValueError for versions that do not load; NothingToBuild when no answer yields one.
    """
    prompt_version = prompt_version or champion_prompt_version(session, settings)
    ctx = load_context(settings, template_version=template_version, prompt_version=prompt_version)
    answers = region_answers(session=session)
    frozen = count_frozen_answers(session=session)
    # An example someone excluded on /ml/instructions stays out of every later build.
    manifest = build_manifest(answers, ctx, options, excluded_example_ids(session=session))
    if not manifest["examples"]:
        raise NothingToBuild(
            f"no verified region answers to build from ({len(answers)} outside the frozen test "
            f"set, {frozen} inside it): inspectors' decisions make them"
        )
    snapshot, created = save_snapshot(session=session, store=store, manifest=manifest)
    return BuildResult(snapshot, manifest, created, frozen)
