"""`loupe models ...`: the registry from the shell: versions, aliases, the experiment,
and the two actions that must always be one command away, promote and rollback."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from app.cli_options import database_session, var_dir_option


@click.group()
def models() -> None:
    """Model versions, champion and challenger, experiments."""


def _aliases(session: Any) -> dict[int, list[str]]:
    from sqlalchemy import select

    from app.registry.tables import ModelAlias

    names: dict[int, list[str]] = {}
    for row in session.scalars(select(ModelAlias)):
        names.setdefault(row.model_version_id, []).append(row.alias)
    return names


@models.command("list")
@var_dir_option
def list_versions(var_dir: Path) -> None:
    """Every model version, newest first, with its aliases and gate."""
    from sqlalchemy import select

    from app.registry.tables import ModelVersion

    with database_session(var_dir) as session:
        aliases = _aliases(session)
        rows = session.scalars(select(ModelVersion).order_by(ModelVersion.id.desc())).all()
        if not rows:
            click.echo("no model versions registered yet")
        for v in rows:
            gate = "-" if v.gate is None else ("passed" if v.gate.get("passed") else "FAILED")
            named = ",".join(sorted(aliases.get(v.id, []))) or "-"
            map50 = v.metrics.get("map50")
            shown = f"{map50:.3f}" if isinstance(map50, int | float) else "-"
            click.echo(f"{v.kind:<10} {v.version:<40} {named:<20} gate {gate:<7} mAP50 {shown}"
                       f"  {v.created_at:%Y-%m-%d %H:%M}")  # fmt: skip
        _experiment_line(session)


def _experiment_line(session: Any) -> None:
    from app.registry.service import running_experiment

    experiment = running_experiment(session=session)
    if experiment is None:
        click.echo("no experiment is running")
        return
    click.echo(f"experiment {experiment.name}: challenger share {experiment.challenger_share:.0%}"
               f" since {experiment.started_at:%Y-%m-%d %H:%M}")  # fmt: skip
    if experiment.analysis:
        click.echo(f"  last analysis: {experiment.analysis['decision']}: "
                   f"{experiment.analysis['reason']}")  # fmt: skip


def _find(session: Any, version: str) -> Any:
    from sqlalchemy import select

    from app.registry.tables import ModelVersion

    rows = session.scalars(select(ModelVersion).where(ModelVersion.version == version)).all()
    if not rows:
        raise click.ClickException(f"no model version {version!r}; see `loupe models list`")
    if len(rows) > 1:
        raise click.ClickException(f"{version!r} names a detector and a classifier")
    return rows[0]


@models.command("show")
@click.argument("version")
@var_dir_option
def show(version: str, var_dir: Path) -> None:
    """One version: where it is, what it was trained on, its metrics and gate."""
    with database_session(var_dir) as session:
        v = _find(session, version)
        click.echo(f"{v.kind} {v.version}  aliases: {', '.join(_aliases(session).get(v.id, []))}")
        click.echo(f"uri      {v.uri}\nsha256   {v.content_hash}")
        click.echo(f"run      {v.training_run_id}  snapshot {v.snapshot_id}  "
                   f"prompt {v.prompt_version}")  # fmt: skip
        click.echo("metrics  " + json.dumps(v.metrics, indent=2, sort_keys=True))
        for reason in (v.gate or {}).get("reasons", []):
            click.echo(f"gate     {reason}")


@models.command("stage")
@click.argument("version")
@click.option("--share", type=click.FloatRange(0, 1, min_open=True, max_open=True),
              help="share of items for the challenger [LOUPE_EXPERIMENT_SHARE]")  # fmt: skip
@var_dir_option
def stage(version: str, share: float | None, var_dir: Path) -> None:
    """Serve VERSION as challenger beside the champion (an A/B experiment)."""
    from app.config import get_settings
    from app.registry import experiments, service

    with database_session(var_dir) as session:
        try:
            experiment = experiments.stage_challenger(
                session=session, candidate=_find(session, version),
                share=share or get_settings().experiment_share, actor_id=None,
            )  # fmt: skip
        except (experiments.NothingToDo, service.GateFailed, service.ExperimentRunning) as exc:
            raise click.ClickException(str(exc)) from exc
        session.commit()
        click.echo(f"experiment {experiment.name} started: {experiment.challenger_share:.0%} "
                   "of items go to the challenger; Serve follows within seconds")  # fmt: skip


@models.command("promote")
@var_dir_option
def promote(var_dir: Path) -> None:
    """Make the running experiment's challenger the champion."""
    from app.registry import experiments

    with database_session(var_dir) as session:
        try:
            experiment = experiments.promote(session=session, actor_id=None, why="promoted (cli)")
        except experiments.NothingToDo as exc:
            raise click.ClickException(str(exc)) from exc
        session.commit()
        click.echo(f"promoted: experiment {experiment.name}'s challenger is the champion")


@models.command("rollback")
@click.option("--why", default="rolled back (cli)", show_default=True)
@var_dir_option
def rollback(why: str, var_dir: Path) -> None:
    """End the running experiment, or else put back the champion before the last change."""
    from app.registry import experiments

    with database_session(var_dir) as session:
        try:
            message = experiments.rollback(session=session, actor_id=None, why=why)
        except experiments.NothingToDo as exc:
            raise click.ClickException(str(exc)) from exc
        session.commit()
        click.echo(message)
