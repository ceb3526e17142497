"""An export written into a directory, whole or not at all.

Everything goes into a temporary directory beside OUT, which is renamed to OUT at the
end: a half-written export (a crash, a full disk, a photo that changed) never sits where
a complete one is expected. Photos are copied from the object store one at a time and
checked against the hash their manifest recorded, so memory holds one photo however
large the export; their bytes are copied as stored (no re-encoding).

An export describes itself in `loupe-export.yaml`: the format, where the data came from, the
class list and its order, the counts, the pixel convention.
"""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import yaml
from PIL import Image

from app.db import utcnow
from app.exports.formats import ROUND_TRIP_TOLERANCE_PX, class_list, image_name, photo_boxes
from app.exports.writers import IMAGES, FormatWriter, dataset_files, open_writer
from app.instructions.export import export_jsonl
from app.learning.photos import PhotoChanged
from app.learning.tables import SPLITS
from app.storage import ObjectStore
from models.taxonomy import load_taxonomy

EXPORT_FORMAT = 1
# Not a .json: COCO and Label Studio readers take every JSON file in a folder for theirs.
REPORT_FILE = "loupe-export.yaml"
INSTRUCTIONS_FILE = "instructions.jsonl"
CROPS = "crops"
CLASS_ORDER = (
    "the taxonomy's defect types in its order (models/taxonomy.json), 'normal' left out; "
    "then types the taxonomy no longer has, sorted"
)
BOX_CONVENTION = {
    "stored": "x1, y1, x2, y2 in float pixels of the photo; (0, 0) is its top-left corner",
    "coco": "bbox [x, y, width, height] in pixels",
    "yolo": "class cx cy w h, normalised to 0..1 by the photo's width and height",
    "labelstudio": "x, y, width, height in percent, with original_width and original_height",
    "round_trip_tolerance_px": ROUND_TRIP_TOLERANCE_PX,
}

# Called with (photos done, photos in all) as the export goes.
Progress = Callable[[int, int], None]


class OutExists(ValueError):
    """OUT is there already and is not an empty directory: an export never overwrites."""


@dataclass(frozen=True)
class ExportReport:
    path: Path
    format: str
    images: int  # photos, or crops for instructions
    boxes: int = 0
    examples: int = 0  # instruction lines
    splits: dict[str, int] = field(default_factory=dict)
    classes: list[str] = field(default_factory=list)
    unknown_labels: list[str] = field(default_factory=list)
    clipped_boxes: int = 0  # boxes that reached past the photo's edge, cut at it
    dropped_boxes: int = 0  # boxes wholly outside their photo


def check_out(out: Path) -> Path:
    """OUT, resolved; OutExists if it is a file or a directory with something in it."""
    out = out.resolve()
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise OutExists(f"{out} already exists and is not an empty directory")
    return out


