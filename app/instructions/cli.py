"""`loupe instructions ...`: build instruction snapshots from the reviews, list and export them.

`build` prints the counts per kind and per defect type, what class balancing did, and
the snapshot's id; `export` writes a snapshot as chat-format JSONL with its crops.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import click

from app.cli_options import database_session, settings_and_store, var_dir_option
from app.instructions.kinds import KIND_NAMES, KINDS
from app.instructions.wording import DEFAULT_VERSION
from models.taxonomy import LANGUAGES
from models.training.balance import MIN_SHARE


def _split(value: str, allowed: tuple[str, ...], what: str) -> tuple[str, ...]:
    items = tuple(dict.fromkeys(v.strip() for v in value.split(",") if v.strip()))
    unknown = [v for v in items if v not in allowed]
    if unknown or not items:
        raise click.BadParameter(f"{what} are {','.join(allowed)}; not {value!r}")
    return items


def _table(
    rows: Mapping[str, int], samples: Mapping[str, int], names: Mapping[str, str]
) -> list[str]:
    """One line per key: its examples, and with its crops' repeats where oversampling
    repeated some."""
    width = max((len(names.get(k, k)) for k in rows), default=0)
    lines = []
    for key, n in rows.items():
        total = samples.get(key, n)
        repeats = "" if total == n else f"  ({total} with repeats)"
        lines.append(f"  {names.get(key, key):<{width}}  {n:>7}{repeats}")
    return lines


def balance_lines(balance: Mapping[str, Any]) -> list[str]:
    """What class balancing did, in words."""
    if not balance["min_share"]:
        return ["balance: off (--min-share 0)"]
    target = f"{balance['target_share']:.1%}"
    asked = f"{balance['min_share']:.0%}"
    head = f"balance: every defect type at least {target} of the crops"
    head += (
        ""
        if balance["target_share"] == balance["min_share"]
        else f" ({asked} asked: too many types)"
    )
    lifted = [
        f"{name} {n} -> {balance['crops_after'][name]}"
        for name, n in balance["crops_before"].items()
        if balance["crops_after"][name] != n
    ]
    if not lifted:
        return [head + ": already so, nothing repeated"]
    lines = [head + f": {balance['added']} crop repeats added", "  " + ", ".join(lifted)]
    if not balance["reached"]:
        lines.append(
            f"  stopped at the cap ({balance['max_extra']:g}x the crops): some types stay rare"
        )
    return lines


def build_lines(result: Any) -> list[str]:
    """The build's report: the snapshot, the counts per kind and type, the balancing."""
    snapshot, manifest = result.snapshot, result.manifest
    counts = snapshot.counts
    kinds = {k: counts["by_kind"].get(k, 0) for k in snapshot.kinds}
    state = "new" if result.created else "the same data was built before: same snapshot"
    lines = [
        f"snapshot {snapshot.id} ({state})",
        f"  templates {snapshot.template_version}, prompts {snapshot.prompt_version}, "
        f"languages {','.join(snapshot.languages)}",
        f"  {snapshot.crops} crops, {snapshot.examples} examples "
        f"({snapshot.samples} with repeats); "
        f"{result.frozen_left_out} answers of frozen test items left out",
    ]
    if manifest["left_out"]["unknown_types"]:
        lines.append(f"  {manifest['left_out']['unknown_types']} answers of types the taxonomy "
                     "no longer has left out")  # fmt: skip
    if manifest.get("excluded"):
        lines.append(f"  {len(manifest['excluded'])} examples left out: excluded on "
                     "/ml/instructions")  # fmt: skip
    names = {k: f"{k} {KIND_NAMES[k]}" for k in kinds}
    lines += ["examples per kind:", *_table(kinds, counts["samples_by_kind"], names)]
    types = dict(sorted(counts["by_type"].items()))  # JSONB keeps its own key order
    lines += ["examples per defect type:", *_table(types, counts["samples_by_type"], {})]
    return lines + balance_lines(snapshot.balance)


@click.group()
def instructions() -> None:
    """Instruction data for the classifier, from what inspectors verified (kinds A-D)."""


