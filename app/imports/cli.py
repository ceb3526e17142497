"""`loupe import FORMAT PATH`: bring a site's labeled history in (app.imports).

First the labels are counted and checked (no image is read, nothing is written): an
unmapped class, a class id without a name or a split without labels stops the import
here with the list and the fix. Then each image is read once, checked as uploads are and
written; the summary says how many were imported, already present and refused, and why
each refused one was. The exit code is 0 only when nothing was refused.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from app.cli_options import database_session, settings_and_store, var_dir_option
from app.imports.records import FORMATS
from models.taxonomy import load_taxonomy

if TYPE_CHECKING:
    from app.imports.mapping import ClassMap
    from app.imports.plan import Census, Mode, Tally
    from app.imports.service import Source


def _split_names(value: str | None) -> list[str] | None:
    if value is None:
        return None
    names = [v.strip() for v in value.split(",") if v.strip()]
    if not names:
        raise click.BadParameter("give at least one name", param_hint="'--names'")
    return names


def _splits(value: str | None) -> list[str] | None:
    chosen = _split_names(value)
    wrong = [s for s in chosen or [] if s not in ("train", "val", "test")]
    if wrong:
        raise click.BadParameter(f"splits are train, val, test; not {', '.join(wrong)}",
                                 param_hint="'--split'")  # fmt: skip
    return chosen


@click.command("import")
@click.argument("fmt", metavar="FORMAT", type=click.Choice(FORMATS))
@click.argument("path", type=click.Path(exists=True, path_type=Path))
@click.option("--as", "mode", type=click.Choice(["verified", "inspect"]),
              help="verified: the labels are ground truth; inspect: send the photos to the "
                   "models and the queue, keeping the labels to compare with. Default: "
                   "verified when the export has labels, inspect when it has none.")  # fmt: skip
@click.option("--map", "maps", multiple=True, metavar="SRC=DST",
              help="Map a source class to a defect type (--map Knot=snag); repeat.")  # fmt: skip
@click.option("--id-map", "id_maps", multiple=True, metavar="N=NAME",
              help="YOLO: the class name of id N (--id-map 5=hole); repeat.")  # fmt: skip
@click.option("--names", help="YOLO: every class name in id order (a,b,c).")
@click.option("--split", "split", help="Only these splits (train,val,test).")
@click.option("--skip-unknown", is_flag=True,
              help="Leave out boxes (and class folders) of classes no type matches; the "
                   "rest of the photo stays as labelled, so skip only classes that are "
                   "not defects.")  # fmt: skip
@click.option("--unlabeled-is-negative", is_flag=True,
              help="An image the export has no label for is a clean garment.")  # fmt: skip
@click.option("--images", type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="COCO, Label Studio: the folder the image files are in.")  # fmt: skip
@click.option("--name", help="Recorded as the source, import:<name> (default: the folder's).")
@click.option("--dry-run", is_flag=True, help="Say what would happen; change nothing.")
@var_dir_option
def import_history(
    fmt: str, path: Path, mode: str | None, maps: tuple[str, ...], id_maps: tuple[str, ...],
    names: str | None, split: str | None, skip_unknown: bool, unlabeled_is_negative: bool,
    images: Path | None, name: str | None, dry_run: bool, var_dir: Path,
) -> None:  # fmt: skip
    """Import a labeled export (yolo, coco, labelstudio, folders) from PATH.

    Every class must map to the taxonomy: names that match a defect type (any case) map by
    themselves, others need --map. Importing the same images again adds nothing.
    """
    from app.imports import plan
    from app.imports.mapping import MappingError, parse_id_map, parse_pairs
    from app.imports.records import SourceError
    from app.imports.service import ImportStopped, SourceOptions, open_source, source_of

    taxonomy = load_taxonomy()
    try:
        options = SourceOptions(names=_split_names(names), id_map=parse_id_map(id_maps),
                                splits=_splits(split), images=images,
                                severities=taxonomy.severity_keys)  # fmt: skip
        pairs = parse_pairs(maps, "--map")
        source = open_source(fmt, path, options)
        source_name = source_of(name or source.default_name)
        census = plan.take_census(source.records())
    except (SourceError, MappingError) as exc:
        raise click.ClickException(str(exc)) from exc
    if not census.images:
        raise click.ClickException(f"{path}: no images found in this {fmt} export")
    chosen: Mode = plan.default_mode(census) if mode is None else plan.MODES[mode]
    if mode is None:
        why = "it has labels" if chosen == "verified" else "it has no labels"
        click.echo(f"importing as {chosen} ({why}; --as chooses)")
    class_map = _checked(source, census, pairs, chosen, skip_unknown, unlabeled_is_negative)
    try:
        tally = _run(var_dir, source, class_map, census, source_name, chosen,
                     unlabeled_is_negative, dry_run)  # fmt: skip
    except ImportStopped as exc:
        click.echo("\n".join(plan.summary_lines(exc.tally, dry_run=dry_run)))
        raise click.ClickException(
            f"stopped: {exc}. What was imported stays; run the same command again to "
            "import the rest"
        ) from exc
    click.echo("\n".join(plan.summary_lines(tally, dry_run=dry_run)))
    if tally.refused:
        raise SystemExit(1)


def _checked(
    source: Source, census: Census, pairs: list[tuple[str, str]], mode: Mode,
    skip_unknown: bool, unlabeled_is_negative: bool,
) -> ClassMap:  # fmt: skip
    """The class map, after printing the census; exits listing whatever stops the import
    (unmapped classes, class ids without a name, splits without labels)."""
    from app.imports import plan
    from app.imports.mapping import MappingError, resolve

    stops: list[str] = []
    class_map = None
    try:
        class_map = resolve(census.classes, load_taxonomy().type_keys, pairs,
                            skip_unknown=skip_unknown)  # fmt: skip
    except MappingError as exc:
        stops.append(str(exc))
    stops += source.stops(census) + plan.label_stops(census, mode, unlabeled_is_negative)
    click.echo("\n".join(plan.census_lines(census, class_map)))
    if stops or class_map is None:
        for stop in stops:
            click.secho(stop, fg="red", err=True)
        click.secho("nothing was imported", fg="red", err=True)
        raise SystemExit(1)
    return class_map


def _run(
    var_dir: Path, source: Source, class_map: ClassMap, census: Census, source_name: str,
    mode: Mode, unlabeled_is_negative: bool, dry_run: bool,
) -> Tally:  # fmt: skip
    from tqdm import tqdm

    from app.config import get_settings
    from app.imports.service import ImportOptions, run_import

    # A dry run makes no store: a local one would create its folder.
    settings, store = (get_settings(), None) if dry_run else settings_and_store(var_dir)
    options = ImportOptions(
        source=source_name,
        mode=mode,
        unlabeled_is_negative=unlabeled_is_negative,
        dry_run=dry_run,
        max_bytes=settings.max_upload_bytes,
        max_pixels=settings.max_image_pixels,
    )
    desc = "dry run" if dry_run else "import"
    with (
        database_session(var_dir) as session,
        tqdm(total=census.images, unit="image", desc=desc) as bar,
    ):
        return run_import(
            session=session,
            store=store,
            records=source.records(),
            class_map=class_map,
            options=options,
            progress=bar.update,
        )
