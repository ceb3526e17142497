"""Small exports written by the tests: images drawn with PIL, label files as tools write them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from PIL import Image


def photo(path: Path, size: tuple[int, int] = (64, 48), shade: int = 0, fmt: str = "JPEG") -> Path:
    """A small image whose bytes differ with `shade` (so each has its own content hash)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    image = Image.new("RGB", size, (40 + shade % 200, 90, 140 - shade % 100))
    image.putpixel((shade % size[0], 0), (255, 255, 255))
    image.save(path, fmt)
    return path


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def write_json(path: Path, data: Any) -> Path:
    return write(path, json.dumps(data))


def roboflow_yolo(root: Path, names: list[str], labels: dict[str, dict[str, str]]) -> Path:
    """A Roboflow-style YOLO export: data.yaml in the root with `../train/images` paths,
    and for each split `split/images/*.jpg` with `split/labels/*.txt`. `labels` is
    {split: {stem: label file text}}; a split whose value is None gets no labels folder."""
    lines = [f"names: {json.dumps(names)}", f"nc: {len(names)}"]
    for shade, (split, files) in enumerate(labels.items()):
        folder = "valid" if split == "val" else split
        lines.append(f"{split}: ../{folder}/images")
        for i, (stem, text) in enumerate(files.items()):
            photo(root / folder / "images" / f"{stem}.jpg", shade=10 * shade + i)
            if text is not None:
                write(root / folder / "labels" / f"{stem}.txt", text)
    write(root / "data.yaml", "\n".join(lines) + "\n")
    return root
