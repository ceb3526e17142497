"""Runs and trigger checks as the text lines the command line prints. Pure."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from app.i18n import say
from app.learning.tables import DatasetSnapshot, TrainingRun, TriggerCheck
from app.registry.tables import ModelVersion

HEADLINE = ("map50", "map50_95", "precision", "recall")
CLASSIFIER_HEADLINE = ("accuracy", "human_agreement", "severity_accuracy", "calibration_error",
                       "false_positives_per_1000")  # fmt: skip
CROPS_JUDGED = {"verified_crops": "verified crops", "frozen_test_crops": "frozen test crops"}


def refusals(run: TrainingRun, t: Callable[..., str]) -> list[str]:
    """The run's refusal reasons in the reader's language (`t`)."""
    return say(t, run.refusal_reasons, run.refusal_codes)


def _number(value: Any) -> str:
    return "-" if value is None else f"{value:.4f}"


def _when(moment: datetime | None) -> str:
    return "-" if moment is None else f"{moment:%Y-%m-%d %H:%M:%S} UTC"


def run_lines(
    run: TrainingRun,
    snapshot: DatasetSnapshot | None = None,
    now: datetime | None = None,
    version: ModelVersion | None = None,
) -> list[str]:
    """Everything known about one run, most important first."""
    lines = [f"run {run.id}: {run.status} ({run.phase}), started by {run.trigger}"]
    candidate = run.candidate or {}
    if run.kind == "classifier" and (tune := candidate.get("tune")):
        kinds = ",".join(tune["kinds"])
        lines[0] += (f", instruction tuning of {candidate.get('uri')} with prompts "
                     f"{candidate.get('prompt_version')} on {tune['examples']} examples of "
                     f"kinds {kinds} (instructions {tune['snapshot']})")  # fmt: skip
    elif run.kind == "classifier" and candidate:
        lines[0] += (f", classifier candidate {candidate.get('uri')} with prompts "
                     f"{candidate.get('prompt_version')}")  # fmt: skip
    lines.append(f"  queued {_when(run.created_at)}, started {_when(run.started_at)}, "
                 f"finished {_when(run.finished_at)}")  # fmt: skip
    if snapshot is not None and run.kind == "classifier":
        lines.append(f"  snapshot {snapshot.id}: {snapshot.samples} verified crops of "
                     f"{snapshot.inspections} items; manifest {snapshot.manifest_key}")  # fmt: skip
    elif snapshot is not None:
        splits = snapshot.split_counts
        lines.append(
            f"  snapshot {snapshot.id}: {snapshot.samples} samples of {snapshot.inspections} "
            f"items (train {splits.get('train', 0)}, val {splits.get('val', 0)}, "
            f"test {splits.get('test', 0)}); manifest {snapshot.manifest_key}"
        )
    if run.total_steps:
        lines.append("  " + progress_text(run, now))
    lines += [f"  refused: {reason}" for reason in run.refusal_reasons]
    if run.error:
        lines.append(f"  error: {run.error}")
    if run.metrics:
        lines += ["  " + line for line in metrics_lines(run.metrics)]
    if run.gate is not None:
        verdict = "passed" if run.gate.get("passed") else "FAILED"
        lines.append(f"  gate {verdict}:")
        lines += [f"    {reason}" for reason in run.gate.get("reasons", [])]
    if version is not None:
        serves = "may never serve" if version.gate_failed else "may be staged as challenger"
        lines.append(f"  registered {version.kind} {version.version} ({serves})")
        lines.append(f"    {version.uri}")
        if version.adapter_uri:
            lines.append(f"    adapter {version.adapter_uri}")
    elif run.model_version_id is not None:
        lines.append(f"  registered model version id {run.model_version_id}")
    return lines


def progress_text(run: TrainingRun, now: datetime | None = None) -> str:
    parts = [f"step {run.step}/{run.total_steps}"]
    if run.epoch is not None:
        parts.append(f"epoch {run.epoch:.2f}")
    if run.loss is not None:
        parts.append(f"loss {run.loss:.4f}")
    if run.eta_s is not None and run.is_active:
        parts.append(f"about {run.eta_s:.0f} s left")
    if now is not None and run.heartbeat_at is not None and run.is_active:
        parts.append(f"last heard {(now - run.heartbeat_at).total_seconds():.0f} s ago")
    return ", ".join(parts)


def metrics_lines(metrics: dict[str, Any]) -> list[str]:
    """The headline numbers, per class AP50, what they were measured on, and the baseline."""
    if metrics.get("evaluated_on") in CROPS_JUDGED:
        return classifier_metrics_lines(metrics)
    if metrics.get("evaluated_on") is None and "map50" not in metrics:
        return [f"not evaluated: {metrics.get('note', 'no metrics')}"]
    where = metrics.get("evaluated_on")
    lines = [
        f"metrics on the {where} split ({metrics.get('images', '?')} photos): "
        + ", ".join(f"{name} {_number(metrics.get(name))}" for name in HEADLINE)
    ]
    if note := metrics.get("note"):
        lines.append(f"note: {note}")
    for name, values in sorted(metrics.get("per_class", {}).items()):
        lines.append(
            f"  {name:<14} AP50 {_number(values.get('ap50'))}  precision "
            f"{_number(values.get('precision'))}  recall {_number(values.get('recall'))}  "
            f"({values.get('ground_truth', 0)} boxes)"
        )
    baseline = metrics.get("baseline") or {}
    if any(name in baseline for name in HEADLINE):
        lines.append(
            f"baseline {baseline.get('version', '?')}: "
            + ", ".join(f"{name} {_number(baseline.get(name))}" for name in HEADLINE)
        )
    return lines


def classifier_metrics_lines(metrics: dict[str, Any]) -> list[str]:
    """A classifier candidate's numbers on the verified crops, per class, and the baseline."""
    judged = CROPS_JUDGED[metrics.get("evaluated_on", "verified_crops")]
    lines = [
        f"metrics on {metrics.get('crops', '?')} {judged}: "
        # A run recorded before a measure existed does not show it.
        + ", ".join(
            f"{name} {_number(metrics[name])}" for name in CLASSIFIER_HEADLINE if name in metrics
        )  # fmt: skip
    ]
    if tuning := metrics.get("tuning"):
        lines.append(
            f"tuning: {tuning['steps']} steps on {tuning['lines']} lines ({tuning['examples']} "
            f"examples), answer loss {tuning['loss_before']:.4f} -> {tuning['loss_after']:.4f}, "
            f"{tuning['seconds']:.0f} s on {tuning['device']}"
        )
    if metrics.get("temperature") is not None:
        lines.append(
            f"calibration: temperature {metrics['temperature']:.3f} (served with the version); "
            f"calibration error {_number(metrics.get('calibration_error'))} unscaled, "
            f"{_number(metrics.get('calibrated_error'))} scaled (cross-fitted)"
        )
    if metrics.get("failed"):
        lines.append(f"note: {metrics['failed']} crops could not be classified (counted wrong)")
    for name, values in sorted(metrics.get("per_class", {}).items()):
        lines.append(
            f"  {name:<14} recall {_number(values.get('recall'))}  precision "
            f"{_number(values.get('precision'))}  ({values.get('support', 0)} crops)"
        )
    baseline = metrics.get("baseline") or {}
    if any(name in baseline for name in CLASSIFIER_HEADLINE):
        lines.append(
            f"baseline {baseline.get('version', '?')} with prompts "
            f"{baseline.get('prompt_version', '?')}: "
            + ", ".join(f"{name} {_number(baseline.get(name))}" for name in CLASSIFIER_HEADLINE)
        )
    return lines


