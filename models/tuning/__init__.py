"""Instruction tuning of the classifier: LoRA on the language model, an adapter on disk.

The product (app/, workers/) calls `tune_classifier` with the base classifier directory,
the exported instruction records (`loupe instructions export`) and an output directory,
and loads the result with `load_tuned_classifier`. The parts:
- data.py: chat records to tensors, rendered as the production scorer renders prompts;
- lora.py: the LoRA wrapping (language projections only) and the training loop;
- adapter.py: the adapter and its manifest on disk, and loading it onto the base.
Nothing here imports the database or the web app.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from models.tuning.adapter import load_tuned_classifier, read_manifest, save_adapter
from models.tuning.data import chat_examples, read_jsonl
from models.tuning.lora import ProgressCallback, Tuned, TuningOptions, tune

__all__ = [
    "TuningOptions",
    "Tuned",
    "load_tuned_classifier",
    "read_manifest",
    "tune_classifier",
]


def tune_classifier(
    model_dir: str | Path,
    records: Iterable[dict[str, Any]],
    *,
    images_root: str | Path,
    out_dir: str | Path,
    options: TuningOptions | None = None,
    snapshot: str | None = None,
    on_progress: ProgressCallback | None = None,
) -> tuple[Tuned, dict[str, Any]]:
    """Tunes an adapter on `records` (image paths relative to `images_root`), saves it
    into `out_dir` and returns the tuned model in memory with the adapter's manifest.

    `snapshot` defaults to the one instruction snapshot the records name, if they name one.
    """
    options = options or TuningOptions()
    out = Path(out_dir)
    if out.exists() and any(out.iterdir()):  # before the hours of training, not after
        raise FileExistsError(f"{out} already holds files; an adapter is never overwritten")
    records = list(records)
    if snapshot is None:
        named = {str(r["snapshot"]) for r in records if r.get("snapshot")}
        snapshot = named.pop() if len(named) == 1 else None
    examples = chat_examples(records, images_root, options.kinds)
    tuned = tune(model_dir, examples, options, on_progress)
    return tuned, save_adapter(tuned, out_dir, snapshot)


def tune_from_jsonl(
    model_dir: str | Path, jsonl: str | Path, out_dir: str | Path, **kwargs: Any
) -> tuple[Tuned, dict[str, Any]]:
    """The same from an exported JSONL file; its images are relative to the file."""
    path = Path(jsonl)
    return tune_classifier(
        model_dir, read_jsonl(path), images_root=path.parent, out_dir=out_dir, **kwargs
    )
