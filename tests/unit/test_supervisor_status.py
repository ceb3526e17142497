"""The supervisor's status file and what /healthz makes of it (none where no supervisor runs)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from app import health
from app.config import Settings
from app.supervisor import STATUS_FILE, read_status, write_status

WORKER = {"state": "running", "restarts": 2, "last_exit": -9, "next_attempt_at": None}


def test_the_status_file_round_trips_and_is_replaced_whole(tmp_path):
    path = tmp_path / STATUS_FILE
    write_status(path, {"worker": WORKER})
    write_status(path, {"worker": {**WORKER, "restarts": 3}})
    assert read_status(path) == {"worker": {**WORKER, "restarts": 3}}
    assert [p.name for p in tmp_path.iterdir()] == [STATUS_FILE]  # no temporary file left


@pytest.mark.parametrize("content", [None, "", "{not json", '{"children": {}}', "[1, 2]"])
def test_no_file_or_a_broken_one_means_no_supervisor(tmp_path, content):
    path = tmp_path / STATUS_FILE
    if content is not None:
        path.write_text(content)
    assert read_status(path) is None


def test_a_file_left_by_a_supervisor_that_is_gone_is_ignored(tmp_path):
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)  # fmt: skip
    path = tmp_path / STATUS_FILE
    path.write_text(json.dumps({"pid": int(gone.stdout), "children": {"worker": WORKER}}))
    assert read_status(path) is None
    path.write_text(json.dumps({"pid": os.getpid(), "children": {"worker": WORKER}}))
    assert read_status(path) == {"worker": WORKER}


@pytest.fixture
def var_dir(tmp_path, monkeypatch):
    monkeypatch.setattr(health, "CHECKS", {"database": lambda settings: "ok"})
    return tmp_path


def healthz_body(var_dir) -> tuple[int, dict]:
    response = health.healthz(Settings(var_dir=var_dir))
    return response.status_code, json.loads(response.body)


def test_healthz_reports_the_children_under_a_supervisor(var_dir):
    write_status(var_dir / STATUS_FILE, {"worker": WORKER})
    status, body = healthz_body(var_dir)
    assert status == 200 and body["supervisor"] == {"worker": WORKER}


def test_healthz_without_a_supervisor_has_no_such_section(var_dir):
    status, body = healthz_body(var_dir)
    assert status == 200 and "supervisor" not in body
    (var_dir / STATUS_FILE).mkdir()  # unreadable as a file: still no error
    assert "supervisor" not in healthz_body(var_dir)[1]


def test_healthz_checks_only_the_parts_asked_for(tmp_path, monkeypatch):
    def down(settings):  # type: ignore[no-untyped-def]
        raise RuntimeError("the Serve app does not answer")

    monkeypatch.setattr(health, "CHECKS", {"database": lambda settings: "ok", "serve": down})
    everything = health.healthz(Settings(var_dir=tmp_path))
    assert everything.status_code == 503
    web = health.healthz(Settings(var_dir=tmp_path), part=["database"])
    assert web.status_code == 200 and list(json.loads(web.body)["parts"]) == ["database"]
