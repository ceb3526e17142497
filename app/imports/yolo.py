"""YOLO exports: a folder with data.yaml (names; train/val/test image folders), or a flat
folder of images with .txt label files and the names from --names or classes.txt.

An image's label file is found as Ultralytics finds it: the last `images` folder of its
path replaced by `labels`, with .txt for its suffix; failing that, a .txt beside it. A
line is `class cx cy w h` in fractions of the upright image; a longer line with an odd
count is a polygon (segmentation export) and becomes the box around it. An empty label
file is a clean garment; a missing one is no label at all (--unlabeled-is-negative).

Real exports are messy, and nothing here guesses: ids outside the names (Roboflow
exports sometimes count from 1) stop the import with a message naming the files and the
--id-map that would fix them; a split whose images have no labels stops it too
(app.imports.plan.label_stops); a bad line refuses its image with the line.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import yaml

from app.imports.files import image_files, relative
from app.imports.plan import EXAMPLES, Census
from app.imports.records import SourceBox, SourceError, SourceImage

SPLITS = ("train", "val", "test")
YAML_NAMES = ("data.yaml", "data.yml", "dataset.yaml", "dataset.yml")
FRACTION_LIMIT = 1.5  # beyond this a "fraction" is a pixel coordinate: refused, not clipped


class YoloSource:
    format = "yolo"

    def __init__(
        self,
        path: Path,
        *,
        names: Sequence[str] | None = None,
        id_map: dict[int, str] | None = None,
        splits: Sequence[str] | None = None,
    ) -> None:
        self.root = path if path.is_dir() else path.parent
        yaml_path = path if path.is_file() else _find_yaml(path)
        self.names_from = "--names"
        self.parts: list[tuple[str | None, Path]] = []  # (split, images folder or list)
        if yaml_path is not None:
            data = _read_yaml(yaml_path)
            self.names_from = yaml_path.name
            yaml_names = _names(data, yaml_path)
            self.parts = _split_parts(data, yaml_path, splits)
        else:
            classes = _classes_txt(self.root)
            yaml_names = classes[1] if classes else {}
            self.names_from = classes[0] if classes else "no data.yaml, classes.txt or --names"
            self.parts = [(None, self.root)]
        self.names = dict(enumerate(names)) if names else yaml_names
        if names:
            self.names_from = "--names"
        self.names.update(id_map or {})

    @property
    def default_name(self) -> str:
        return self.root.resolve().name

    def records(self) -> Iterator[SourceImage]:
        for split, part in self.parts:
            for path in _images_of(part):
                yield self._record(path, split)

    def _record(self, path: Path, split: str | None) -> SourceImage:
        name = relative(path, self.root)
        label_path = label_file(path)
        if label_path is None:
            return SourceImage(path, name, split, units="fraction", labelled=False)
        try:
            text = label_path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            unreadable = f"{relative(label_path, self.root)}: unreadable ({exc})"
            return SourceImage(path, name, split, units="fraction", problem=unreadable)
        boxes, unknown, bad_line = parse_label_file(text, self.names)
        problem = f"{relative(label_path, self.root)} {bad_line}" if bad_line else None
        return SourceImage(path, name, split, tuple(boxes), "fraction", problem=problem,
                           unknown_ids=tuple(unknown))  # fmt: skip

    def stops(self, census: Census) -> list[str]:
        """Class ids outside the names: the import cannot know what they are."""
        if not census.unknown_ids:
            return []
        return [unknown_ids_message(census, self.names, self.names_from)]


def label_file(image: Path) -> Path | None:
    """The image's label file, found as Ultralytics finds it, or None."""
    parts = image.parts
    if "images" in parts:
        at = len(parts) - 1 - parts[::-1].index("images")
        swapped = Path(*parts[:at], "labels", *parts[at + 1 :]).with_suffix(".txt")
        if swapped.is_file():
            return swapped
    beside = image.with_suffix(".txt")
    return beside if beside.is_file() else None


def parse_label_file(
    text: str, names: dict[int, str]
) -> tuple[list[SourceBox], list[int], str | None]:
    """(boxes, class ids outside the names, the first bad line) of one label file."""
    boxes: list[SourceBox] = []
    unknown: list[int] = []
    for number, line in enumerate(text.splitlines(), start=1):
        values = line.split()
        if not values:
            continue
        try:
            class_id, box, note = _parse_line(values)
        except ValueError as exc:
            return [], [], f"line {number}: {exc}"
        if class_id not in names:
            unknown.append(class_id)
            continue
        x1, y1, x2, y2 = box
        boxes.append(SourceBox(names[class_id], x1, y1, x2, y2, note=note))
    return boxes, unknown, None


