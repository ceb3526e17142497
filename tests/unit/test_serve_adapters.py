"""Adapters per arm, the pure parts: the user_config, the runner following the registry,
the classifier replica's choice between reloading and swapping, the lock that keeps a
swap out of a batch, and adapter directories as a publication leaves them.

The real thing (tiny Qwen2.5-VL, real adapters, Ray Serve) is
tests/integration/test_serve_adapters.py.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from models.contracts import ModelPair
from models.serve import deployments, runner
from models.serve.app import AppSettings
from models.serve.deployments import SwapLock
from models.tuning import adapter as adapter_module
from models.tuning.adapter import (
    FORMAT,
    MANIFEST,
    AdapterMismatch,
    content_hash,
    read_manifest,
    resolve_adapter_dir,
)


def test_each_arms_classifier_is_told_its_adapter() -> None:
    settings = AppSettings(
        champion=ModelPair("", "/m/base"),
        challenger=ModelPair(
            "", "/m/base", "v2", 1.0, "s3://models/adapters/a1#sha256=" + "0" * 64
        ),
    )
    configs = settings.user_configs()
    assert configs["Classifier"]["adapter_dir"] == ""  # present: taking one off is a change
    assert configs["ChallengerClassifier"]["adapter_dir"].startswith("s3://models/adapters/a1")
    assert configs["Classifier"]["model_dir"] == configs["ChallengerClassifier"]["model_dir"]


def test_the_runner_follows_a_change_of_adapter(monkeypatch: pytest.MonkeyPatch) -> None:
    deployed: list[dict[str, Any]] = []
    monkeypatch.setattr(runner, "deploy", lambda **kwargs: deployed.append(kwargs))
    options = {"detector_dir": "", "classifier_dir": "/m/base", "max_regions": 2, "port": 1}
    configured = {key: options.get(key) for key in runner.FOLLOWED}
    plan = {"classifier_dir": "/m/base", "classifier_adapter": None,
            "challenger_classifier_dir": "/m/base", "challenger_classifier_adapter": "/a/1",
            "challenger_share": 0.5, "experiment": "tuned"}  # fmt: skip

    applied = runner._follow_once(lambda: plan, options, configured, dict(configured))
    assert deployed[-1]["challenger_classifier_adapter"] == "/a/1"
    assert deployed[-1]["classifier_adapter"] is None and deployed[-1]["max_regions"] == 2
    assert "port" not in deployed[-1]
    assert runner._follow_once(lambda: plan, options, configured, applied) is applied
    assert len(deployed) == 1  # nothing changed, nothing deployed

    plan = {**plan, "challenger_classifier_adapter": "/a/2"}
    runner._follow_once(lambda: plan, options, configured, applied)
    assert len(deployed) == 2 and deployed[-1]["challenger_classifier_adapter"] == "/a/2"


class _FakeClassifier:
    def __init__(self, settings: dict[str, Any]) -> None:
        self.settings = settings
        self.version = "base-1"
        self.prompt_version = "v2"


class _FakeSwitch:
    """Stands in for models.tuning.adapter.AdapterSwitch."""

    made: list[_FakeSwitch] = []

    def __init__(self, classifier: _FakeClassifier) -> None:
        self.classifier = classifier
        self.calls: list[tuple[str, Any]] = []
        _FakeSwitch.made.append(self)

    def check(self, path: Path) -> dict[str, Any]:
        if "bad" in str(path):
            raise AdapterMismatch("adapter was tuned on another base")
        self.calls.append(("check", path))
        return {"content_hash": str(path)}

    def switch(self, path: Path | None, manifest: dict[str, Any] | None = None) -> None:
        self.calls.append(("switch", path))
        self.classifier.version = f"base-1+lora-{path.name}" if path else "base-1"


def test_a_change_of_adapter_alone_swaps_it_without_reloading_the_base(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    loads: list[tuple[dict[str, Any], str]] = []

    def load(settings: dict[str, Any], adapter_dir: str, device: str) -> tuple[Any, Any]:
        loads.append((settings, adapter_dir))
        model = _FakeClassifier(settings)
        if not adapter_dir:
            return model, None
        switch = _FakeSwitch(model)
        switch.switch(Path(adapter_dir))
        return model, switch

    _FakeSwitch.made.clear()
    monkeypatch.setattr(deployments, "_load_classifier", load)
    monkeypatch.setattr(adapter_module, "AdapterSwitch", _FakeSwitch)
    monkeypatch.setattr(adapter_module, "resolve_adapter_dir", lambda uri: Path(uri))
    replica = deployments.Classifier.func_or_class()
    config = {"model_dir": "/m/base", "language": "en", "prompt_version": "v2",
              "temperature": 1.0, "adapter_dir": ""}  # fmt: skip

    def reconfigure(**changes: Any) -> None:
        asyncio.run(replica.reconfigure({**config, **changes}))

    reconfigure()
    assert len(loads) == 1 and replica.versions()["classifier_version"] == "base-1"
    model = replica.model
    reconfigure(adapter_dir="/a/one")
    reconfigure(adapter_dir="/a/one")  # the same again: nothing to do
    assert len(loads) == 1 and replica.model is model  # the base stayed loaded
    assert replica.versions()["classifier_version"] == "base-1+lora-one"
    with pytest.raises(AdapterMismatch):
        reconfigure(adapter_dir="/a/bad")
    assert replica.versions()["classifier_version"] == "base-1+lora-one"  # refused, untouched
    reconfigure(adapter_dir="/a/two")
    reconfigure(adapter_dir="")
    assert len(loads) == 1 and replica.versions()["classifier_version"] == "base-1"
    assert _FakeSwitch.made[0].calls == [
        ("check", Path("/a/one")), ("switch", Path("/a/one")),
        ("check", Path("/a/two")), ("switch", Path("/a/two")), ("switch", None),
    ]  # fmt: skip

    # Anything else changes too: a new base object, loaded with the adapter on.
    reconfigure(adapter_dir="/a/three", temperature=1.5)
    settings = {k: v for k, v in config.items() if k != "adapter_dir"}
    assert loads[-1] == ({**settings, "temperature": 1.5}, "/a/three")
    assert len(loads) == 2 and replica.model is not model
    assert replica.versions()["classifier_version"] == "base-1+lora-three"
    reconfigure(adapter_dir="", temperature=1.5)  # off again, on the reloaded base
    assert len(loads) == 2 and replica.versions()["classifier_version"] == "base-1"


def test_a_swap_waits_for_running_batches_and_later_batches_wait_for_it() -> None:
    lock = SwapLock()
    events: list[str] = []
    first_in, release_first = threading.Event(), threading.Event()

    def batch(name: str, hold: threading.Event | None = None) -> None:
        with lock.batch():
            events.append(f"{name} start")
            if hold is not None:
                first_in.set()
                assert hold.wait(5)
            events.append(f"{name} end")

    def swap() -> None:
        with lock.swap():
            events.append("swap")

    first = threading.Thread(target=batch, args=("first", release_first))
    first.start()
    assert first_in.wait(5)
    batch("beside")  # batches share the model: this one runs while the first is running
    swapper = threading.Thread(target=swap)
    swapper.start()
    deadline = time.monotonic() + 5
    while not lock._swaps and time.monotonic() < deadline:  # the swap is waiting
        time.sleep(0.005)
    later = threading.Thread(target=batch, args=("later",))
    later.start()
    time.sleep(0.05)  # long enough to start, were it not waiting for the swap
    assert events == ["first start", "beside start", "beside end"]  # both wait for "first"
    release_first.set()
    for thread in (first, swapper, later):
        thread.join(5)
    assert events[3:] == ["first end", "swap", "later start", "later end"]


def _fake_adapter(root: Path) -> Path:
    """An adapter directory as save_adapter leaves it, with stand-in weights."""
    root.mkdir(parents=True)
    (root / "adapter_config.json").write_text(json.dumps({"r": 4}))
    (root / "adapter_model.safetensors").write_bytes(bytes(range(256)) * 4)
    manifest = {"format": FORMAT, "base_version": "classifier-0123456789",
                "content_hash": content_hash(root)}  # fmt: skip
    (root / MANIFEST).write_text(json.dumps(manifest))
    return root


def test_a_published_copy_of_an_adapter_still_verifies(tmp_path: Path) -> None:
    from app.learning.publish import publish_model
    from models.model_store import MANIFEST as STORE_MANIFEST

    original = _fake_adapter(tmp_path / "tuned" / "adapter-1")
    uri, _ = publish_model(original, str(tmp_path / "models"), "classifier-adapters")
    published = Path(uri)
    assert (published / STORE_MANIFEST).is_file()
    assert content_hash(published) == content_hash(original)
    assert read_manifest(published) == read_manifest(original)
    (published / "adapter_config.json").write_text(json.dumps({"r": 8}))
    with pytest.raises(AdapterMismatch, match="content hash"):
        read_manifest(published)


def test_adapter_uris_resolve_to_adapter_directories(tmp_path: Path) -> None:
    adapter = _fake_adapter(tmp_path / "adapter")
    assert resolve_adapter_dir(str(adapter)) == adapter.resolve()
    assert resolve_adapter_dir(f"file://{adapter}") == adapter.resolve()
    with pytest.raises(FileNotFoundError, match="does not exist"):
        resolve_adapter_dir(str(tmp_path / "missing"))
    (tmp_path / "plain").mkdir()
    with pytest.raises(AdapterMismatch, match="no tuning.json"):
        resolve_adapter_dir(str(tmp_path / "plain"))
    with pytest.raises(ValueError, match="unsupported adapter URI scheme 'https'"):
        resolve_adapter_dir("https://example.com/adapter")
    with pytest.raises(ValueError, match="no adapter URI"):
        resolve_adapter_dir("")
