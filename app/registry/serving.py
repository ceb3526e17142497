"""Which models Serve should run, read from the registry: the adapter between the two.

The Serve process asks `serving_plan` every few seconds (models.serve.runner follows it)
and deploys a change as user_config, so promoting, rolling back or starting an experiment
reaches the replicas without a redeploy. While the registry has no champion and no
experiment runs, Serve keeps the models it was started with (LOUPE_DETECTOR_URI ...).
"""

from __future__ import annotations

import logging
import sys
from typing import Any

from sqlalchemy.orm import Session

from app.db import session_scope
from app.registry.service import get_alias, running_experiment
from app.registry.tables import ModelVersion

log = logging.getLogger(__name__)


def serving_plan(session: Session) -> dict[str, Any] | None:
    """deploy()'s model arguments from the aliases and the running experiment, or None.

    A tuned classifier is its base weights (`uri`, the `*classifier_dir`) plus its LoRA
    adapter (`adapter_uri`, the `*classifier_adapter`, None for plain weights): Serve
    keeps the base loaded and swaps only the adapter when that is all that changed.
    """
    champion = {kind: get_alias(session=session, alias="champion", kind=kind)
                for kind in ("detector", "classifier")}  # fmt: skip
    experiment = running_experiment(session=session)
    if champion["classifier"] is None and champion["detector"] is None and experiment is None:
        return None
    plan: dict[str, Any] = {}
    if champion["detector"] is not None:
        plan["detector_dir"] = champion["detector"].uri
    if champion["classifier"] is not None:
        plan["classifier_dir"] = champion["classifier"].uri
        plan["classifier_adapter"] = champion["classifier"].adapter_uri
        plan["classifier_prompt_version"] = champion["classifier"].prompt_version
        plan["classifier_temperature"] = registered_temperature(champion["classifier"])
    plan.update(challenger_detector_dir=None, challenger_classifier_dir=None,
                challenger_classifier_adapter=None, challenger_prompt_version=None,
                challenger_temperature=None, challenger_share=0.0, experiment="")  # fmt: skip
    if experiment is not None:
        classifier = _version(session, experiment.challenger_classifier_id)
        detector = _version(session, experiment.challenger_detector_id)
        plan.update(
            challenger_detector_dir=detector.uri if detector else None,
            challenger_classifier_dir=classifier.uri if classifier else None,
            challenger_classifier_adapter=classifier.adapter_uri if classifier else None,
            challenger_prompt_version=classifier.prompt_version if classifier else None,
            challenger_temperature=registered_temperature(classifier),
            challenger_share=experiment.challenger_share,
            experiment=experiment.name,
        )
    return plan


def registered_temperature(classifier: ModelVersion | None) -> float | None:
    """The calibration a classifier version was registered with (None: unscaled)."""
    value = (classifier.metrics or {}).get("temperature") if classifier is not None else None
    return float(value) if isinstance(value, int | float) else None


def _version(session: Session, version_id: int | None) -> ModelVersion | None:
    return session.get(ModelVersion, version_id) if version_id is not None else None


def follow_registry() -> dict[str, Any] | None:
    with session_scope() as session:
        return serving_plan(session)


def main(argv: list[str] | None = None) -> None:
    """`python -m app.registry.serving ...`: models.serve's command, following the registry."""
    from models.serve.__main__ import main as serve_main

    serve_main(argv if argv is not None else sys.argv[1:], follow=follow_registry)


if __name__ == "__main__":
    main()
