"""Publishing a trained model directory where serving can load it, pinned by its manifest.

An s3:// base goes through models.model_store.publish (files, then the manifest, then a
URI pinned by the manifest's sha256). A directory base gets a copy with the same
manifest file, moved into place whole. Either way the registry records the manifest's
sha256 as the version's content hash, and a published directory is never overwritten.
The directory's name becomes the last part of the URI, which is the name serving puts in
front of the version string (models.loading.model_version), so the registry's version and
the version recorded with every result are the same string.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

from app.config import Settings
from models.model_store import MANIFEST, manifest_of, parse_s3_uri, publish


def models_base_uri(settings: Settings) -> str:
    """Where new versions go: the configured URI, the photo bucket's models/, or var/models."""
    if settings.retrain_models_uri:
        return settings.retrain_models_uri.rstrip("/")
    if settings.s3_bucket:
        return f"s3://{settings.s3_bucket}/models"
    return str((settings.var_dir / "models").resolve())


def publish_model(model_dir: Path, base_uri: str, kind: str) -> tuple[str, str]:
    """(uri, manifest sha256) of the model directory published under base_uri/kind/name."""
    if base_uri.startswith("s3://"):
        uri = publish(model_dir, f"{base_uri}/{kind}/{model_dir.name}")
        pinned = parse_s3_uri(uri).manifest_sha256
        assert pinned is not None  # publish always pins
        return uri, pinned
    root = Path(base_uri.removeprefix("file://"))
    return _copy(model_dir, root / kind / model_dir.name)


def _copy(model_dir: Path, target: Path) -> tuple[str, str]:
    if target.exists():
        raise FileExistsError(f"{target} exists; a published model is never overwritten")
    body = json.dumps(manifest_of(model_dir), indent=1, sort_keys=True).encode()
    staging = target.with_name(f".{target.name}.{os.getpid()}.partial")
    shutil.rmtree(staging, ignore_errors=True)
    try:
        shutil.copytree(model_dir, staging)
        (staging / MANIFEST).write_bytes(body)
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(staging, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return str(target), hashlib.sha256(body).hexdigest()
