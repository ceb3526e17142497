"""Instruction tuning of the classifier as a run: a LoRA adapter, judged like any candidate.

start (a person, the command line or beat) -> take the training slot -> build the
instruction snapshot of the verified answers now (frozen test items left out; the same
data finds the same snapshot) -> snapshot the frozen test set's crops to judge on ->
refuse at once with too few examples or test crops -> record the snapshot's items as
trained on, so that no later freeze can pick them -> queue (through the outbox).

worker: claim -> export the examples with their crops as `loupe instructions export`
writes them -> tune an adapter on the champion's base weights (models.tuning) -> publish
it beside the models -> judge base + adapter, and the champion as it serves, on the same
frozen crops -> gate (accuracy, agreement, false positives per 1,000 normal crops, the
regression check) -> register the version (base URI + adapter URI, one hash over both)
-> a passing one becomes the challenger, as any candidate does (app.learning.run_steps).

The adapter is always tuned from the base weights, never on top of the champion's own
adapter: each tuning sees every verified answer up to now, so it replaces the last one.
"""

from __future__ import annotations

import gc
import tempfile
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from app.config import Settings, get_settings
from app.db import session_scope
from app.instructions.kinds import KINDS
from app.instructions.manifest import BuildOptions
from app.instructions.snapshots import load_manifest as load_instructions
from app.instructions.tables import InstructionSnapshot
from app.learning import run_steps, runs
from app.learning.classifier import (
    KIND,
    BadCandidate,
    Candidate,
    Progress,
    champion_classifier,
    local_weights,
    measure,
)
from app.learning.crops import evaluated_on, load_crops, take_crops_snapshot
from app.learning.progress import ProgressReporter
from app.learning.publish import models_base_uri, publish_model
from app.learning.rules import classifier_gate_rules
from app.learning.snapshot import load_manifest
from app.learning.tables import DatasetSnapshot, TrainedItem, TrainingRun
from app.outbox import Outbox
from app.policy.problems import Problem
from app.policy.promotion import gate
from app.storage import ObjectStore, get_store
from app.task_names import TUNE_CLASSIFIER

ADAPTERS = "adapters"  # where adapters are published, beside the detector's and classifier's


def tune_kinds(text: str) -> tuple[str, ...]:
    """ "A,B,C,D" (any order, spaces, case) as kinds; BadCandidate for anything else."""
    kinds = tuple(dict.fromkeys(k.strip().upper() for k in text.split(",") if k.strip()))
    unknown = [k for k in kinds if k not in KINDS]
    if unknown or not kinds:
        raise BadCandidate(
            "kinds", f"instruction kinds are {', '.join(KINDS)}; got {text!r}",
            kinds=", ".join(KINDS), given=text,
        )  # fmt: skip
    return kinds


