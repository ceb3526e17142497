"""A tuned adapter on disk: peft's files plus a manifest, and loading it onto the base.

The adapter directory holds what peft's `save_pretrained` writes (`adapter_config.json`,
`adapter_model.safetensors`) and `tuning.json`: the base model's version, the LoRA
settings, the target-module regex, steps, seed, kinds, the instruction snapshot, the
losses, and `content_hash`, the sha256 over the adapter files. The loader refuses an
adapter whose files do not match that hash or whose base is not the model it is given:
a LoRA delta on other weights is noise. A classifier with an adapter reports the version
`<base version>+lora-<hash prefix>`, so results say which adapter answered.

An adapter is published like a model directory (app.learning.publish): to s3:// with
`loupe-manifest.json` and a pinned URI, or copied with that file inside.
`resolve_adapter_dir` turns such a URI into the local directory, and `content_hash`
ignores the store's manifest, so a published copy verifies as the original did. Serve
keeps the base loaded and swaps adapters on it with `AdapterSwitch`.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from importlib.metadata import version as package_version
from itertools import count
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from peft import PeftModel
from transformers import Qwen2_5_VLForConditionalGeneration

from models.classifier import QwenClassifier
from models.model_store import MANIFEST as STORE_MANIFEST
from models.model_store import fetch
from models.tuning.lora import Tuned

MANIFEST = "tuning.json"
FORMAT = "loupe-lora/1"
# peft writes a model card naming the base by its local path: it is not needed to load,
# and it would make the same adapter hash differently in another directory.
_DROPPED = ("README.md",)
# Not the adapter's content: its own manifest (which holds the hash) and the manifest a
# publication adds (models.model_store), so a published copy hashes as the original.
_NOT_HASHED = (MANIFEST, STORE_MANIFEST)


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
        # Base modules trained in full and saved whole beside the LoRA weights (peft's
        # modules_to_save); [] for a LoRA-only adapter, the production default.
        "trainable_modules": list(o.trainable_modules),
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
    """sha256 over every file's name and bytes except the manifests, in name order."""
    root = Path(adapter_dir)
    digest = hashlib.sha256()
    for path in sorted(p for p in root.iterdir() if p.is_file() and p.name not in _NOT_HASHED):
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


def resolve_adapter_dir(uri: str | Path, cache_dir: str | Path | None = None) -> Path:
    """The local directory of the adapter at `uri`, as the registry records it.

    `s3://bucket/prefix[#sha256=...]` is fetched into the verified model cache
    (models.model_store.fetch, `cache_dir` or its default); `file:///path` and a plain
    path name a local directory. Either way the directory must hold the adapter's
    `tuning.json`; its files are checked against it when the adapter is loaded.
    """
    text = str(uri)
    if not text:
        raise ValueError("no adapter URI given")
    parsed = urlparse(text)
    if parsed.scheme == "s3":
        path = fetch(text, cache_dir)
    elif parsed.scheme == "file":
        path = Path(parsed.path)
    elif parsed.scheme and len(parsed.scheme) > 1:  # one letter is a Windows drive
        raise ValueError(
            f"unsupported adapter URI scheme {parsed.scheme!r} in {text!r}: use s3://, "
            "file:// or a directory"
        )
    else:
        path = Path(text).expanduser()
    if not path.is_dir():
        raise FileNotFoundError(f"adapter directory {text!r} does not exist")
    if not (path / MANIFEST).is_file():
        raise AdapterMismatch(f"{text} is not a tuned adapter: it has no {MANIFEST}")
    return path.resolve()


class AdapterSwitch:
    """The adapter on a loaded classifier: put on, replaced or taken off in place.

    The base weights stay loaded; a switch reads only the adapter (megabytes, where the
    base of a 7B is 15 GB). While an adapter is on, the classifier reports
    `tuned_version(base version, hash)`; with none, the base's own version, and it answers
    exactly as a freshly loaded base does.

    `switch` changes the model under the feet of any code running on it: the caller keeps
    every batch off the model meanwhile (models/serve/deployments.py). `check` only reads
    files, so it may run while batches do, and a bad adapter is refused by it before
    anything on the model changes.
    """

    def __init__(self, classifier: QwenClassifier) -> None:
        self.classifier = classifier
        self.base_version = classifier.version
        self.adapter_dir = ""  # the directory of the adapter on the model, "" for none
        self._peft: PeftModel | None = None
        self._names = count()  # a new name per adapter: peft refuses to load a name twice
        # PeftModel freezes the base, and torch picks other kernels (attention among them)
        # for weights that require grad: taking the adapter off thaws them again, or the
        # base would answer a little differently from a freshly loaded one.
        self._trainable = [p for p in classifier.model.parameters() if p.requires_grad]

    def check(self, adapter_dir: str | Path) -> dict[str, Any]:
        """The adapter's manifest, once its files and its base are checked."""
        manifest = read_manifest(adapter_dir)
        if manifest["base_version"] != self.base_version:
            raise AdapterMismatch(
                f"adapter was tuned on {manifest['base_version']}, not on {self.base_version}"
            )
        return manifest

    def switch(
        self, adapter_dir: str | Path | None, manifest: dict[str, Any] | None = None
    ) -> None:
        """Puts the adapter in `adapter_dir` on in place of the one on, or none if empty.

        `manifest` is `check(adapter_dir)`'s result, when the caller checked it already.
        """
        if not adapter_dir:
            self._take_off()
            return
        manifest = manifest if manifest is not None else self.check(adapter_dir)
        name = f"adapter-{next(self._names)}"
        if self._peft is None:
            self._peft = _attach(
                self.classifier.model, adapter_dir, manifest, self.base_version, name
            )
        else:
            old = self._peft.active_adapter
            try:
                self._peft.load_adapter(str(adapter_dir), adapter_name=name, is_trainable=False)
                self._peft.set_adapter(name, inference_mode=True)
            except Exception:
                if name in self._peft.peft_config:  # half loaded: back to the old one
                    self._peft.set_adapter(old, inference_mode=True)
                    self._peft.delete_adapter(name)
                raise
            self._peft.delete_adapter(old)  # not before: peft keeps one adapter active
        self.classifier.version = tuned_version(self.base_version, manifest["content_hash"])
        self.adapter_dir = str(adapter_dir)

    def _take_off(self) -> None:
        if self._peft is not None:
            # Puts the base's own layers back in place of the LoRA layers (no merging).
            self._peft.unload()
            self._peft = None
            for parameter in self._trainable:
                parameter.requires_grad_(True)
        self.classifier.version = self.base_version
        self.adapter_dir = ""
