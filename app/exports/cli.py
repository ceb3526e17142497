"""`loupe export FORMAT OUT`: what inspectors verified, as COCO, YOLO, Label Studio or the
classifier's instruction JSONL, written into the directory OUT with a progress bar."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click

from app.cli_options import database_session, settings_and_store, var_dir_option
from app.exports.formats import FORMATS

DATE_FORMATS = ["%Y-%m-%d", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S"]


def _check_options(fmt: str, snapshot: str | None, since: datetime | None, split: bool) -> None:
    """Refuse combinations that would not mean what they say."""
    if fmt == "instructions":
        if since is not None:
            raise click.UsageError("--since does not apply to instructions: they come from an "
                                   "instruction snapshot (`loupe instructions build`)")  # fmt: skip
        if split:
            raise click.UsageError(
                "--split does not apply to instructions: a snapshot leaves frozen test items "
                "out, all of it is for training"
            )
        return
    if snapshot is not None and since is not None:
        raise click.UsageError("--since and --snapshot exclude each other: a snapshot is "
                               "exported as it was taken")  # fmt: skip
    if snapshot is not None and not (
        snapshot.isascii() and snapshot.isdigit() and 0 < int(snapshot) < 2**63
    ):
        raise click.BadParameter(f"a dataset snapshot's id is a number, not {snapshot!r}",
                                 param_hint="--snapshot")  # fmt: skip


def report_lines(report: Any) -> list[str]:
    """What was written, and what the reader should know about it."""
    if report.format == "instructions":
        return [f"wrote {report.examples} instruction lines and {report.images} crops "
                f"to {report.path}"]  # fmt: skip
    splits = ", ".join(f"{name} {n}" for name, n in report.splits.items())
    lines = [
        f"wrote {report.images} photos with {report.boxes} boxes ({report.format}; {splits}) "
        f"to {report.path}",
        f"classes: {', '.join(report.classes)} (the taxonomy's order, 'normal' left out)",
    ]
    if report.unknown_labels:
        lines.append(f"  types the taxonomy no longer has, at the end: "
                     f"{', '.join(report.unknown_labels)}")  # fmt: skip
    if report.clipped_boxes or report.dropped_boxes:
        lines.append(f"  {report.clipped_boxes} boxes cut at their photo's edge, "
                     f"{report.dropped_boxes} wholly outside it left out")  # fmt: skip
    return lines


@click.command("export")
@click.argument("fmt", metavar="FORMAT", type=click.Choice(FORMATS))
@click.argument("out", type=click.Path(file_okay=False, path_type=Path))
@click.option(
    "--since",
    type=click.DateTime(DATE_FORMATS),
    metavar="DATE",
    help="Only items whose decision in effect was made at or after DATE (UTC).",
)
@click.option("--snapshot", metavar="ID",
              help="A detector dataset snapshot's id instead of the live data; for "
                   "instructions, an instruction snapshot's id or first digits (default: "
                   "the newest).")  # fmt: skip
@click.option("--split", is_flag=True,
              help="train/, val/ and test/ folders, as the snapshot's splits say (the live "
                   "data is split the way a snapshot would be).")  # fmt: skip
@var_dir_option
def export(
    fmt: str, out: Path, since: datetime | None, snapshot: str | None, split: bool,
    var_dir: Path,
) -> None:  # fmt: skip
    """Write what inspectors verified into the directory OUT (which must not exist, or be
    empty): coco, yolo (with data.yaml), labelstudio, or instructions (chat JSONL).

    Boxes are the decisions in effect: types as the inspector set them, "not a defect"
    boxes left out, drawn boxes in. Classes are the taxonomy's types in its order.
    """
    from tqdm import tqdm

    from app.exports.dataset import OutExists, check_out, write_export
    from app.exports.selection import NotADatasetSnapshot, UnknownDatasetSnapshot, choose
    from app.instructions.snapshots import SnapshotCorrupt as InstructionsCorrupt
    from app.instructions.snapshots import UnknownSnapshot
    from app.learning.photos import PhotoChanged
    from app.learning.snapshot import SnapshotCorrupt
    from app.storage import ObjectNotFound

    _check_options(fmt, snapshot, since, split)
    since = since.replace(tzinfo=UTC) if since is not None else None
    try:
        check_out(out)  # before reading anything: the same answer now as at the end
    except OutExists as exc:
        raise click.ClickException(str(exc)) from exc
    settings, store = settings_and_store(var_dir)
    problems = (UnknownDatasetSnapshot, NotADatasetSnapshot, UnknownSnapshot, SnapshotCorrupt,
                InstructionsCorrupt, PhotoChanged, ObjectNotFound, OutExists)  # fmt: skip
    with database_session(var_dir) as session:
        try:
            chosen = choose(session=session, store=store, fmt=fmt, snapshot=snapshot,
                            since=since, val_share=settings.retrain_val_share)  # fmt: skip
        except problems as exc:
            raise click.ClickException(str(exc)) from exc
    unit = "crop" if fmt == "instructions" else "photo"
    with tqdm(unit=unit, desc=f"export {fmt}", disable=None) as bar:

        def progress(done: int, total: int) -> None:
            bar.total = total
            bar.update(done - bar.n)

        try:
            report = write_export(fmt=fmt, manifest=chosen.manifest, source=chosen.source,
                                  out=out, store=store, split=split, progress=progress)  # fmt: skip
        except problems as exc:
            raise click.ClickException(f"nothing was written: {exc}") from exc
    click.echo("\n".join(report_lines(report)))
