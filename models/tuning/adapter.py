"""A tuned adapter on disk: peft's files plus a manifest, and loading it onto the base.

The adapter directory holds what peft's `save_pretrained` writes (`adapter_config.json`,
`adapter_model.safetensors`) and `tuning.json`: the base model's version, the LoRA
settings, the target-module regex, steps, seed, kinds, the instruction snapshot, the
losses, and `content_hash`, the sha256 over the adapter files. The loader refuses an
adapter whose files do not match that hash or whose base is not the model it is given:
a LoRA delta on other weights is noise. A classifier with an adapter reports the version
`<base version>+lora-<hash prefix>`, so results say which adapter answered.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from importlib.metadata import version as package_version
from pathlib import Path
from typing import Any

from peft import PeftModel
from transformers import Qwen2_5_VLForConditionalGeneration

from models.classifier import QwenClassifier
from models.tuning.lora import Tuned

MANIFEST = "tuning.json"
FORMAT = "loupe-lora/1"
# peft writes a model card naming the base by its local path: it is not needed to load,
# and it would make the same adapter hash differently in another directory.
_DROPPED = ("README.md",)


class AdapterMismatch(ValueError):
    """The adapter's files or its base do not match its manifest."""


def save_adapter(tuned: Tuned, out_dir: str | Path, snapshot: str | None = None) -> dict[str, Any]:
    """Writes the adapter and its manifest; `out_dir` is complete or absent, never half."""
    out = Path(out_dir)
    if out.exists() and any(out.iterdir()):
        raise FileExistsError(f"{out} already holds files; an adapter is never overwritten")
    staging = out.with_name(f".{out.name}.tmp-{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    try:
        # The base is named by its version, not its path, for the same reason as _DROPPED.
        for config in tuned.model.peft_config.values():
            config.base_model_name_or_path = tuned.base_version
        # Embeddings are never tuned; "auto" would look the base up on the hub to check.
        tuned.model.save_pretrained(str(staging), save_embedding_layers=False)
        for name in _DROPPED:
            (staging / name).unlink(missing_ok=True)
        manifest = _manifest(tuned, snapshot, content_hash(staging))
        (staging / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
        if out.exists():
            out.rmdir()  # empty, as checked above
        out.parent.mkdir(parents=True, exist_ok=True)
        os.replace(staging, out)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return manifest


def _manifest(tuned: Tuned, snapshot: str | None, digest: str) -> dict[str, Any]:
    o = tuned.options
    return {
        "format": FORMAT,
        "base_version": tuned.base_version,
        "content_hash": digest,
        "version": tuned_version(tuned.base_version, digest),
        "snapshot": snapshot,
        "kinds": tuned.kinds,
        "examples": tuned.examples,
        "rank": o.rank,
        "alpha": o.alpha,
        "dropout": o.dropout,
        "target_modules": o.target_modules,
        "steps": o.steps,
        "batch_size": o.batch_size,
        "learning_rate": o.learning_rate,
        "warmup": o.warmup,
        "final_lr_share": o.final_lr_share,
        "weight_decay": o.weight_decay,
        "grad_clip": o.grad_clip,
        "seed": o.seed,
        "max_pixels": o.max_pixels,
        "losses": {
            "before": tuned.loss_before,
            "after": tuned.loss_after,
            "eval_examples": min(o.eval_examples, tuned.examples),
            "steps": tuned.losses,
        },
        "device": tuned.device,
        "dtype": tuned.dtype,
        "seconds": round(tuned.seconds, 1),
        "libraries": {name: package_version(name) for name in ("peft", "transformers", "torch")},
    }


def content_hash(adapter_dir: str | Path) -> str:
    """sha256 over every file's name and bytes except the manifest, in name order."""
    root = Path(adapter_dir)
    digest = hashlib.sha256()
    for path in sorted(p for p in root.iterdir() if p.is_file() and p.name != MANIFEST):
        digest.update(path.name.encode() + b"\0")
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


def tuned_version(base_version: str, digest: str) -> str:
    return f"{base_version}+lora-{digest[:10]}"


def read_manifest(adapter_dir: str | Path) -> dict[str, Any]:
    """The manifest, after checking the adapter's files against its content hash."""
    root = Path(adapter_dir)
    manifest: dict[str, Any] = json.loads((root / MANIFEST).read_text(encoding="utf-8"))
    if manifest.get("format") != FORMAT:
        raise AdapterMismatch(f"{root} is not a {FORMAT} adapter")
    if content_hash(root) != manifest["content_hash"]:
        raise AdapterMismatch(f"{root}: adapter files do not match the manifest's content hash")
    return manifest


def attach_adapter(
    model: Qwen2_5_VLForConditionalGeneration,
    adapter_dir: str | Path,
    base_version: str,
    adapter_name: str = "default",
) -> PeftModel:
    """Injects the adapter's LoRA layers into `model` in place, for inference.

    `model` itself then answers with the adapter (its projections are LoRA layers), so
    code that holds the plain model, like QwenClassifier, scores with it unchanged. The
    returned PeftModel can load more adapters (`load_adapter`) and switch between them
    (`set_adapter`, `disable_adapter`).
    """
    return _attach(model, adapter_dir, read_manifest(adapter_dir), base_version, adapter_name)


def _attach(
    model: Qwen2_5_VLForConditionalGeneration,
    adapter_dir: str | Path,
    manifest: dict[str, Any],
    base_version: str,
    adapter_name: str,
) -> PeftModel:
    if manifest["base_version"] != base_version:
        raise AdapterMismatch(
            f"adapter was tuned on {manifest['base_version']}, not on {base_version}"
        )
    peft_model = PeftModel.from_pretrained(
        model, str(adapter_dir), adapter_name=adapter_name, is_trainable=False
    )
    peft_model.eval()
    return peft_model


def load_tuned_classifier(
    model_dir: str | Path, adapter_dir: str | Path, **classifier_options: Any
) -> QwenClassifier:
    """The production classifier (QwenClassifier.load, same options) with the adapter."""
    classifier = QwenClassifier.load(model_dir, **classifier_options)
    manifest = read_manifest(adapter_dir)
    _attach(classifier.model, adapter_dir, manifest, classifier.version, "default")
    classifier.version = tuned_version(classifier.version, manifest["content_hash"])
    return classifier