def start_tuning_run(
    *,
    session: Session,
    store: ObjectStore,
    settings: Settings,
    trigger: str,
    user_id: int | None = None,
    kinds: tuple[str, ...] | None = None,
    now: datetime | None = None,
) -> TrainingRun:
    """Queue an instruction-tuning run on the champion classifier (not committed).

    BadCandidate without a champion classifier or with unknown kinds; runs.RunInProgress
    when a run holds the slot. Too few examples or frozen test crops give a run refused at
    once, with its reasons.
    """
    from app.instructions.service import NothingToBuild, build_snapshot

    kinds = kinds or tune_kinds(settings.tune_kinds)
    options = BuildOptions(kinds=tune_kinds(",".join(kinds)))
    champion = champion_classifier(session, settings)
    if champion is None:
        raise BadCandidate(
            "no_champion_to_tune", "there is no champion classifier to tune: configure "
            "LOUPE_CLASSIFIER_URI or register one",
        )  # fmt: skip
    now = runs.take_slot(session, trigger, now)
    problems: list[str] = []
    snapshot: InstructionSnapshot | None = None
    manifest: dict[str, Any] = {"examples": [], "crops": []}
    try:
        built = build_snapshot(session=session, store=store, settings=settings, options=options,
                               prompt_version=champion.prompt_version)  # fmt: skip
        snapshot, manifest = built.snapshot, built.manifest
    except NothingToBuild as exc:
        problems.append(Problem(str(exc), "refusal.nothing_to_tune", detail=str(exc)))
    examples, minimum = len(manifest["examples"]), settings.tune_min_examples
    if snapshot is not None and examples < minimum:
        shown = ",".join(options.kinds)
        problems.append(Problem(
            f"only {examples} instruction examples of kinds {shown} to tune on; at least "
            f"{minimum} are needed (LOUPE_TUNE_MIN_EXAMPLES)",
            "refusal.too_few_examples", count=examples, minimum=minimum, kinds=shown,
        ))  # fmt: skip
    limit = settings.classifier_eval_max_crops
    crops = take_crops_snapshot(session=session, store=store, limit=limit, frozen_only=True)
    if crops.samples < settings.tune_min_test_crops:
        problems.append(runs.too_few_test_crops(crops.samples, settings.tune_min_test_crops))
    candidate: dict[str, Any] = {
        "uri": champion.uri,
        "prompt_version": champion.prompt_version,
        "tune": {"snapshot": snapshot.id if snapshot else None, "kinds": list(options.kinds),
                 "examples": examples},
    }  # fmt: skip
    run = runs.new_run(session, KIND, candidate, crops.id, trigger, user_id, problems, now)
    if not problems and snapshot is not None:
        reserve_for_tuning(session=session, snapshot=snapshot, manifest=manifest)
        session.add(Outbox(task=TUNE_CLASSIFIER, payload={"run_id": run.id}, created_at=now))
    return run


def reserve_for_tuning(
    *, session: Session, snapshot: InstructionSnapshot, manifest: dict[str, Any]
) -> int:
    """Record the items whose answers the run will tune on as trained on (the first
    snapshot that did stays recorded); returns how many were new to the record."""
    items = sorted({crop["inspection_id"] for crop in manifest["crops"]})
    if not items:
        return 0
    rows = [{"inspection_id": uuid.UUID(item), "instruction_snapshot_id": snapshot.id}
            for item in items]  # fmt: skip
    added = session.scalars(
        insert(TrainedItem)
        .on_conflict_do_nothing(index_elements=["inspection_id"])
        .returning(TrainedItem.inspection_id),
        rows,
    ).all()
    return len(added)


def is_tuning(run: TrainingRun) -> bool:
    return run.kind == KIND and bool((run.candidate or {}).get("tune"))


def run_tuning(
    run_id: int, *, settings: Settings | None = None, store: ObjectStore | None = None
) -> str:
    """Execute a queued tuning run; returns its outcome (or why nothing was done)."""
    settings = settings or get_settings()
    store = store or get_store()
    return run_steps.execute(run_id, settings, lambda: _execute(run_id, settings, store))


