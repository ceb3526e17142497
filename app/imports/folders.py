"""Class folders: PATH/<class>/<images>, image-level labels (crops for the classifier).

The folder name is the class (mapped like any other: `normal/` is a clean crop). With
split folders on top (train/, val/ or valid/, test/) each holds class folders. Images
that lie in no class folder have no label: a folder of bare photos is photos to inspect.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

from app.imports.files import image_files, is_image, relative
from app.imports.records import SourceError, SourceImage

SPLIT_NAMES = {"train": "train", "val": "val", "valid": "val", "test": "test"}


class FolderSource:
    format = "folders"

    def __init__(self, path: Path, *, splits: Sequence[str] | None = None) -> None:
        if not path.is_dir():
            raise SourceError(f"{path}: `folders` takes a folder with one folder per class")
        self.root = path
        tops = _subfolders(path)
        self.parts: list[tuple[str | None, Path]]
        if tops and all(d.name.lower() in SPLIT_NAMES for d in tops):
            self.parts = [(SPLIT_NAMES[d.name.lower()], d) for d in tops]
        else:
            self.parts = [(None, path)]
        if splits:
            self.parts = [(s, d) for s, d in self.parts if s in splits]
            if not self.parts:
                raise SourceError(f"{path}: no split folder of {', '.join(splits)}")

    @property
    def default_name(self) -> str:
        return self.root.resolve().name

    def stops(self, census: object) -> list[str]:
        return []

    def records(self) -> Iterator[SourceImage]:
        for split, folder in self.parts:
            for path in sorted(p for p in folder.iterdir() if p.is_file() and is_image(p)):
                yield SourceImage(path, relative(path, self.root), split, labelled=False)
            for class_folder in _subfolders(folder):
                for path in image_files(class_folder):
                    yield SourceImage(path, relative(path, self.root), split,
                                      label=class_folder.name)  # fmt: skip


def _subfolders(folder: Path) -> list[Path]:
    return sorted(
        d for d in folder.iterdir() if d.is_dir() and not d.name.startswith((".", "__MACOSX"))
    )
