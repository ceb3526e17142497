"""Finding image files in an export, in a stable order."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

# What `loupe ingest` sends; the content decides in the end (check_image).
IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff"})


def is_image(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_SUFFIXES and not path.name.startswith(".")


def image_files(folder: Path) -> Iterator[Path]:
    """Every image file under the folder, depth first in name order; hidden files and
    folders (.DS_Store, __MACOSX from a zip) left out. A generator: a folder of a million
    images is never listed at once."""
    for current, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith((".", "__MACOSX")))
        for name in sorted(files):
            path = Path(current) / name
            if is_image(path):
                yield path


def relative(path: Path, root: Path) -> str:
    """The path as messages and external ids show it: relative to the export's root."""
    try:  # found by walking the root: no need to ask the file system
        return path.relative_to(root).as_posix()
    except ValueError:
        pass
    try:
        return path.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return path.as_posix()
