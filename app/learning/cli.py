"""`loupe retrain ...`: start a training run, watch it, read the trigger's history, freeze tests.

`loupe retrain --now` snapshots the verified samples and queues a run for a worker (the
running stack's relay hands it over); `--wait` follows it with a progress bar and prints
its metrics and gate. The exit code is 0 only for a candidate that passed its gate (or,
without --wait, a run that was queued), so scripts can chain on it.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import click

from app.cli_options import database_session, var_dir_option
from app.learning.tables import DatasetSnapshot, TrainingRun
from app.registry.tables import ModelVersion

POLL_S = 1.0


def _settings_and_store(var_dir: Path) -> tuple[Any, Any]:
    from app.config import get_settings
    from app.storage import make_store

    settings = get_settings()
    if settings.var_dir != var_dir:
        settings = settings.model_copy(update={"var_dir": var_dir})
    return settings, make_store(settings)


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


def _start(var_dir: Path) -> int:
    from app.learning import runs
    from app.learning.report import run_lines

    settings, store = _settings_and_store(var_dir)
    with database_session(var_dir) as session:
        try:
            run = runs.start_run(session=session, store=store, settings=settings, trigger="cli")
        except runs.RunInProgress as exc:
            raise click.ClickException(f"{exc}; follow it with `loupe retrain status`") from exc
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
