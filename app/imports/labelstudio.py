"""Label Studio's JSON export: one task per image, rectanglelabels regions and choices.

A region's x, y, width and height are percentages of the image (x1 = x/100 * width);
`original_width`/`original_height` say which image size they were drawn on and are
checked against the file. A rotated rectangle becomes the upright box around it, and a
polygonlabels region the box around its points (both counted in the summary). A choice
that names a severity of the taxonomy (minor, moderate, severe) is the severity of the
task's boxes; any other choice is the image's label (a "normal" choice with no box: a
clean garment). Of several annotations of a task the latest not cancelled one counts;
a task nobody annotated has no label. Predictions are never read: they are a model's.

The image is found from the task's data URL: uploads (/data/upload/3/1a2b3c4d-x.jpg, the
8-hex prefix Label Studio adds dropped as well), local files (/data/local-files/?d=dir/x.jpg)
and cloud URLs by their file name, under --images, beside the JSON or in `images/`.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlparse

from app.imports.files import relative
from app.imports.records import SourceBox, SourceError, SourceImage

UPLOAD_PREFIX = re.compile(r"^[0-9a-f]{8}-")
IGNORED_RESULTS = {"textarea", "relation", "number", "rating", "datetime"}


class LabelStudioSource:
    format = "labelstudio"

    def __init__(
        self, path: Path, *, severities: Sequence[str], images: Path | None = None
    ) -> None:
        if path.is_dir():
            files = sorted(p for p in path.glob("*.json") if not p.name.startswith("."))
            if len(files) != 1:
                found = ", ".join(p.name for p in files) or "none"
                raise SourceError(f"{path}: expected one Label Studio JSON export, found {found}; "
                                  "pass the file itself")  # fmt: skip
            path = files[0]
        self.path = path
        self.root = path.parent
        self.severities = {s.lower(): s for s in severities}
        self.roots = [r for r in (images, self.root, self.root / "images") if r is not None]

    @property
    def default_name(self) -> str:
        return self.path.stem

    def stops(self, census: object) -> list[str]:
        return []

    def records(self) -> Iterator[SourceImage]:
        for task in _load(self.path):
            yield self._record(task)

    def _record(self, task: dict[str, Any]) -> SourceImage:
        url = _image_url(task)
        found = self._find(url)
        task_id = task.get("id")
        if found is None:
            looked = ", ".join(str(r) for r in self.roots)
            return SourceImage(self.root / Path(urlparse(url).path).name, f"task {task_id}",
                               problem=f"task {task_id}: image {url} not found (looked for "
                                       f"{', '.join(_candidates(url))} in {looked}); "
                                       "pass --images DIR")  # fmt: skip
        name = relative(found, self.root)
        annotations = [a for a in task.get("annotations") or [] if not a.get("was_cancelled")]
        if not annotations:
            return SourceImage(found, name, units="fraction", labelled=False)
        latest = max(enumerate(annotations),
                     key=lambda ia: (str(ia[1].get("updated_at") or ia[1].get("created_at") or ""),
                                     ia[0]))[1]  # fmt: skip
        notes = ("latest_annotation",) if len(annotations) > 1 else ()
        try:
            return self._labelled(found, name, latest.get("result") or [], notes)
        except ValueError as exc:
            return SourceImage(found, name, units="fraction", problem=f"task {task_id}: {exc}")

    def _labelled(
        self, path: Path, name: str, results: list[dict[str, Any]], notes: tuple[str, ...]
    ) -> SourceImage:
        shapes: list[tuple[str, tuple[float, float, float, float], str | None]] = []
        severity, labels, size = None, [], None
        for result in results:
            kind, value = result.get("type"), result.get("value") or {}
            if result.get("original_width") and result.get("original_height"):
                size = (int(result["original_width"]), int(result["original_height"]))
            if kind in ("rectanglelabels", "polygonlabels"):
                shapes.append(_shape(kind, value, size))
            elif kind == "choices":
                for choice in value.get("choices") or []:
                    if str(choice).lower() in self.severities:
                        severity = self.severities[str(choice).lower()]
                    else:
                        labels.append(str(choice))
            elif kind not in IGNORED_RESULTS:
                raise ValueError(f"{kind} regions are not supported; use rectangles")
        if len(set(labels)) > 1:
            raise ValueError(f"several image labels ({', '.join(labels)}); choose one")
        boxes = tuple(SourceBox(label, *box, severity=severity, note=note)
                      for label, box, note in shapes)  # fmt: skip
        return SourceImage(path, name, boxes=boxes, units="fraction", size=size,
                           label=labels[0] if labels else None, severity=severity,
                           notes=notes)  # fmt: skip

    def _find(self, url: str) -> Path | None:
        for root in self.roots:
            for candidate in _candidates(url):
                if (root / candidate).is_file():
                    return root / candidate
        return None


def _shape(
    kind: str, value: dict[str, Any], size: tuple[int, int] | None
) -> tuple[str, tuple[float, float, float, float], str | None]:
    """(label, box in fractions of the image, note) of one region."""
    names = value.get(kind) or []
    if len(names) != 1:
        raise ValueError(f"a region with {len(names)} labels ({', '.join(names)}); give it one")
    try:
        if kind == "polygonlabels":
            xs, ys = zip(*((float(p[0]), float(p[1])) for p in value["points"]), strict=True)
            return names[0], (min(xs) / 100, min(ys) / 100, max(xs) / 100, max(ys) / 100), "polygon"
        x, y = float(value["x"]), float(value["y"])
        w, h = float(value["width"]), float(value["height"])
        rotation = float(value.get("rotation") or 0)
    except (KeyError, TypeError, ValueError):
        raise ValueError(f"a {kind} region without its coordinates") from None
    if rotation % 360 == 0:
        return names[0], (x / 100, y / 100, (x + w) / 100, (y + h) / 100), None
    if size is None:
        raise ValueError("a rotated region without original_width/original_height")
    return names[0], _upright(x, y, w, h, rotation, size), "rotated"


def _upright(
    x: float, y: float, w: float, h: float, degrees: float, size: tuple[int, int]
) -> tuple[float, float, float, float]:
    """The upright box (fractions) around a rectangle Label Studio rotated clockwise about
    its top-left corner. The rotation happens in pixels: percent units stretch differently
    along x and y on an image that is not square."""
    width, height = size
    a = math.radians(degrees)
    px, py, pw, ph = x / 100 * width, y / 100 * height, w / 100 * width, h / 100 * height
    corners = [(0.0, 0.0), (pw, 0.0), (pw, ph), (0.0, ph)]
    xs = [px + cx * math.cos(a) - cy * math.sin(a) for cx, cy in corners]
    ys = [py + cx * math.sin(a) + cy * math.cos(a) for cx, cy in corners]
    return min(xs) / width, min(ys) / height, max(xs) / width, max(ys) / height


def _image_url(task: dict[str, Any]) -> str:
    data = task.get("data") or {}
    value = data.get("image") or next((v for v in data.values() if isinstance(v, str)), "")
    return str(value)


def _candidates(url: str) -> list[str]:
    """Paths (relative to an image root) the task's image may have, most specific first."""
    parsed = urlparse(url)
    out = []
    if "d" in parse_qs(parsed.query):
        local = unquote(parse_qs(parsed.query)["d"][0])
        out += [local, Path(local).name]
    if not parsed.scheme and not url.startswith("/"):
        out.append(unquote(parsed.path))  # relative to the export, as `loupe export` writes
    name = unquote(Path(parsed.path).name)
    out.append(name)
    if UPLOAD_PREFIX.match(name):
        out.append(UPLOAD_PREFIX.sub("", name))
    return [c for c in dict.fromkeys(out) if c]


def _load(path: Path) -> list[dict[str, Any]]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise SourceError(f"{path}: not a JSON file Loupe can read ({exc})") from exc
    if isinstance(data, dict) and "data" in data:
        data = [data]
    if not isinstance(data, list) or not all(isinstance(t, dict) for t in data):
        raise SourceError(f"{path}: not a Label Studio JSON export (a list of tasks)")
    if data and "data" not in data[0]:
        raise SourceError(f"{path}: tasks without `data`: this looks like the JSON-MIN or CSV "
                          "export; export as JSON from Label Studio")  # fmt: skip
    return data
