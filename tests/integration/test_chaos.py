"""The chaos suite, short: the whole system as `loupe run` starts it, stations uploading, and in
turn the worker killed, Redis restarted, the Serve app killed and PostgreSQL restarted.
`make chaos` runs the full one (2,000 uploads) and prints the table for bench/README.md.

The sweep is quicker here than by default (every 3 s, 10 s of grace), so that the items a
killed worker held come back within the test's time; what is checked is the same.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from bench.chaos import FAULTS, ChaosOptions, run
from tests.fixtures.serve import TinyModels

pytestmark = pytest.mark.integration

SHORT = ChaosOptions(
    uploads=120,
    stations=8,
    rate=2.0,
    faults=FAULTS,
    down_s=2.0,
    settle_s=3.0,
    heal_timeout_s=180.0,
    drain_timeout_s=240.0,
    env={"LOUPE_SWEEP_INTERVAL_S": "3", "LOUPE_INFLIGHT_GRACE_S": "10"},
)


@pytest.fixture
def work_dir() -> Iterator[Path]:
    # Not under pytest's tmp_path: the embedded PostgreSQL runs as a user of its own, and
    # every pytest session that starts makes pytest's base directory private to root again.
    path = Path(tempfile.mkdtemp(prefix="loupe-chaos-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


def test_every_accepted_upload_is_routed_once_through_every_fault(
    work_dir: Path, tiny_models: TinyModels
):
    report = run(SHORT, work_dir, models=(tiny_models.detector_dir, tiny_models.classifier_dir))
    print(report.table())
    assert report.problems == []
    assert [fault.name for fault in report.faults] == list(FAULTS)
    for fault in report.faults:
        assert fault.healthy_after_s is not None, f"{fault.what}: /healthz never 200 again"
        assert fault.routing_after_s is not None, f"{fault.what}: nothing routed after it"
    assert report.accepted >= SHORT.uploads
    assert report.drain_s is not None
    allowed = {"station 200", "station 201", "station 503", "inspector 200", "inspector 503"}
    assert set(report.statuses) <= allowed
