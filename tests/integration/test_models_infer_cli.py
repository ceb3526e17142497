"""`loupe infer`: in-process when no Serve app answers, through Serve when one does."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from app.cli import main
from tests.fixtures.serve import TinyModels
from tests.support import free_port, garment_photo, reset_caches

pytestmark = pytest.mark.integration


@pytest.fixture
def photos(tmp_path: Path) -> list[str]:
    paths = []
    for seed in range(2):
        path = tmp_path / f"garment-{seed}.png"
        path.write_bytes(garment_photo(seed=seed))
        paths.append(str(path))
    return paths


def run(args: list[str], env: dict[str, str]) -> str:
    with pytest.MonkeyPatch.context() as mp:
        for name, value in env.items():
            mp.setenv(name, value)
        reset_caches()
        try:
            result = CliRunner().invoke(main, ["infer", *args], catch_exceptions=False)
        finally:
            mp.undo()
            reset_caches()
    assert result.exit_code == 0, result.output
    return result.stdout  # progress bars of the model loading go to stderr


def test_in_process_with_reasons(tiny_models: TinyModels, photos: list[str]) -> None:
    env = {
        "LOUPE_SERVE_URL": f"http://127.0.0.1:{free_port()}/inspection",  # nobody answers
        "LOUPE_DETECTOR_URI": str(tiny_models.detector_dir),
        "LOUPE_CLASSIFIER_URI": str(tiny_models.classifier_dir),
        "LOUPE_DETECTOR_MAX_REGIONS": "1",
        "LOUPE_THRESHOLD_LOW": "0",
    }
    report = json.loads(run([*photos, "--json", "--reasons", "--language", "ko"], env))
    assert report["source"] == "in-process" and report["arm"] == "champion"
    assert report["route"]["kind"] == "review", report["route"]
    assert [r["photo_index"] for r in report["regions"]] == [0, 1]
    assert len(report["reasons"]) == 2
    region = report["regions"][0]["classification"]
    assert sum(region["type_distribution"].values()) == pytest.approx(1.0)
    assert {"round_trip_ms", "reasons_ms", "detect_ms"} <= set(report["timings_ms"])
    text = run(photos[:1], {**env, "LOUPE_DETECTOR_URI": ""})  # classifier-only
    assert "cold_start" in text and "(none: classifier-only)" in text


def test_through_the_running_serve_app(serve_url: str, photos: list[str]) -> None:
    text = run(photos[:1], {"LOUPE_SERVE_URL": serve_url})
    assert f"source: serve at {serve_url}" in text
    assert "region 0: photo 0" in text and "types:" in text and "timings:" in text
