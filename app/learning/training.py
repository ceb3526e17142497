"""One training run, start to end, as the worker executes it.

claim the run -> load its snapshot -> refuse if unfit for the detector -> fetch photos ->
fine-tune the champion detector (augmented, rare classes more) with live progress ->
evaluate candidate and champion on the frozen test set -> gate -> publish -> register an
immutable model version with its metrics, gate, run and snapshot.

Any exception marks the run failed with its error. Nothing here moves an alias, so a run
can never change what serves: a candidate is only a registered version, pass or fail.
"""

from __future__ import annotations

import dataclasses
import logging
import tempfile
from pathlib import Path
from typing import Any

from app.config import Settings, get_settings
from app.db import session_scope, utcnow
from app.learning import dataset, run_steps, runs
from app.learning.progress import ProgressReporter
from app.learning.publish import models_base_uri, publish_model
from app.learning.rules import dataset_rules, gate_rules
from app.learning.snapshot import load_manifest
from app.learning.tables import DatasetSnapshot, TrainingRun
from app.policy.problems import Problem
from app.policy.promotion import gate
from app.registry.service import get_alias
from app.storage import ObjectStore, get_store
from models.loading import model_version, resolve_model_dir
from models.training.augment import AugmentConfig, oversample
from models.training.evaluate import evaluate_detector
from models.training.synthetic import Sample
from models.training.train import train_detector

log = logging.getLogger(__name__)
KIND = "detector"


class NothingToFineTune(RuntimeError):
    """No champion detector in the registry and no LOUPE_DETECTOR_URI."""


def run_training(
    run_id: int, *, settings: Settings | None = None, store: ObjectStore | None = None
) -> str:
    """Execute a queued run; returns its outcome (or why nothing was done)."""
    settings = settings or get_settings()
    store = store or get_store()
    return run_steps.execute(run_id, settings, lambda: _execute(run_id, settings, store))


def _execute(run_id: int, settings: Settings, store: ObjectStore) -> str:
    with session_scope() as session:
        run = session.get(TrainingRun, run_id)
        snapshot = (
            session.get(DatasetSnapshot, run.snapshot_id) if run and run.snapshot_id else None
        )
        if snapshot is None:
            raise LookupError(f"run {run_id} has no dataset snapshot to train on")
        manifest = load_manifest(store=store, snapshot=snapshot)
        try:
            init_uri = _init_uri(session, settings)
        except NothingToFineTune as exc:
            reason = Problem(str(exc), "refusal.nothing_to_fine_tune")
            runs.refuse_run(session=session, run_id=run_id, reasons=[reason])
            return "refused"
    init_dir = resolve_model_dir(init_uri, settings.model_cache)
    problems = dataset.training_problems(
        snapshot.split_counts["train"],
        snapshot.class_counts["train"],
        dataset.detector_classes(init_dir),
        dataset_rules(settings),
    )
    if problems:
        with session_scope() as session:
            runs.refuse_run(session=session, run_id=run_id, reasons=problems)
        return "refused"
    splits = dataset.load_samples(manifest, store, settings.retrain_max_image_side)
    work_root = settings.var_dir / "training"
    work_root.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f"run-{run_id}-", dir=work_root) as work:
        out_dir = Path(work) / f"{KIND}-run{run_id}-{utcnow():%Y%m%d%H%M}"
        training = _train(run_id, init_dir, out_dir, splits["train"], settings)
        run_steps.phase(run_id, "evaluating")
        metrics, gate_result = _evaluate(init_uri, init_dir, out_dir, splits, settings)
        run_steps.phase(run_id, "publishing")
        uri, content_hash = publish_model(out_dir, models_base_uri(settings), KIND)
        run_steps.finish_run(
            run_id, kind=KIND, version=model_version(out_dir), uri=uri,
            content_hash=content_hash, metrics=metrics, gate_result=gate_result,
            run_metrics={**metrics, "training": training}, snapshot_id=snapshot.id,
            prompt_version=None, settings=settings,
        )  # fmt: skip
    return "succeeded"


def _init_uri(session: Any, settings: Settings) -> str:
    """The weights to fine-tune: the champion detector's, else the configured detector."""
    champion = get_alias(session=session, alias="champion", kind=KIND)
    if champion is not None:
        return champion.uri
    if settings.detector_uri:
        return settings.detector_uri
    raise NothingToFineTune(
        "no detector to fine-tune: the registry has no champion detector and "
        "LOUPE_DETECTOR_URI is empty"
    )


def _train(
    run_id: int, init_dir: str, out_dir: Path, samples: list[Sample], settings: Settings
) -> dict[str, Any]:
    augment = AugmentConfig()  # oversample lowers a rare-class target many classes make unreachable
    run_steps.phase(run_id, "training")
    reporter = ProgressReporter(
        write=lambda **values: run_steps.progress(run_id, **values),
        every_s=settings.retrain_progress_every_s,
        pool_size=len(oversample(samples, augment.min_share)),
        batch_size=settings.retrain_batch_size,
    )
    result = train_detector(
        init_dir=init_dir,
        out_dir=out_dir,
        samples=samples,
        steps=settings.retrain_steps,
        batch_size=settings.retrain_batch_size,
        lr=settings.retrain_lr,
        warmup=settings.retrain_warmup_steps,
        seed=settings.retrain_seed,
        augment=augment,
        on_progress=reporter,
        device=settings.retrain_device,
    )
    return {
        "steps": len(result.losses),
        "first_loss": result.losses[0],
        "final_loss": result.losses[-1],
        "loss_terms": result.loss_terms,
        "pool": result.samples,
        "train_samples": len(samples),
        "epochs": result.epochs,
        "seconds": round(result.seconds, 1),
    }


def _evaluate(
    init_uri: str,
    init_dir: str,
    candidate_dir: Path,
    splits: dict[str, list[Sample]],
    settings: Settings,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The candidate's metrics and its gate result.

    The regression check compares with the model it was fine-tuned from, measured now on
    the same items: a champion's figures from an older, smaller test set would not be a
    fair comparison.
    """
    split, samples = dataset.evaluation_split(splits)
    if split is None:
        note = "no test or validation samples to evaluate on"
        metrics: dict[str, Any] = {"evaluated_on": None, "note": note}
        baseline: dict[str, Any] = {}
    else:
        metrics = _measure(candidate_dir, samples, settings)
        baseline = _measure(init_dir, samples, settings)
        metrics["evaluated_on"] = split
        if split == "val":
            metrics["note"] = (
                "the frozen test set is empty: measured on the validation split, which "
                "is never trained on but was not frozen (loupe retrain freeze-test)"
            )
    metrics["baseline"] = {"uri": init_uri, "version": model_version(init_dir), **baseline}
    result = gate(metrics, baseline or None, gate_rules(settings))
    return metrics, result.as_dict()


def _measure(model_dir: str | Path, samples: list[Sample], settings: Settings) -> dict[str, Any]:
    measured = evaluate_detector(
        model_dir,
        samples,
        score_threshold=settings.routing.thresholds.detector,
        device=settings.retrain_device,
    )
    values = measured.to_dict()
    values["per_class"] = {
        name: dataclasses.asdict(m) for name, m in sorted(measured.per_class.items())
    }
    values["iou_thresholds"] = list(measured.iou_thresholds)
    return values