def check_line(check: TriggerCheck) -> str:
    """One trigger check on one line: when, whose, the numbers, whether it fired and what
    followed."""
    head = f"{_when(check.checked_at)}  {'FIRED' if check.fired else 'quiet'}  "
    if check.kind == "classifier":
        head += "classifier: " + _classifier_numbers(check.measures or {})
    else:
        rate = f"{check.disagreements / check.reviewed:.1%}" if check.reviewed else "-"
        head += (
            f"detector: new samples {check.new_verified_samples}, disagreement {rate} of "
            f"{check.reviewed}"
        )
    weakest = sorted(check.class_precision.items(), key=lambda item: item[1])[:3]
    if weakest:
        head += ", lowest precision " + ", ".join(
            f"{name} {value:.2f}/{check.class_support.get(name, 0)}" for name, value in weakest
        )
    tail = [*check.reasons, check.note] if check.fired else []
    return head + "".join(f"\n    {line}" for line in tail if line)


def _classifier_numbers(measures: dict[str, Any]) -> str:
    errors, per_1000 = measures.get("error_rate"), measures.get("false_positives_per_1000")
    return (
        f"new crops {measures.get('new_verified_crops', 0)}, classification errors "
        f"{'-' if errors is None else f'{errors:.1%}'} of {measures.get('judged_regions', 0)}, "
        f"false positives {'-' if per_1000 is None else f'{per_1000:.1f}'} per 1,000 of "
        f"{measures.get('normal_regions', 0)} normal"
    )
