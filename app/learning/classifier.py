"""A classifier candidate: weights and prompts, judged on verified crops like a new detector.

A prompt or few-shot change is a change of model: it is evaluated on the verified crops
(app.learning.crops) beside the champion classifier, gated on the field report's VLM
criteria (accuracy and agreement with the inspectors, and no regression), registered as
an immutable version (weights URI, prompt version, a hash of both) and, if it passed,
staged as the challenger for an A/B experiment. Serve gives each arm its own prompts.

start -> (worker) claim -> load crops -> refuse if the candidate is the champion ->
evaluate candidate, then champion, on the same crops -> gate -> register -> stage.

Calibrating the champion is the one candidate that is the champion: the same weights and
prompts, measured once as they serve (at the temperature in use), with a temperature
fitted on top. It must lower the calibration error to pass, and then it is the champion
at once: its answers are the champion's, so an A/B test of agreement could not tell them
apart. Nothing else could calibrate a champion that came from configuration.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from app.config import Settings, get_settings
from app.db import session_scope
from app.learning import run_steps, runs
from app.learning.crops import evaluated_on, load_crops
from app.learning.progress import RunAbandoned
from app.learning.rules import classifier_gate_rules
from app.learning.snapshot import load_manifest
from app.learning.tables import DatasetSnapshot, TrainingRun
from app.policy.problems import Problem
from app.policy.promotion import GateResult, gate
from app.registry.experiments import content_hash
from app.registry.service import get_alias, running_experiment
from app.registry.serving import registered_temperature
from app.storage import ObjectStore, get_store

log = logging.getLogger(__name__)
KIND = "classifier"
MAX_URI = 1000
# How a few-shot example names the verified crop it was cut from (app.learning.fewshot).
EXAMPLE_SOURCE = "decision_region:"


class BadCandidate(ValueError):
    """The candidate cannot be evaluated: the message says why, for a person to read.

    `reason` and `params` name the same message in the UI catalogues
    (`models.bad_candidate.<reason>`), for a page in the reader's language.
    """

    def __init__(self, reason: str, message: str, **params: object) -> None:
        super().__init__(message)
        self.reason, self.params = reason, params


@dataclass(frozen=True)
class Candidate:
    uri: str
    prompt_version: str
    calibrate: bool = False  # the champion as it is, for its temperature only
    # A tuned classifier's LoRA adapter on the weights at `uri` (app.learning.tuning).
    adapter_uri: str = ""

    def as_dict(self) -> dict[str, Any]:
        values: dict[str, Any] = {"uri": self.uri, "prompt_version": self.prompt_version}
        if self.adapter_uri:
            values["adapter_uri"] = self.adapter_uri
        return values | {"calibrate": True} if self.calibrate else values


def champion_classifier(session: Session, settings: Settings) -> Candidate | None:
    """What serves now: the registry's champion, else the configured classifier."""
    champion = get_alias(session=session, alias="champion", kind=KIND)
    if champion is not None:
        return Candidate(champion.uri, champion.prompt_version or settings.prompt_version,
                         adapter_uri=champion.adapter_uri or "")  # fmt: skip
    if settings.classifier_uri:
        return Candidate(settings.classifier_uri, settings.prompt_version)
    return None


def candidate_for(
    champion: Candidate | None, settings: Settings, *, uri: str = "", prompt_version: str = "",
    calibrate: bool = False,
) -> Candidate:  # fmt: skip
    """The candidate a person asked for; what they leave empty is the champion's."""
    from models.prompts import load_prompts

    uri, prompt_version = uri.strip(), prompt_version.strip()
    if calibrate and (uri or prompt_version):
        raise BadCandidate(
            "calibrate_alone",
            "calibrating takes the champion as it serves: leave the weights and prompts empty",
        )
    if len(uri) > MAX_URI:
        raise BadCandidate(
            "uri_too_long", f"the weights' URI is longer than {MAX_URI} characters", max=MAX_URI
        )
    if not uri and champion is None:
        raise BadCandidate(
            "no_champion",
            "give the candidate's weights: there is no champion classifier to start from",
        )
    if calibrate:
        assert champion is not None  # checked above: calibrating names no weights
        return replace(champion, calibrate=True)
    # New prompts on the champion keep its adapter; other weights come without one.
    adapter_uri = champion.adapter_uri if champion and not uri else ""
    uri = uri or champion.uri  # type: ignore[union-attr]
    prompt_version = prompt_version or (champion.prompt_version if champion else "")
    prompt_version = prompt_version or settings.prompt_version
    try:
        load_prompts(prompt_version)
    except (ValueError, KeyError) as exc:
        raise BadCandidate(
            "prompts", f"prompt version {prompt_version!r} cannot be used: {exc}",
            version=prompt_version, error=str(exc),
        ) from None  # fmt: skip
    return Candidate(uri, prompt_version, adapter_uri=adapter_uri)