@instructions.command("build")
@click.option("--types", "kinds", default=",".join(KINDS), show_default=True,
              help="Kinds: A fact, B contrast, C counterfactual, D failure analysis.")  # fmt: skip
@click.option("--languages", default=",".join(LANGUAGES), show_default=True)
@click.option("--templates", "template_version", default=DEFAULT_VERSION, show_default=True,
              help="Template version (LOUPE_INSTRUCTION_TEMPLATES_DIR first).")  # fmt: skip
@click.option("--prompts", "prompt_version", default="",
              help="The prompt version kind A asks (default: the champion's).")  # fmt: skip
@click.option("--min-share", default=MIN_SHARE, show_default=True,
              type=click.FloatRange(0, 0.5),
              help="Repeat rare defect types up to this share of the crops (0: off).")  # fmt: skip
@var_dir_option
def build(
    kinds: str, languages: str, template_version: str, prompt_version: str, min_share: float,
    var_dir: Path,
) -> None:  # fmt: skip
    """Build a snapshot of the verified region answers now (frozen test items left out)."""
    from app.instructions.manifest import BuildOptions
    from app.instructions.service import NothingToBuild, build_snapshot

    options = BuildOptions(kinds=_split(kinds, KINDS, "--types"),
                           languages=_split(languages, LANGUAGES, "--languages"),
                           min_share=min_share)  # fmt: skip
    settings, store = settings_and_store(var_dir)
    with database_session(var_dir) as session:
        try:
            result = build_snapshot(
                session=session, store=store, settings=settings, options=options,
                template_version=template_version, prompt_version=prompt_version,
            )  # fmt: skip
        except (NothingToBuild, ValueError) as exc:
            raise click.ClickException(str(exc)) from exc
        session.commit()
        click.echo("\n".join(build_lines(result)))


@instructions.command("list")
@click.option("--limit", default=20, show_default=True, type=click.IntRange(1, 1000))
@var_dir_option
def list_snapshots(limit: int, var_dir: Path) -> None:
    """Recent snapshots, newest first."""
    from app.instructions.snapshots import recent_snapshots

    with database_session(var_dir) as session:
        rows = recent_snapshots(session=session, limit=limit)
        if not rows:
            click.echo("no instruction snapshot yet (`loupe instructions build`)")
        for row in rows:
            click.echo(
                f"{row.id[:12]}  {row.created_at:%Y-%m-%d %H:%M}  {row.template_version:<8} "
                f"{','.join(row.kinds):<8} {','.join(row.languages):<6} "
                f"{row.crops:>6} crops {row.examples:>7} examples"
            )


@instructions.command("export")
@click.argument("out", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--snapshot", "ident", help="A snapshot's id or its first digits (default: newest).")
@click.option("--images", type=click.Path(file_okay=False, path_type=Path),
              help="Where the crops go (default: OUT's name with -crops, beside it).")  # fmt: skip
@var_dir_option
def export(out: Path, ident: str | None, images: Path | None, var_dir: Path) -> None:
    """Write a snapshot as chat-format JSONL (system, user with the crop, assistant)."""
    from app.instructions.export import export_jsonl
    from app.instructions.snapshots import (
        SnapshotCorrupt,
        UnknownSnapshot,
        find_snapshot,
        load_manifest,
    )
    from app.learning.photos import PhotoChanged

    _, store = settings_and_store(var_dir)
    with database_session(var_dir) as session:
        try:
            snapshot = find_snapshot(session=session, ident=ident)
        except UnknownSnapshot as exc:
            raise click.ClickException(str(exc)) from exc
        snapshot_id = snapshot.id
    try:
        manifest = load_manifest(store=store, snapshot=snapshot)
        report = export_jsonl(manifest=manifest, snapshot=snapshot_id, store=store, out=out,
                              images=images)  # fmt: skip
    except (SnapshotCorrupt, PhotoChanged, KeyError) as exc:
        raise click.ClickException(
            f"snapshot {snapshot_id[:12]} cannot be exported: {exc}"
        ) from exc
    click.echo(f"wrote {report.lines} lines to {report.path} (snapshot {snapshot_id})")
    click.echo(f"  {report.crops} crops in {report.images}")