def _execute(run_id: int, settings: Settings, store: ObjectStore) -> str:
    with session_scope() as session:
        run = session.get(TrainingRun, run_id)
        if run is None or not is_tuning(run):
            raise LookupError(f"run {run_id} is not a classifier tuning run")
        assert run.candidate is not None  # is_tuning
        tune = run.candidate["tune"]
        instructions = session.get(InstructionSnapshot, tune["snapshot"])
        crops_snapshot = session.get(DatasetSnapshot, run.snapshot_id) if run.snapshot_id else None
        if instructions is None or crops_snapshot is None:
            raise LookupError(f"run {run_id} lacks its instruction or crops snapshot")
        examples = load_instructions(store=store, snapshot=instructions)
        crops_manifest = load_manifest(store=store, snapshot=crops_snapshot)
        base = Candidate(run.candidate["uri"], run.candidate["prompt_version"])
        champion = champion_classifier(session, settings)
    if champion is None or (champion.uri, champion.prompt_version) != (
        base.uri,
        base.prompt_version,
    ):
        serving = f"{champion.uri} {champion.prompt_version}" if champion else "none"
        queued = f"{base.uri} {base.prompt_version}"
        with session_scope() as session:
            runs.refuse_run(session=session, run_id=run_id, reasons=[Problem(
                f"the champion classifier's weights changed after the tuning run was queued "
                f"(tuning {queued}, serving {serving}); start it again",
                "refusal.champion_changed_base", queued=queued, serving=serving,
            )])  # fmt: skip
        return "refused"
    base_weights = local_weights(base, settings)
    work_root = settings.var_dir / "training"
    work_root.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f"run-{run_id}-", dir=work_root) as work:
        adapter, tuning = _tune(run_id, Path(work), base_weights.model_dir, examples,
                                instructions.id, tuple(tune["kinds"]), settings, store)  # fmt: skip
        run_steps.phase(run_id, "publishing")
        adapter_uri, _ = publish_model(adapter, models_base_uri(settings), ADAPTERS)
    candidate = Candidate(base.uri, base.prompt_version, adapter_uri=adapter_uri)
    # Judged as Serve will run it: base and adapter loaded back from where they were published.
    ours, theirs = local_weights(candidate, settings), local_weights(champion, settings)
    run_steps.phase(run_id, "loading")
    crops = load_crops(crops_manifest, store)
    progress = Progress(run_id, 2 * len(crops), settings.retrain_progress_every_s)
    metrics = measure(ours, candidate.prompt_version, crops, settings, progress, 0)
    metrics["evaluated_on"] = evaluated_on(crops_manifest)
    baseline = measure(theirs, champion.prompt_version, crops, settings, progress, len(crops))
    baseline.update(champion.as_dict())
    metrics["baseline"] = baseline
    gate_result = gate(metrics, baseline, classifier_gate_rules(settings)).as_dict()
    run_steps.phase(run_id, "registering")
    run_steps.finish_run(
        run_id, kind=KIND, version=f"{ours.version}+{candidate.prompt_version}.r{run_id}",
        uri=candidate.uri, adapter_uri=adapter_uri, content_hash=ours.content_hash,
        metrics=metrics, gate_result=gate_result,
        run_metrics={**metrics, "candidate": candidate.as_dict(), "tuning": tuning},
        snapshot_id=crops_snapshot.id, prompt_version=candidate.prompt_version,
        settings=settings,
    )  # fmt: skip
    return "succeeded"


def _tune(
    run_id: int, work: Path, base_dir: Path, examples: dict[str, Any], snapshot: str,
    kinds: tuple[str, ...], settings: Settings, store: ObjectStore,
) -> tuple[Path, dict[str, Any]]:  # fmt: skip
    """Export, tune and save the adapter in `work`; (its directory, what the run records).

    The directory is named as serving will name the version (`<base>+lora-<hash>`), which
    publishing makes the last part of its URI.
    """
    from app.instructions.export import export_jsonl
    from models.tuning import TuningOptions, tune_classifier
    from models.tuning.data import read_jsonl

    run_steps.phase(run_id, "exporting")
    exported = export_jsonl(manifest=examples, snapshot=snapshot, store=store,
                            out=work / "train.jsonl")  # fmt: skip
    records = read_jsonl(exported.path)
    options = TuningOptions(
        rank=settings.tune_rank, alpha=2 * settings.tune_rank, steps=settings.tune_steps,
        learning_rate=settings.tune_lr, batch_size=settings.tune_batch_size,
        seed=settings.tune_seed, kinds=kinds, device=settings.retrain_device,
    )  # fmt: skip
    run_steps.phase(run_id, "training")
    reporter = ProgressReporter(
        write=lambda **values: run_steps.progress(run_id, **values),
        every_s=settings.retrain_progress_every_s,
        pool_size=len(records),
        batch_size=options.batch_size,
    )
    tuned, manifest = tune_classifier(
        base_dir, records, images_root=exported.path.parent, out_dir=work / "adapter",
        options=options, snapshot=snapshot, on_progress=reporter,
    )  # fmt: skip
    del tuned  # the model in memory: judging loads base and adapter back, as Serve does
    gc.collect()
    named = work / str(manifest["version"])
    (work / "adapter").rename(named)
    losses = manifest["losses"]
    return named, {
        "snapshot": snapshot,
        "kinds": manifest["kinds"],
        "examples": manifest["examples"],
        "lines": exported.lines,
        "steps": manifest["steps"],
        "loss_before": losses["before"],
        "loss_after": losses["after"],
        "first_loss": losses["steps"][0],
        "final_loss": losses["steps"][-1],
        "seconds": manifest["seconds"],
        "device": manifest["device"],
        "adapter": manifest["content_hash"],
    }