def start_classifier_run(
    *,
    session: Session,
    store: ObjectStore,
    settings: Settings,
    trigger: str,
    uri: str = "",
    prompt_version: str = "",
    calibrate: bool = False,
    user_id: int | None = None,
) -> TrainingRun:
    """Check the candidate and queue its evaluation (not committed). BadCandidate or
    runs.RunInProgress when it cannot start."""
    champion = champion_classifier(session, settings)
    candidate = candidate_for(
        champion, settings, uri=uri, prompt_version=prompt_version, calibrate=calibrate
    )
    if calibrate and running_experiment(session=session) is not None:
        raise BadCandidate(
            "experiment_running",
            "an experiment is running: promote or end it before calibrating the champion",
        )
    # A crop a prompt shows as an example would flatter it: neither side is judged on one.
    shown = example_crops(candidate.prompt_version)
    if champion is not None:
        shown |= example_crops(champion.prompt_version)
    # A tuned classifier has trained on every verified crop but the frozen test set's.
    tuned = bool(candidate.adapter_uri or (champion and champion.adapter_uri))
    return runs.start_classifier_run(
        session=session, store=store, settings=settings, candidate=candidate.as_dict(),
        trigger=trigger, user_id=user_id, exclude_crops=shown, frozen_only=tuned,
    )  # fmt: skip


def example_crops(prompt_version: str) -> set[int]:
    """The verified crops (decision_region ids) a prompt version shows as few-shot examples."""
    from models.prompts import load_prompts

    return {
        int(e.source.removeprefix(EXAMPLE_SOURCE))
        for e in load_prompts(prompt_version).examples
        if e.source.startswith(EXAMPLE_SOURCE)
    }


def run_classifier_evaluation(
    run_id: int, *, settings: Settings | None = None, store: ObjectStore | None = None
) -> str:
    """Execute a queued classifier run; returns its outcome (or why nothing was done)."""
    settings = settings or get_settings()
    store = store or get_store()
    return run_steps.execute(run_id, settings, lambda: _execute(run_id, settings, store))


@dataclass(frozen=True)
class Weights:
    """A candidate's files on this machine: the base directory, the adapter directory (a
    tuned classifier), the version serving reports for them, and what the registry pins."""

    model_dir: Path
    adapter_dir: Path | None
    version: str
    content_hash: str


def local_weights(candidate: Candidate, settings: Settings) -> Weights:
    """Fetch (or find) the candidate's weights and adapter, checked against their hashes."""
    from models.loading import model_version, resolve_model_dir
    from models.tuning.adapter import read_manifest, resolve_adapter_dir, tuned_version

    model_dir = Path(resolve_model_dir(candidate.uri, settings.model_cache))
    pinned = content_hash(model_dir, candidate.uri, candidate.prompt_version)
    if not candidate.adapter_uri:
        return Weights(model_dir, None, model_version(model_dir), pinned)
    adapter_dir = resolve_adapter_dir(candidate.adapter_uri, settings.model_cache)
    adapter_hash = read_manifest(adapter_dir)["content_hash"]
    both = hashlib.sha256(f"{pinned}\0{adapter_hash}".encode()).hexdigest()
    return Weights(model_dir, adapter_dir, tuned_version(model_version(model_dir), adapter_hash),
                   both)  # fmt: skip


def _execute(run_id: int, settings: Settings, store: ObjectStore) -> str:
    with session_scope() as session:
        run = session.get(TrainingRun, run_id)
        if run is None or run.kind != KIND or not run.candidate:
            raise LookupError(f"run {run_id} is not a classifier run with a candidate")
        snapshot = session.get(DatasetSnapshot, run.snapshot_id) if run.snapshot_id else None
        if snapshot is None:
            raise LookupError(f"run {run_id} has no crops snapshot to evaluate on")
        manifest = load_manifest(store=store, snapshot=snapshot)
        candidate = Candidate(**run.candidate)
        champion = champion_classifier(session, settings)
        served = registered_temperature(get_alias(session=session, alias="champion", kind=KIND))
    ours = local_weights(candidate, settings)
    theirs = local_weights(champion, settings) if champion else None
    same = (
        theirs is not None and champion is not None
        and ours.version == theirs.version
        and candidate.prompt_version == champion.prompt_version
    )  # fmt: skip
    refusal = _refusal(candidate, same, ours.version)
    if refusal:
        with session_scope() as session:
            runs.refuse_run(session=session, run_id=run_id, reasons=[refusal])
        return "refused"
    run_steps.phase(run_id, "loading")
    crops = load_crops(manifest, store)
    compared = theirs is not None and not candidate.calibrate
    progress = Progress(run_id, len(crops) * (2 if compared else 1),
                         settings.retrain_progress_every_s)  # fmt: skip
    # A calibration is measured as the champion serves, so its fit scales on top of that.
    temperature = (served or 1.0) if candidate.calibrate else 1.0
    metrics = measure(ours, candidate.prompt_version, crops, settings, progress, 0,
                      temperature=temperature)  # fmt: skip
    metrics["evaluated_on"] = evaluated_on(manifest)
    baseline: dict[str, Any] = {}
    if candidate.calibrate:
        baseline = {k: v for k, v in metrics.items() if k != "evaluated_on"}  # the same model
        metrics.update(served_temperature=temperature,
                       temperature=temperature * metrics["temperature"])  # fmt: skip
    elif compared:
        # The regression check's baseline: the champion on the same crops, measured now.
        baseline = measure(theirs, champion.prompt_version, crops, settings, progress,  # type: ignore[arg-type, union-attr]
                           len(crops))  # fmt: skip
    if baseline and champion is not None:
        baseline.update(uri=champion.uri, prompt_version=champion.prompt_version)
    metrics["baseline"] = baseline
    result = gate(metrics, baseline or None, classifier_gate_rules(settings))
    if candidate.calibrate:
        ok, line = calibration_check(metrics)
        result = GateResult(result.passed and ok, [*result.reasons, line])
    gate_result = result.as_dict()
    run_steps.phase(run_id, "registering")
    run_steps.finish_run(
        run_id, kind=KIND, version=f"{ours.version}+{candidate.prompt_version}.r{run_id}",
        uri=candidate.uri, adapter_uri=candidate.adapter_uri or None,
        content_hash=ours.content_hash,
        metrics=metrics, gate_result=gate_result,
        run_metrics={**metrics, "candidate": candidate.as_dict()}, snapshot_id=snapshot.id,
        prompt_version=candidate.prompt_version, settings=settings,
        calibration=candidate.calibrate,
    )  # fmt: skip
    return "succeeded"


