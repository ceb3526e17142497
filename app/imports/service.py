"""Running an import: open the export, then read, check and write each image once.

Memory stays bounded whatever the export's size: records are streamed, each image is
read once (its bytes are checked as an upload's are, hashed, and written from the same
buffer), and only one batch of images (at most BATCH_IMAGES, or BATCH_BYTES of them) is
held at a time. What grows with the export is one hash and name per image, to find
duplicates within it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from botocore.exceptions import BotoCoreError, ClientError
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from app.db import utcnow
from app.imports import writer
from app.imports.coco import CocoSource
from app.imports.folders import FolderSource
from app.imports.labelstudio import LabelStudioSource
from app.imports.mapping import ClassMap
from app.imports.plan import Census, Mode, Refused, Skipped, Tally, labels_of
from app.imports.records import SourceError, SourceImage
from app.imports.yolo import YoloSource
from app.inspections.validation import InvalidImage, check_image
from app.storage import ObjectStore

BATCH_IMAGES = 200
BATCH_BYTES = 64 * 1024 * 1024
NAME = re.compile(r"[\w.\-]{1,90}")


class Source(Protocol):
    format: str

    @property
    def default_name(self) -> str: ...
    def records(self) -> Iterator[SourceImage]: ...
    def stops(self, census: Census) -> list[str]: ...


@dataclass(frozen=True)
class SourceOptions:
    names: Sequence[str] | None = None
    id_map: dict[int, str] | None = None
    splits: Sequence[str] | None = None
    images: Path | None = None
    severities: Sequence[str] = ()


def open_source(fmt: str, path: Path, options: SourceOptions) -> Source:
    """The reader of an export, or SourceError saying what is wrong with it."""
    given = {"--names": options.names, "--id-map": options.id_map, "--images": options.images}
    allowed = {"yolo": {"--names", "--id-map"}, "coco": {"--images"},
               "labelstudio": {"--images"}, "folders": set()}[fmt]  # fmt: skip
    wrong = [option for option, value in given.items() if value and option not in allowed]
    if wrong:
        raise SourceError(f"{', '.join(wrong)} is not for {fmt} exports")
    if fmt == "yolo":
        return YoloSource(path, names=options.names, id_map=options.id_map, splits=options.splits)
    if fmt == "coco":
        return CocoSource(path, images=options.images, splits=options.splits)
    if fmt == "labelstudio":
        if options.splits:
            raise SourceError("a Label Studio export has no splits; leave --split out")
        return LabelStudioSource(path, severities=options.severities, images=options.images)
    return FolderSource(path, splits=options.splits)


def source_of(name: str) -> str:
    """The source recorded on imported items: "import:<name>"."""
    if not NAME.fullmatch(name):
        raise SourceError(f"--name {name!r}: use up to 90 letters, digits, '.', '_' or '-'")
    return f"import:{name}"


@dataclass(frozen=True)
class ImportOptions:
    source: str  # "import:<name>"
    mode: Mode
    unlabeled_is_negative: bool = False
    dry_run: bool = False
    max_bytes: int = 20 * 1024 * 1024
    max_pixels: int = 40_000_000
    batch_images: int = BATCH_IMAGES
    batch_bytes: int = BATCH_BYTES


def run_import(
    *,
    session: Session,
    store: ObjectStore | None,
    records: Iterable[SourceImage],
    class_map: ClassMap,
    options: ImportOptions,
    progress: Callable[[], object] = lambda: None,
) -> Tally:
    """Read, check and (unless a dry run) write every record; what happened to each.
    A dry run needs no store (making a local one would create its folder)."""
    if store is None and not options.dry_run:
        raise ValueError("an import that writes needs an object store")
    tally = Tally()
    seen: dict[str, str] = {}
    # A photo to inspect is accepted as an upload is, one transaction each.
    limit = 1 if options.mode == "inspect" else options.batch_images
    batch: list[writer.Pending] = []
    held = 0
    try:
        for record in records:
            pending = _read(record, class_map, options, tally, seen)
            progress()
            if pending is None:
                continue
            batch.append(pending)
            held += len(pending.image.data)
            if len(batch) >= limit or held >= options.batch_bytes:
                _flush(session, store, batch, options, tally)
                batch, held = [], 0
        if batch:
            _flush(session, store, batch, options, tally)
    except (SQLAlchemyError, OSError, BotoCoreError, ClientError) as exc:
        # The batch in hand rolled back; the ones before are committed and a re-run skips them.
        session.rollback()
        raise ImportStopped(tally, exc) from exc
    return tally


class ImportStopped(RuntimeError):
    """The database or the object store failed mid-way; `tally` says what was imported."""

    def __init__(self, tally: Tally, cause: Exception) -> None:
        super().__init__(f"{type(cause).__name__}: {cause}")
        self.tally = tally


def _read(
    record: SourceImage, class_map: ClassMap, options: ImportOptions, tally: Tally,
    seen: dict[str, str],
) -> writer.Pending | None:  # fmt: skip
    if record.problem:
        tally.refused.append((record.name, record.problem))
        return None
    try:
        image = check_image(record.path.read_bytes(), filename="the file",
                            max_bytes=options.max_bytes, max_pixels=options.max_pixels)  # fmt: skip
    except (OSError, InvalidImage) as exc:
        tally.refused.append((record.name, str(exc)))
        return None
    if image.content_hash in seen:
        tally.duplicates.append((record.name, seen[image.content_hash]))
        return None
    try:
        labels = labels_of(record, image.width, image.height, class_map, mode=options.mode,
                           unlabeled_is_negative=options.unlabeled_is_negative)  # fmt: skip
    except Refused as exc:
        tally.refused.append((record.name, str(exc)))
        return None
    except Skipped as exc:
        tally.skipped[str(exc)] += 1
        return None
    seen[image.content_hash] = record.name
    return writer.Pending(record, image, labels, writer.external_id_of(record.name))


def _flush(
    session: Session,
    store: ObjectStore | None,
    batch: list[writer.Pending],
    options: ImportOptions,
    tally: Tally,
) -> None:
    """Write the batch's new images in one transaction (in a dry run, only count them)."""
    if not options.dry_run:
        writer.lock(session)
    present = writer.present(session, [p.image.content_hash for p in batch])
    fresh = [p for p in batch if p.image.content_hash not in present]
    taken = writer.paths_taken(session, options.source, [p.external_id for p in fresh])
    tally.present += len(batch) - len(fresh)
    changed = "imported under this --name before with other bytes (the file changed?); "
    changed += "import it under another --name"
    tally.refused += [(p.record.name, changed) for p in fresh if p.external_id in taken]
    new = [p for p in fresh if p.external_id not in taken]
    if store is None or options.dry_run or not new:
        session.rollback()
    elif options.mode == "verified":
        writer.write_verified(session, store, options.source, new, utcnow())
        session.commit()
    else:
        for item in new:  # one in a batch (run_import): accept() commits, and so unlocks
            writer.write_for_inspection(session, store, options.source, item)
    for item in new:
        tally.count(item.record, item.labels)
