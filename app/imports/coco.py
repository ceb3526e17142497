"""COCO exports: an instances JSON (images, annotations, categories) and its image folder.

PATH is the JSON file, or a folder holding one or more (a Roboflow export has one per
split folder: train/_annotations.coco.json). A JSON's split is its folder's name or the
one in its file name (instances_val2017.json -> val). An image's `file_name` is looked up
under --images, beside the JSON, in an `images` folder beside it, and in the folder
named after the JSON (annotations/instances_val2017.json -> val2017/).

Boxes are `bbox` [x, y, w, h] in pixels: x1 = x, x2 = x + w. `iscrowd` 1 marks a group of
objects labelled as one (with RLE segmentation). COCO's evaluation ignores such regions;
Loupe has no ignore regions, and a cluster of defects (pilling, a spray of stains) is
exactly what one box of that class means to an inspector, so a crowd annotation's bbox
is kept as one box of its class and counted in the summary. An image listed without
annotations is a clean garment: COCO lists every instance of an image it lists.
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from app.imports.files import relative
from app.imports.records import SourceBox, SourceError, SourceImage

SPLIT_NAMES = {"train": "train", "val": "val", "valid": "val", "test": "test"}


class CocoSource:
    format = "coco"

    def __init__(
        self, path: Path, *, images: Path | None = None, splits: Sequence[str] | None = None
    ) -> None:
        self.root = path if path.is_dir() else path.parent
        files = [path] if path.is_file() else _json_files(path)
        if not files:
            raise SourceError(f"{path}: no COCO JSON file (*.json) in it or its subfolders")
        self.files = [(f, _split_of(f)) for f in files]
        if splits:
            self.files = [(f, s) for f, s in self.files if s in splits]
            if not self.files:
                raise SourceError(f"{path}: no JSON of the splits {', '.join(splits)}")
        self.images_dir = images

    @property
    def default_name(self) -> str:
        return self.root.resolve().name

    def records(self) -> Iterator[SourceImage]:
        for path, split in self.files:
            yield from self._records_of(path, split)

    def stops(self, census: object) -> list[str]:
        return []

    def _records_of(self, path: Path, split: str | None) -> Iterator[SourceImage]:
        data = _load(path)
        categories = {c.get("id"): str(c.get("name")) for c in data["categories"]}
        by_image: defaultdict[Any, list[dict[str, Any]]] = defaultdict(list)
        for annotation in data["annotations"]:
            by_image[annotation.get("image_id")].append(annotation)
        roots = self._image_roots(path)
        for entry in data["images"]:
            yield self._record(entry, by_image.get(entry.get("id"), []), categories, roots,
                               split, path)  # fmt: skip

    def _image_roots(self, path: Path) -> list[Path]:
        named = re.sub(r"^instances_", "", path.stem)
        roots = [path.parent, path.parent / "images", path.parent.parent / named]
        return ([self.images_dir] if self.images_dir else []) + roots

    def _record(
        self, entry: dict[str, Any], annotations: list[dict[str, Any]],
        categories: dict[Any, str], roots: list[Path], split: str | None, json_path: Path,
    ) -> SourceImage:  # fmt: skip
        file_name = str(entry.get("file_name", ""))
        found = next((r / file_name for r in roots if (r / file_name).is_file()), None)
        name = relative(found or roots[0] / file_name, self.root)
        width, height = entry.get("width"), entry.get("height")
        known = (width, height) if isinstance(width, int) and isinstance(height, int) else None
        if found is None:
            looked = ", ".join(str(r) for r in dict.fromkeys(roots))
            return SourceImage(roots[0] / file_name, name, split,
                               problem=f"{json_path.name}: {file_name} not found (looked in "
                                       f"{looked}); pass --images DIR")  # fmt: skip
        boxes = []
        for annotation in annotations:
            try:
                boxes.append(_box(annotation, categories))
            except ValueError as exc:
                return SourceImage(found, name, split, size=known,
                                   problem=f"{json_path.name}: annotation "
                                           f"{annotation.get('id')}: {exc}")  # fmt: skip
        return SourceImage(found, name, split, tuple(boxes), "pixels", size=known)


def _box(annotation: dict[str, Any], categories: dict[Any, str]) -> SourceBox:
    category = annotation.get("category_id")
    if category not in categories:
        raise ValueError(f"category {category!r} is not in categories")
    bbox = annotation.get("bbox")
    if not isinstance(bbox, list) or len(bbox) != 4:
        raise ValueError("bbox is not [x, y, width, height]")
    try:
        x, y, w, h = (float(v) for v in bbox)
    except (TypeError, ValueError):
        raise ValueError(f"bbox {bbox} is not numbers") from None
    note = "crowd" if annotation.get("iscrowd") else None
    return SourceBox(categories[category], x, y, x + w, y + h, note=note)


def _json_files(folder: Path) -> list[Path]:
    found = sorted(folder.glob("*.json")) or sorted(folder.glob("*/*.json"))
    return [f for f in found if not f.name.startswith(".")]


def _split_of(path: Path) -> str | None:
    if path.parent.name.lower() in SPLIT_NAMES:
        return SPLIT_NAMES[path.parent.name.lower()]
    match = re.search(r"(train|valid|val|test)", path.stem.lower())
    return SPLIT_NAMES[match.group(1)] if match else None


def _load(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise SourceError(f"{path}: not a JSON file Loupe can read ({exc})") from exc
    missing = [k for k in ("images", "annotations", "categories") if not isinstance(
        data.get(k) if isinstance(data, dict) else None, list)]  # fmt: skip
    if missing:
        raise SourceError(f"{path}: not a COCO instances file (no {', '.join(missing)} list)")
    return data