def _refusal(candidate: Candidate, same: bool, weights: str) -> Problem | None:
    """Why the candidate cannot be evaluated against this champion (None if it can)."""
    prompts = candidate.prompt_version
    if same and not candidate.calibrate:
        return Problem(
            f"the candidate is the champion: same weights ({weights}) and prompts "
            f"({prompts}); change the weights or the prompts, or calibrate the champion "
            "(`loupe retrain classifier --calibrate`)",
            "refusal.candidate_is_champion", weights=weights, prompts=prompts,
        )  # fmt: skip
    if candidate.calibrate and not same:
        return Problem("the champion changed after its calibration was asked for; ask again",
                       "refusal.champion_changed")  # fmt: skip
    return None


def calibration_check(metrics: dict[str, Any]) -> tuple[bool, str]:
    """A calibration passes if the fitted temperature lowers the calibration error
    (cross-fitted, so a fit cannot pass by memorising the crops)."""
    served, calibrated = metrics["calibration_error"], metrics["calibrated_error"]
    ok = calibrated < served
    return ok, (
        f"{'pass' if ok else 'FAIL'}: calibration error {calibrated:.4f} at temperature "
        f"{metrics['temperature']:.3f} vs {served:.4f} as served "
        f"(temperature {metrics['served_temperature']:.3f})"
    )


def measure(
    weights: Weights,
    prompt_version: str,
    crops: list[Any],
    settings: Settings,
    progress: Progress,
    offset: int,
    temperature: float = 1.0,
) -> dict[str, Any]:
    """The production classifier (same class, same loading, its adapter attached as Serve
    attaches it) on every crop."""
    from models.classifier import QwenClassifier
    from models.prompts import load_prompts
    from models.training.evaluate_classifier import evaluate_classifier
    from models.tuning import load_tuned_classifier

    options: dict[str, Any] = {
        "language": settings.classifier_language, "prompts": load_prompts(prompt_version),
        "device": settings.retrain_device, "temperature": temperature,
    }  # fmt: skip
    if weights.adapter_dir is not None:
        classifier = load_tuned_classifier(weights.model_dir, weights.adapter_dir, **options)
    else:
        classifier = QwenClassifier.load(weights.model_dir, **options)
    measured = evaluate_classifier(
        classifier.classify, crops, batch_size=settings.classifier_eval_batch_size,
        on_batch=lambda done, _total: progress(offset + done),
    )  # fmt: skip
    values = measured.to_dict()
    values["version"] = classifier.version
    return values


class Progress:
    """Crops evaluated so far, written at most every `every_s` (and at the end)."""

    def __init__(self, run_id: int, total: int, every_s: float,
                 clock: Callable[[], float] = time.monotonic) -> None:  # fmt: skip
        self.run_id, self.total, self.every_s, self.clock = run_id, total, every_s, clock
        self.started = clock()
        self.last: float | None = None

    def __call__(self, done: int) -> None:
        now = self.clock()
        if self.last is not None and now - self.last < self.every_s and done < self.total:
            return
        self.last = now
        rate = done / max(now - self.started, 1e-9)
        eta = (self.total - done) / rate if rate else 0.0
        alive = run_steps.progress(self.run_id, step=done, total_steps=self.total, loss=None,
                                   eta_s=eta, epoch=None, phase="evaluating")  # fmt: skip
        if not alive:
            raise RunAbandoned(f"the run stopped being ours after {done} crops")
