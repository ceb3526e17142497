"""The worker's side of any run: its phases, progress and heartbeat, and how it ends.

A detector run (app.learning.training) and a classifier run (app.learning.classifier)
end the same way: the candidate is registered as an immutable version with its metrics
and gate in the run's own transaction, and a version that passed its gate becomes the
challenger. Only a calibration of the champion moves the champion (`_calibrate` says
why); no other run changes what serves without an experiment.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from app.config import Settings
from app.db import session_scope, utcnow
from app.learning import runs
from app.learning.progress import Heartbeat, RunAbandoned
from app.registry.experiments import (
    NothingToDo,
    move_alias,
    register_configured_champions,
    stage_challenger,
)
from app.registry.service import register_model_version, running_experiment

log = logging.getLogger(__name__)


def execute(run_id: int, settings: Settings, body: Callable[[], str]) -> str:
    """Claim a queued run and do its work with a heartbeat; returns the outcome.

    Any exception marks the run failed with its error (nothing was registered, so serving
    is untouched); a run the watchdog took away is left as the watchdog left it.
    """
    with session_scope() as session:
        if not runs.claim_run(session=session, run_id=run_id):
            return "not queued"
    try:
        with Heartbeat(lambda: beat(run_id), settings.retrain_heartbeat_every_s):
            return body()
    except RunAbandoned as exc:
        log.warning("run %s: %s", run_id, exc)
        return "abandoned"
    except Exception as exc:
        log.exception("run %s failed", run_id)
        with session_scope() as session:
            runs.fail_run(session=session, run_id=run_id, error=f"{type(exc).__name__}: {exc}")
        return "failed"


def finish_run(
    run_id: int,
    *,
    kind: str,
    version: str,
    uri: str,
    content_hash: str,
    metrics: dict[str, Any],
    gate_result: dict[str, Any],
    run_metrics: dict[str, Any],
    snapshot_id: int,
    prompt_version: str | None,
    settings: Settings,
    calibration: bool = False,
    adapter_uri: str | None = None,
) -> None:
    """Register the version and finish the run in one transaction, if the run is still ours;
    a version that passed its gate becomes the challenger in the same transaction (a
    calibration of the champion becomes the champion)."""
    with session_scope() as session:
        run = runs.lock_running(session=session, run_id=run_id)
        if run is None:
            raise RunAbandoned(f"run {run_id} stopped being ours before it could register")
        row = register_model_version(
            session=session, kind=kind, version=version, uri=uri, content_hash=content_hash,
            metrics=metrics, training_run_id=run_id, snapshot_id=snapshot_id,
            gate=gate_result, prompt_version=prompt_version, adapter_uri=adapter_uri,
        )  # fmt: skip
        now = utcnow()
        run.status, run.phase, run.finished_at, run.heartbeat_at = "succeeded", "done", now, now
        run.metrics = run_metrics
        run.gate, run.model_version_id = gate_result, row.id
        if gate_result.get("passed") and calibration:
            _calibrate(session, row, settings, actor_id=run.triggered_by_id)
        elif gate_result.get("passed") and settings.retrain_auto_stage:
            _stage(session, row, settings)


def _calibrate(session: Any, calibrated: Any, settings: Settings, actor_id: int | None) -> None:
    """The champion's calibration replaces it at once (`loupe models rollback` undoes it).

    It gives the same answers as the champion, so an A/B test of agreement with the
    inspectors could never show it better and would always roll it back; its gate has
    checked, on crops it was not fitted on, that it states its certainty better. An
    experiment that runs keeps its champion: the calibration then stays registered only.
    """
    if running_experiment(session=session) is not None:
        log.info("%s passed its gate; an experiment runs, so it is not applied",
                 calibrated.version)  # fmt: skip
        return
    _register_configured(session, settings)
    temperature = calibrated.metrics.get("temperature")
    move_alias(session=session, alias="champion", version=calibrated, actor_id=actor_id,
               why=f"calibrated: temperature {temperature:.3f}")  # fmt: skip


def _stage(session: Any, candidate: Any, settings: Settings) -> None:
    """A candidate that passed its gate serves a share of items as challenger, unless an
    experiment runs already (it stays registered; `loupe models stage` can stage it)."""
    if running_experiment(session=session) is not None:
        log.info("%s passed its gate; an experiment runs, so it is not staged", candidate.version)
        return
    _register_configured(session, settings)
    try:
        stage_challenger(
            session=session, candidate=candidate, share=settings.experiment_share, actor_id=None
        )
    except NothingToDo as exc:
        log.warning("%s passed its gate but was not staged: %s", candidate.version, exc)


def _register_configured(session: Any, settings: Settings) -> None:
    """What serves from configuration enters the registry, so that an alias can move
    away from it and back (rollback)."""
    register_configured_champions(
        session=session, detector_uri=settings.detector_uri,
        classifier_uri=settings.classifier_uri, cache_dir=settings.model_cache_dir,
        prompt_version=settings.prompt_version,
    )  # fmt: skip


def progress(run_id: int, **values: Any) -> bool:
    with session_scope() as session:
        return runs.report_progress(session=session, run_id=run_id, **values)


def phase(run_id: int, name: str) -> None:
    with session_scope() as session:
        if not runs.set_phase(session=session, run_id=run_id, phase=name):
            raise RunAbandoned(f"run {run_id} is no longer running")


def beat(run_id: int) -> None:
    with session_scope() as session:
        runs.heartbeat(session=session, run_id=run_id)
