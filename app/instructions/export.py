"""A snapshot as chat-format JSONL, with its crops as PNG files beside it.

Each line is one example in the conversational format trainers for vision-language
models read (TRL's SFTTrainer among them): `messages` holds the system turn (the
production system prompt), the user turn (the crop's image, then the question) and the
assistant turn (the answer); `images` lists the image files in the order the user turns
refer to them, as paths relative to the JSONL file. A crop that oversampling repeats is
written as often as it counts. The crops are cut as the pipeline cuts them (the
snapshot's context padding, the classifier's pixel budget) from the photos the snapshot
names, each checked against its recorded hash.
"""

from __future__ import annotations

import io
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PIL import Image

from app.learning.photos import fetch_photo
from app.storage import ObjectStore
from models.contracts import Box
from models.images import DEFAULT_MAX_PIXELS, crop_with_context, fit_pixel_budget


@dataclass(frozen=True)
class ExportReport:
    path: Path
    images: Path
    lines: int
    crops: int


def chat_record(
    manifest: dict[str, Any], snapshot: str, example: dict[str, Any], image: str
) -> dict[str, Any]:
    """One example as a chat record; `image` is the crop's path relative to the JSONL file."""
    system = manifest["system"][example["language"]]
    return {
        "id": example["id"],
        "snapshot": snapshot,
        "kind": example["kind"],
        "form": example["form"],
        "language": example["language"],
        "defect_type": example["defect_type"],
        "images": [image],
        "messages": [
            {"role": "system", "content": [{"type": "text", "text": system}]},
            {"role": "user", "content": [{"type": "image", "image": image},
                                         {"type": "text", "text": example["user"]}]},
            {"role": "assistant", "content": [{"type": "text", "text": example["assistant"]}]},
        ],
    }  # fmt: skip


def crop_file(crop_id: int) -> str:
    return f"crop-{crop_id}.png"


def export_jsonl(
    *, manifest: dict[str, Any], snapshot: str, store: ObjectStore, out: Path,
    images: Path | None = None,
) -> ExportReport:  # fmt: skip
    """Write the crops into `images` (default: `<out's stem>-crops/` beside it), then the
    JSONL; the JSONL appears whole or not at all."""
    out = out.resolve()
    out.parent.mkdir(parents=True, exist_ok=True)
    images = (images or out.with_name(f"{out.stem}-crops")).resolve()
    images.mkdir(parents=True, exist_ok=True)
    write_crops(manifest, store, images)
    crops = {crop["id"]: crop for crop in manifest["crops"]}
    lines = 0
    fd, tmp = tempfile.mkstemp(dir=out.parent, prefix=f".{out.name}-")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            for example in manifest["examples"]:
                image = Path(os.path.relpath(images / crop_file(example["crop"]), out.parent))
                record = json.dumps(chat_record(manifest, snapshot, example, image.as_posix()),
                                    ensure_ascii=False)  # fmt: skip
                for _ in range(crops[example["crop"]]["repeat"]):
                    f.write(record + "\n")
                    lines += 1
        os.replace(tmp, out)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return ExportReport(out, images, lines, len(crops))


def write_crops(manifest: dict[str, Any], store: ObjectStore, folder: Path) -> None:
    """Every crop of the manifest as a PNG in `folder`; each photo is read once."""
    by_photo: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for crop in manifest["crops"]:
        by_photo.setdefault((crop["key"], crop["sha256"]), []).append(crop)
    for (key, sha256), crops in by_photo.items():
        photo = fetch_photo(store, key, sha256)
        for crop in crops:
            cut(photo, crop["box"], manifest["context"]).save(folder / crop_file(crop["id"]), "PNG")


def crop_png(manifest: dict[str, Any], crop: dict[str, Any], store: ObjectStore) -> bytes:
    """One crop of the manifest as PNG bytes, cut as write_crops cuts it (for the page)."""
    photo = fetch_photo(store, crop["key"], crop["sha256"])
    out = io.BytesIO()
    cut(photo, crop["box"], manifest["context"]).save(out, "PNG")
    return out.getvalue()


def cut(photo: Image.Image, box: list[float], context: float) -> Image.Image:
    """A crop as the pipeline hands it to the classifier."""
    return fit_pixel_budget(crop_with_context(photo, Box(*box), context), DEFAULT_MAX_PIXELS)
