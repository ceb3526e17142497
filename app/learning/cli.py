"""`loupe retrain ...`: start a training run, watch it, read the trigger's history, freeze tests;
`loupe prompts ...`: the classifier's prompt versions, and a few-shot one from the reviews.

`loupe retrain --now` snapshots the verified samples and queues a run for a worker (the
running stack's relay hands it over); `--wait` follows it with a progress bar and prints
its metrics and gate. The exit code is 0 only for a candidate that passed its gate (or,
without --wait, a run that was queued), so scripts can chain on it.
"""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path
from typing import Any

import click

from app.cli_options import database_session, settings_and_store, var_dir_option
from app.learning.tables import DatasetSnapshot, TrainingRun
from app.registry.tables import ModelVersion

POLL_S = 1.0


@click.group(invoke_without_command=True)
@click.option("--now", is_flag=True, help="Start a training run now.")
@click.option("--wait", is_flag=True, help="With --now: follow the run until it ends.")
@var_dir_option
@click.pass_context
def retrain(ctx: click.Context, now: bool, wait: bool, var_dir: Path) -> None:
    """The learning loop: start and follow training runs, read trigger checks, freeze tests."""
    if ctx.invoked_subcommand is not None:
        if now or wait:
            raise click.UsageError("--now and --wait start a run; give them without a command")
        return
    if not now:
        if wait:
            raise click.UsageError("--wait follows a run started with --now")
        click.echo(ctx.get_help())
        return
    run_id = _start(var_dir)
    if wait:
        raise SystemExit(_follow(var_dir, run_id))


def _start(var_dir: Path, start: Any = None) -> int:
    """Start a run with `start(session=, store=, settings=, trigger=)` (default: a detector
    training run); print its first lines and return its id."""
    from app.learning import runs
    from app.learning.classifier import BadCandidate
    from app.learning.report import run_lines

    start = start or runs.start_run
    settings, store = settings_and_store(var_dir)
    with database_session(var_dir) as session:
        try:
            run = start(session=session, store=store, settings=settings, trigger="cli")
        except runs.RunInProgress as exc:
            raise click.ClickException(f"{exc}; follow it with `loupe retrain status`") from exc
        except BadCandidate as exc:
            raise click.ClickException(str(exc)) from exc
        session.commit()
        snapshot = session.get(DatasetSnapshot, run.snapshot_id) if run.snapshot_id else None
        lines = run_lines(run, snapshot)
        run_id, refused = run.id, run.status == "refused"
    if refused:
        click.echo("\n".join(lines), err=True)
        raise SystemExit(1)
    # The run's first line and its snapshot; the rest is empty until a worker takes it.
    click.echo("\n".join(line for line in lines if not line.startswith("  queued")))
    return run_id


def _follow(var_dir: Path, run_id: int) -> int:
    """A progress bar until the run ends; then its report. Returns the exit code."""
    from tqdm import tqdm

    from app.learning.report import run_lines

    bar = tqdm(total=None, unit="step", desc=f"run {run_id} queued", leave=True)
    try:
        while True:
            run, snapshot, version = _read(var_dir, run_id)
            if run.total_steps and bar.total != run.total_steps:
                bar.total = run.total_steps
            # Training reports steps; judging a classifier reports crops.
            bar.unit = "crop" if run.phase == "evaluating" else "step"
            bar.set_description(f"run {run_id} {run.phase}")
            bar.n = run.step
            if run.loss is not None:
                bar.set_postfix(loss=f"{run.loss:.4f}", epoch=f"{run.epoch or 0:.2f}")
            bar.refresh()
            if not run.is_active:
                break
            time.sleep(POLL_S)
    except KeyboardInterrupt:
        bar.close()
        click.echo(f"stopped watching; run {run_id} goes on (`loupe retrain status`)", err=True)
        return 130
    bar.close()
    click.echo("\n".join(run_lines(run, snapshot, version=version)))
    passed = run.status == "succeeded" and bool(run.gate and run.gate.get("passed"))
    return 0 if passed else 1