@contextmanager
def staging(out: Path) -> Iterator[Path]:
    """A temporary directory beside OUT that becomes OUT when the block ends without error
    (rename is atomic on one file system), and is removed when it does not."""
    out = check_out(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.partial-"))
    try:
        yield tmp
        check_out(out)  # nobody wrote there meanwhile
        # An empty OUT is replaced by the rename itself (rename(2) takes an empty directory).
        os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def photo_bytes(store: ObjectStore, key: str, sha256: str) -> bytes:
    """The stored photo, checked as app.learning.photos.fetch_photo checks it, but not
    decoded: an export hands on the very bytes the inspector saw."""
    data = store.get(key)
    digest = hashlib.sha256(data).hexdigest()
    if digest != sha256:
        raise PhotoChanged(f"photo {key} has sha256 {digest}, not {sha256}")
    return data


def _file_name(sample: dict[str, Any], data: bytes) -> str:
    """The photo's name in the export; the format is sniffed only for a key without one."""
    if PurePosixPath(sample["key"]).suffix:
        return image_name(sample["id"], sample["key"])
    try:
        with Image.open(io.BytesIO(data)) as image:
            sniffed = (image.format or "").lower().replace("jpeg", "jpg")
    except OSError:
        sniffed = ""
    return image_name(sample["id"], sample["key"], sniffed)


def _groups(samples: list[dict[str, Any]], split: bool) -> dict[str, list[dict[str, Any]]]:
    """Samples per split folder ("" for all in one); every split has its folder, even an
    empty one, so that tools looking for it find it."""
    if not split:
        return {"": samples}
    groups: dict[str, list[dict[str, Any]]] = {name: [] for name in SPLITS}
    for sample in samples:
        groups[sample["split"]].append(sample)
    return groups


@dataclass
class _Tally:
    done: int = 0
    boxes: int = 0
    clipped: int = 0
    dropped: int = 0


def write_boxes_export(
    *, manifest: dict[str, Any], fmt: str, out: Path, store: ObjectStore, split: bool,
    source: dict[str, Any], progress: Progress | None = None,
) -> ExportReport:  # fmt: skip
    """Write a detector dataset manifest (app.learning.snapshot's samples) as COCO, YOLO or
    Label Studio into OUT; returns what was written."""
    samples = manifest["samples"]
    taxonomy = load_taxonomy()
    labels = (box["label"] for sample in samples for box in sample["boxes"])
    classes, unknown = class_list(taxonomy.type_keys, labels)
    tally, counts, total = _Tally(), dict[str, int](), len(samples)

    def step() -> None:
        if progress:
            progress(tally.done, total)

    step()
    info = {"description": "Loupe: what inspectors verified", "source": source,
            "date_created": utcnow().isoformat()}  # fmt: skip
    with staging(out) as tmp:
        groups = _groups(samples, split)
        for folder_name, group in groups.items():
            (tmp / folder_name / IMAGES).mkdir(parents=True)
            writer = open_writer(fmt, tmp / folder_name, classes, info)
            _write_folder(tmp / folder_name, group, writer, classes, store, tally, step)
            counts[folder_name or "all"] = len(group)
        dataset_files(fmt, tmp, classes, list(groups))
        report = ExportReport(
            path=out.resolve(), format=fmt, images=total, boxes=tally.boxes,
            splits=counts, classes=classes, unknown_labels=unknown,
            clipped_boxes=tally.clipped, dropped_boxes=tally.dropped,
        )  # fmt: skip
        _describe(tmp, report, source, taxonomy.version)
    return report


def _write_folder(
    folder: Path, samples: list[dict[str, Any]], writer: FormatWriter, classes: list[str],
    store: ObjectStore, tally: _Tally, step: Callable[[], None],
) -> None:  # fmt: skip
    """One folder's photos (copied one at a time into its images/) and their annotations."""
    index = {name: i for i, name in enumerate(classes)}
    for sample in samples:
        data = photo_bytes(store, sample["key"], sample["sha256"])
        name = _file_name(sample, data)
        (folder / IMAGES / name).write_bytes(data)
        kept, clipped, dropped = photo_boxes(sample, index)
        writer.add(sample, f"{IMAGES}/{name}", kept)
        tally.done += 1
        tally.boxes += len(kept)
        tally.clipped += clipped
        tally.dropped += dropped
        step()
    writer.close()


def write_instructions_export(
    *, manifest: dict[str, Any], snapshot_id: str, out: Path, store: ObjectStore,
    progress: Progress | None = None,
) -> ExportReport:  # fmt: skip
    """An instruction snapshot as the classifier's chat JSONL (app.instructions.export,
    the same writer as `loupe instructions export`) with its crops, into OUT."""
    crops = len(manifest["crops"])
    if progress:
        progress(0, crops)
    with staging(out) as tmp:
        written = export_jsonl(manifest=manifest, snapshot=snapshot_id, store=store,
                               out=tmp / INSTRUCTIONS_FILE, images=tmp / CROPS)  # fmt: skip
        report = ExportReport(path=out.resolve(), format="instructions", images=written.crops,
                              examples=written.lines)  # fmt: skip
        source = {"kind": "instruction_snapshot", "snapshot": snapshot_id}
        _describe(tmp, report, source, load_taxonomy().version)
    if progress:
        progress(crops, crops)
    return report


def _describe(folder: Path, report: ExportReport, source: dict[str, Any], taxonomy: str) -> None:
    facts = {k: v for k, v in asdict(report).items() if k != "path"}
    body = {
        "loupe_export": EXPORT_FORMAT,
        **facts,
        "source": source,
        "taxonomy_version": taxonomy,
        "created_at": utcnow().isoformat(),
    }
    if report.format != "instructions":
        body |= {"class_order": CLASS_ORDER, "boxes_are": BOX_CONVENTION}
    text = yaml.safe_dump(body, allow_unicode=True, sort_keys=True)
    (folder / REPORT_FILE).write_text(f"# Written by `loupe export`.\n{text}", encoding="utf-8")


def write_export(
    *, fmt: str, manifest: dict[str, Any], source: dict[str, Any], out: Path,
    store: ObjectStore, split: bool = False, progress: Progress | None = None,
) -> ExportReport:  # fmt: skip
    """Any format: an instruction snapshot's manifest as JSONL, a detector dataset
    manifest as boxes."""
    if fmt == "instructions":
        return write_instructions_export(manifest=manifest, snapshot_id=source["snapshot"],
                                         out=out, store=store, progress=progress)  # fmt: skip
    return write_boxes_export(manifest=manifest, fmt=fmt, out=out, store=store, split=split,
                              source=source, progress=progress)  # fmt: skip