def _parse_line(values: list[str]) -> tuple[int, tuple[float, float, float, float], str | None]:
    n = len(values)
    if n == 6:
        raise ValueError("6 values (class cx cy w h confidence?): these look like a model's "
                         "predictions, not labels")  # fmt: skip
    if n != 5 and (n < 7 or n % 2 == 0):
        raise ValueError(f"{n} values; a YOLO line is `class cx cy w h` (or a polygon)")
    try:
        class_value = float(values[0])
        numbers = [float(v) for v in values[1:]]
    except ValueError:
        raise ValueError(f"{' '.join(values)!r} is not numbers") from None
    if not class_value.is_integer() or class_value < 0:
        raise ValueError(f"class {values[0]!r} is not a class id")
    if any(not 0 - FRACTION_LIMIT < v < FRACTION_LIMIT for v in numbers):
        raise ValueError("coordinates beyond 1: YOLO boxes are fractions of the image "
                         "(pixel coordinates?)")  # fmt: skip
    if n == 5:
        cx, cy, w, h = numbers
        return int(class_value), (cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2), None
    xs, ys = numbers[0::2], numbers[1::2]
    return int(class_value), (min(xs), min(ys), max(xs), max(ys)), "polygon"


def unknown_ids_message(census: Census, names: dict[int, str], names_from: str) -> str:
    known = ", ".join(f"{i}={n}" for i, n in sorted(names.items())) or "none"
    lines = [f"class ids without a name (names from {names_from}: {known}):"]
    for class_id, count in sorted(census.unknown_ids.items()):
        files = ", ".join(census.unknown_id_files[class_id][:EXAMPLES])
        more = ", ..." if count.images > EXAMPLES else ""
        lines.append(
            f"  id {class_id}: {count.boxes} boxes in {count.images} files ({files}{more})"
        )
    used = set(census.unknown_ids) | {i for i, n in names.items() if n in census.classes}
    if names and 0 not in used and max(used) == len(names):
        shifted = " ".join(f"--id-map {i + 1}={names[i]}" for i in sorted(names))
        lines.append(
            "the ids look shifted by one (0 is never used, and the largest id is one past the "
            f"last name), as some Roboflow exports are; if so, pass: {shifted}"
        )
    lines.append("name each id with --id-map ID=NAME, or give every name in id order with "
                 "--names a,b,c (a flat folder has no data.yaml to take them from)")  # fmt: skip
    return "\n".join(lines)


def _find_yaml(folder: Path) -> Path | None:
    for name in YAML_NAMES:
        if (folder / name).is_file():
            return folder / name
    return None


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise SourceError(f"{path}: not a YAML file Loupe can read ({exc})") from exc
    if not isinstance(data, dict):
        raise SourceError(f"{path}: expected keys names, train, val, test")
    return data


def _names(data: dict[str, Any], path: Path) -> dict[int, str]:
    names = data.get("names")
    if isinstance(names, list):
        out = {i: str(n) for i, n in enumerate(names)}
    elif isinstance(names, dict) and all(str(k).isdigit() for k in names):
        out = {int(k): str(v) for k, v in names.items()}
    else:
        raise SourceError(f"{path}: `names` must be a list or an {{id: name}} map")
    nc = data.get("nc")
    if nc is not None and nc != len(out):
        raise SourceError(f"{path}: nc is {nc} but names has {len(out)} entries; make them agree "
                          "(or pass --names a,b,c in id order)")  # fmt: skip
    return out


def _split_parts(
    data: dict[str, Any], yaml_path: Path, wanted: Sequence[str] | None
) -> list[tuple[str | None, Path]]:
    base = yaml_path.parent
    if data.get("path"):
        base = (base / str(data["path"])).resolve()
    parts: list[tuple[str | None, Path]] = []
    for split in wanted or SPLITS:
        entries = data.get(split)
        if entries is None:
            if wanted:
                raise SourceError(f"{yaml_path}: no `{split}` entry, but --split asks for it")
            continue
        for entry in entries if isinstance(entries, list) else [entries]:
            folder = _resolve(str(entry), base, yaml_path, split)
            # One folder named by two splits (`train: images` and `val: images`, as an
            # export without splits writes for Ultralytics) is read once, as the first.
            if all(folder.resolve() != seen.resolve() for _, seen in parts):
                parts.append((split, folder))
    if not parts:
        raise SourceError(f"{yaml_path}: none of {', '.join(SPLITS)} is given")
    return parts


def _resolve(entry: str, base: Path, yaml_path: Path, split: str) -> Path:
    """A split's folder or list file; '../x' is also tried as 'x', as Ultralytics does
    (Roboflow writes `train: ../train/images` beside a data.yaml in the root)."""
    tried = [base / entry]
    if entry.startswith("../"):
        tried.append(base / entry[3:])
    for path in tried:
        if path.exists():
            return path
    looked = " and ".join(str(p) for p in tried)
    raise SourceError(f"{yaml_path}: {split}: {entry} does not exist (looked at {looked}); "
                      "fix the path, or leave the split out with --split")  # fmt: skip


def _classes_txt(root: Path) -> tuple[str, dict[int, str]] | None:
    for path in (root / "classes.txt", root / "labels" / "classes.txt"):
        if path.is_file():
            lines = [ln.strip() for ln in path.read_text(encoding="utf-8").splitlines()]
            return relative(path, root), dict(enumerate(ln for ln in lines if ln))
    return None


def _images_of(part: Path) -> Iterator[Path]:
    if part.is_file() and part.suffix == ".txt":
        for line in part.read_text(encoding="utf-8").splitlines():
            if line.strip():
                path = Path(line.strip())
                yield path if path.is_absolute() else (part.parent / path)
        return
    yield from image_files(part)
