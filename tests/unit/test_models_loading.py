"""Model URIs and version strings."""

from pathlib import Path

import pytest

from models.loading import model_version, resolve_model_dir


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


def test_s3_is_not_supported_yet() -> None:
    with pytest.raises(ValueError, match="s3://"):
        resolve_model_dir("s3://models/detector/3")


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
