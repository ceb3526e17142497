"""Publishing a trained model to a directory store: whole, hashed, never overwritten."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from app.config import Settings
from app.learning.publish import models_base_uri, publish_model
from models.model_store import MANIFEST, manifest_of


def model_dir(root: Path) -> Path:
    path = root / "detector-run3-202611211200"
    path.mkdir(parents=True)
    (path / "config.json").write_text('{"model_type": "rt_detr"}')
    (path / "model.safetensors").write_bytes(b"\x00" * 32)
    return path


def test_a_directory_store_gets_a_whole_copy_with_its_manifest(tmp_path: Path):
    source = model_dir(tmp_path / "work")
    uri, content_hash = publish_model(source, str(tmp_path / "models"), "detector")
    target = tmp_path / "models" / "detector" / source.name
    assert uri == str(target)
    body = (target / MANIFEST).read_bytes()
    assert hashlib.sha256(body).hexdigest() == content_hash
    assert json.loads(body) == manifest_of(source)
    assert (target / "model.safetensors").read_bytes() == b"\x00" * 32
    assert not list(target.parent.glob(".*partial"))
    with pytest.raises(FileExistsError, match="never overwritten"):
        publish_model(source, f"file://{tmp_path / 'models'}", "detector")


def test_new_versions_go_to_the_configured_place_the_bucket_or_var(tmp_path: Path):
    assert models_base_uri(Settings(retrain_models_uri="s3://ml/models/")) == "s3://ml/models"
    assert models_base_uri(Settings(s3_bucket="site")) == "s3://site/models"
    local = Settings(var_dir=tmp_path, s3_bucket="", retrain_models_uri="")
    assert models_base_uri(local) == str((tmp_path / "models").resolve())
