"""Model URIs and version strings."""

from pathlib import Path

import pytest

from models.loading import model_version, resolve_model_dir
from models.model_store import parse_s3_uri


def _model_dir(root: Path, config: str = '{"a": 1}') -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "config.json").write_text(config)
    (root / "model.safetensors").write_bytes(bytes(range(256)) * 1000)
    return root


def test_local_directory_and_file_uri_resolve_to_an_absolute_path(tmp_path: Path) -> None:
    model = _model_dir(tmp_path / "m")
    assert resolve_model_dir(str(model)) == str(model.resolve())
    assert resolve_model_dir(f"file://{model}") == str(model.resolve())


def test_hub_ids_pass_through() -> None:
    assert resolve_model_dir("PekingU/rtdetr_r50vd") == "PekingU/rtdetr_r50vd"


def test_s3_uris_name_a_bucket_a_prefix_and_optionally_a_pinned_hash() -> None:
    location = parse_s3_uri("s3://models/detector/v3/")
    assert (location.bucket, location.prefix, location.name) == ("models", "detector/v3", "v3")
    assert location.key("config.json") == "detector/v3/config.json"
    pinned = parse_s3_uri("s3://models/detector/v3#sha256=" + "ab" * 32)
    assert pinned.manifest_sha256 == "ab" * 32
    for bad in ("s3:///prefix", "s3://b/p#md5=abc", "s3://b/p#sha256=short", "http://b/p"):
        with pytest.raises(ValueError):
            parse_s3_uri(bad)


def test_missing_and_non_model_directories_fail_clearly(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        resolve_model_dir(str(tmp_path / "absent"))
    with pytest.raises(ValueError, match="config.json"):
        resolve_model_dir(str(tmp_path))


def test_version_is_stable_across_copies_and_changes_with_content(tmp_path: Path) -> None:
    first = model_version(_model_dir(tmp_path / "a" / "detector"))
    copy = model_version(_model_dir(tmp_path / "b" / "detector"))
    assert first == copy and first.startswith("detector-")
    changed_config = model_version(_model_dir(tmp_path / "c" / "detector", '{"a": 2}'))
    assert changed_config != first
    retrained = _model_dir(tmp_path / "d" / "detector")
    data = bytearray((retrained / "model.safetensors").read_bytes())
    data[len(data) // 2] ^= 0xFF  # same size, different weights
    (retrained / "model.safetensors").write_bytes(bytes(data))
    assert model_version(retrained) != first