def _read(var_dir: Path, run_id: int) -> tuple[Any, Any, Any]:
    from app.learning import runs

    with database_session(var_dir) as session:
        run = runs.get_run(session=session, run_id=run_id)
        if run is None:
            raise click.ClickException(f"no training run {run_id}")
        snapshot, version = _lineage(session, run)
        session.expunge_all()
    return run, snapshot, version


def _lineage(session: Any, run: TrainingRun) -> tuple[Any, Any]:
    """The run's snapshot and the model version it registered, where they exist."""
    snapshot = session.get(DatasetSnapshot, run.snapshot_id) if run.snapshot_id else None
    version = session.get(ModelVersion, run.model_version_id) if run.model_version_id else None
    return snapshot, version


@retrain.command("classifier")
@click.option(
    "--prompts",
    "prompt_version",
    default="",
    help="The candidate's prompt version (default: the champion's).",
)
@click.option("--uri", default="", help="The candidate's weights (default: the champion's).")
@click.option(
    "--calibrate",
    is_flag=True,
    help="Fit the champion's temperature on the verified crops, changing nothing else.",
)
@click.option(
    "--tune",
    is_flag=True,
    help="Tune a LoRA adapter on the champion from the inspectors' verified answers.",
)
@click.option(
    "--types",
    "kinds",
    default="",
    help="With --tune: the instruction kinds to tune on, e.g. A or A,B,C,D "
    "(default: LOUPE_TUNE_KINDS).",
)
@click.option("--wait", is_flag=True, help="Follow the run until it ends.")
@var_dir_option
def classifier(
    prompt_version: str, uri: str, calibrate: bool, tune: bool, kinds: str, wait: bool,
    var_dir: Path,
) -> None:  # fmt: skip
    """Evaluate a classifier candidate (new prompts or weights) on the verified crops,
    calibrate the champion (--calibrate), or instruction-tune it (--tune).

    It is gated like a trained detector, registered, and staged as challenger if it
    passed. A tuned candidate (a LoRA adapter on the champion's weights, trained on the
    instruction examples of every verified answer outside the frozen test set) is judged
    on the frozen test set's crops. The exit code with --wait is 0 only for a candidate
    that passed its gate.
    """
    from app.learning.classifier import start_classifier_run
    from app.learning.tuning import start_tuning_run, tune_kinds

    def start(**kwargs: Any) -> Any:
        if tune:
            return start_tuning_run(kinds=tune_kinds(kinds) if kinds else None, **kwargs)
        return start_classifier_run(
            uri=uri, prompt_version=prompt_version, calibrate=calibrate, **kwargs
        )

    if tune and (uri or prompt_version or calibrate):
        raise click.UsageError("--tune tunes the champion as it serves: give it alone")
    if kinds and not tune:
        raise click.UsageError("--types chooses what --tune trains on; give it with --tune")
    if not (uri or prompt_version or calibrate or tune):
        raise click.UsageError(
            "give --prompts or --uri, --calibrate or --tune: what should the candidate change?"
        )
    run_id = _start(var_dir, start)
    if wait:
        raise SystemExit(_follow(var_dir, run_id))


@retrain.command("status")
@click.option("--run", "run_id", type=int, help="A run's id (default: the current or last run).")
@var_dir_option
def status(run_id: int | None, var_dir: Path) -> None:
    """The current training run, or the last one: progress, metrics, gate, errors."""
    from app.db import utcnow
    from app.learning import runs
    from app.learning.report import run_lines

    with database_session(var_dir) as session:
        run = (
            runs.get_run(session=session, run_id=run_id)
            if run_id is not None
            else runs.active_run(session=session) or runs.latest_run(session=session)
        )
        if run is None:
            raise click.ClickException(
                f"no training run {run_id}" if run_id else "no training run yet"
            )
        snapshot, version = _lineage(session, run)
        click.echo("\n".join(run_lines(run, snapshot, now=utcnow(), version=version)))


