"""Beat's look at the running A/B experiment: continue, promote or roll back."""

from __future__ import annotations

import logging

from app.config import Settings, get_settings
from app.db import session_scope
from app.policy.ab import AbRules
from app.registry import experiments
from app.task_names import ANALYSE_EXPERIMENT
from workers.celery_app import celery

log = logging.getLogger(__name__)


def ab_rules(settings: Settings) -> AbRules:
    return AbRules(
        alpha=settings.experiment_alpha,
        min_samples_per_arm=settings.experiment_min_samples,
        duration_days=settings.experiment_days,
        audit_rate=settings.audit_rate,
    )


@celery.task(name=ANALYSE_EXPERIMENT)
def analyse_experiment() -> str | None:
    settings = get_settings()
    with session_scope() as session:
        outcome = experiments.analyse(
            session=session,
            rules=ab_rules(settings),
            auto_promote=settings.experiment_auto_promote,
        )
    if outcome is None:
        return None
    log.info("experiment %s: %s (%s)", outcome.experiment_id, outcome.decision, outcome.reason)
    return outcome.decision
