"""s3:// model URIs against a real HTTP S3 endpoint (moto's server): fetch once, verify."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from models.detector import RTDetrDetector
from models.loading import model_version, resolve_model_dir
from models.model_store import MANIFEST, ModelIntegrityError, fetch, publish, s3_client
from tests.fixtures.serve import TinyModels

pytestmark = pytest.mark.integration


@pytest.fixture
def bucket(s3_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> str:
    import uuid

    monkeypatch.setenv("LOUPE_S3_ENDPOINT_URL", s3_endpoint)
    name = f"models-{uuid.uuid4().hex[:8]}"
    s3_client().create_bucket(Bucket=name)
    return name


def test_a_published_detector_loads_from_s3_and_is_downloaded_once(
    bucket: str, tiny_models: TinyModels, tmp_path: Path
) -> None:
    pinned = publish(tiny_models.detector_dir, f"s3://{bucket}/detector/v1")
    assert pinned.startswith(f"s3://{bucket}/detector/v1#sha256=")
    cache = tmp_path / "cache"
    detector = RTDetrDetector.load(resolve_model_dir(pinned, cache))
    local = Path(resolve_model_dir(pinned, cache))
    assert local.is_relative_to(cache) and (local / MANIFEST).is_file()
    # Named after the prefix; the content part equals the directory it was published from.
    assert detector.version.startswith("v1-")
    assert detector.version.split("-")[-1] == model_version(tiny_models.detector_dir).split("-")[-1]
    weights = local / "model.safetensors"
    mtime = weights.stat().st_mtime_ns
    assert fetch(f"s3://{bucket}/detector/v1", cache) == local  # no second download
    assert weights.stat().st_mtime_ns == mtime


def test_a_file_that_does_not_match_its_hash_is_refused(
    bucket: str, tiny_models: TinyModels, tmp_path: Path
) -> None:
    publish(tiny_models.detector_dir, f"s3://{bucket}/detector/v2")
    data = bytearray((tiny_models.detector_dir / "model.safetensors").read_bytes())
    data[len(data) // 2] ^= 0xFF  # same size, one bit pattern changed
    s3_client().put_object(Bucket=bucket, Key="detector/v2/model.safetensors", Body=bytes(data))
    cache = tmp_path / "cache"
    with pytest.raises(ModelIntegrityError, match="model.safetensors.*refusing"):
        fetch(f"s3://{bucket}/detector/v2", cache)
    assert not any(cache.rglob("model.safetensors"))  # nothing half-verified is kept


def test_a_consistent_forgery_is_caught_by_the_pinned_hash(
    bucket: str, tiny_models: TinyModels, tmp_path: Path
) -> None:
    """Someone replaces a file and fixes the manifest to match: only the pin can tell."""
    import hashlib

    pinned = publish(tiny_models.detector_dir, f"s3://{bucket}/detector/v3")
    client = s3_client()
    key = f"detector/v3/{MANIFEST}"
    manifest = json.loads(client.get_object(Bucket=bucket, Key=key)["Body"].read())
    config = b'{"model_type": "rt_detr"}'
    client.put_object(Bucket=bucket, Key="detector/v3/config.json", Body=config)
    entry = {"size": len(config), "sha256": hashlib.sha256(config).hexdigest()}
    manifest["files"]["config.json"] = entry
    client.put_object(Bucket=bucket, Key=key, Body=json.dumps(manifest))
    unpinned = fetch(f"s3://{bucket}/detector/v3", tmp_path / "cache")
    assert (unpinned / "config.json").read_bytes() == config  # self-consistent, so accepted
    with pytest.raises(ModelIntegrityError, match="pins"):
        fetch(pinned, tmp_path / "cache")


def test_a_prefix_without_a_manifest_fails_clearly(bucket: str, tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=MANIFEST):
        fetch(f"s3://{bucket}/nothing/here", tmp_path / "cache")


def test_the_cache_survives_a_copy_of_the_model_elsewhere(
    bucket: str, tiny_models: TinyModels, tmp_path: Path
) -> None:
    copy = tmp_path / "copy" / "classifier"
    shutil.copytree(tiny_models.classifier_dir, copy)
    publish(copy, f"s3://{bucket}/classifier/2026-11")
    local = fetch(f"s3://{bucket}/classifier/2026-11", tmp_path / "cache")
    assert {p.name for p in local.iterdir()} >= {"config.json", "model.safetensors", MANIFEST}