@retrain.command("checks")
@click.option("--limit", default=20, show_default=True, type=click.IntRange(1, 1000))
@var_dir_option
def checks(limit: int, var_dir: Path) -> None:
    """Recent trigger checks, newest first, with their numbers and what they started."""
    from app.learning.report import check_line
    from app.learning.trigger import recent_checks

    with database_session(var_dir) as session:
        rows = recent_checks(session=session, limit=limit)
        if not rows:
            click.echo("no trigger checks yet (beat runs one every hour by default)")
        for row in rows:
            click.echo(check_line(row))


@retrain.command("freeze-test")
@click.option("--count", required=True, type=click.IntRange(min=1), help="How many items.")
@var_dir_option
def freeze_test(count: int, var_dir: Path) -> None:
    """Freeze COUNT more verified items, never trained on, into the test set."""
    from app.learning.testset import freeze_test_items, size_of_test_set

    with database_session(var_dir) as session:
        added = freeze_test_items(session=session, count=count)
        session.commit()
        total = size_of_test_set(session=session)
    click.echo(f"froze {len(added)} items into the test set (now {total} items)")
    if len(added) < count:
        click.echo(
            f"only {len(added)} of the {count} asked for: no other verified item is free "
            "of every snapshot's train split",
            err=True,
        )


@click.group()
def prompts() -> None:
    """The classifier's prompt versions: list them, write a few-shot version from reviews."""


@prompts.command("list")
def list_prompts() -> None:
    """Every prompt version that can classify, with its examples and where it lives."""
    from models.prompts import available_versions, load_prompts, prompt_path

    for name in available_versions():
        loaded = load_prompts(name)
        click.echo(f"{name:<16} {len(loaded.examples):>3} examples  {prompt_path(name)}")


@prompts.command("few-shot")
@click.option("--name", required=True, help="The new version's name, e.g. v3-site.")
@click.option("--base", default="v2", show_default=True, help="The version whose wording to use.")
@click.option("--per-type", default=1, show_default=True, type=click.IntRange(0, 10),
              help="Examples of each defect type, normal included.")  # fmt: skip
@click.option("--type", "overrides", multiple=True, metavar="TYPE=N",
              help="Another number for one type, e.g. --type pilling=5 (repeatable).")  # fmt: skip
@var_dir_option
def few_shot(
    name: str, base: str, per_type: int, overrides: tuple[str, ...], var_dir: Path
) -> None:
    """Write prompt version NAME: BASE's wording with verified crops as few-shot examples.

    Written into LOUPE_PROMPTS_DIR, never over an existing version. Try it with
    `loupe retrain classifier --prompts NAME`; the crops it shows are not judged on.
    """
    from app.learning.fewshot import FewShotProblem, pick_examples, write_version
    from models.taxonomy import load_taxonomy

    counts = dict.fromkeys(load_taxonomy().type_keys, per_type)
    for item in overrides:
        answer, _, number = item.partition("=")
        if answer not in counts or not number.isdigit():
            known = ", ".join(counts)
            raise click.UsageError(f"--type wants TYPE=N with a type of {known}; not {item!r}")
        counts[answer] = int(number)
    _, store = settings_and_store(var_dir)
    try:
        with database_session(var_dir) as session:
            examples = pick_examples(session=session, store=store, counts=counts)
        path = write_version(base=base, name=name, examples=examples)
    except (FewShotProblem, ValueError) as exc:
        raise click.ClickException(str(exc)) from exc
    shown = ", ".join(f"{a} {n}" for a, n in Counter(e.answer for e in examples).items())
    click.echo(f"wrote {path} with {len(examples)} examples ({shown})")
    missing = [a for a, n in counts.items() if n and not any(e.answer == a for e in examples)]
    if missing:
        click.echo(f"no verified crops yet of: {', '.join(missing)}", err=True)
