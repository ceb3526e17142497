"""What operators read: the JSON log lines, the /metrics allow-list, the cached queue reading."""

from __future__ import annotations

import json
import logging
import re
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
from prometheus_client import REGISTRY, CollectorRegistry, generate_latest
from pydantic import ValidationError

from app.config import Settings
from app.review.stats import QueueOverview
from app.telemetry import metrics
from app.telemetry.access import LOOPBACK, allowed, parse_allow_list
from app.telemetry.collector import QueueCollector, Reading
from models import logs

ROOT = Path(__file__).resolve().parents[2]


def record(message: str = "routed", *args: object, **extra: object) -> logging.LogRecord:
    rec = logging.LogRecord("loupe.test", logging.INFO, __file__, 1, message, args, None)
    rec.__dict__.update(extra)
    return rec


# --- JSON lines -----------------------------------------------------------------------------


def test_a_json_line_carries_the_trail_and_the_extra_fields():
    formatter = logs.JsonFormatter()
    with logs.trail(request_id="req-1", inspection_id="insp-1"):
        logs.bind(user_id=7, station="dock-3", ignored=None)
        line = formatter.format(record("routed %s", "review", route="review"))
    entry = json.loads(line)
    assert entry["message"] == "routed review" and entry["level"] == "INFO"
    assert entry["logger"] == "loupe.test" and entry["time"].endswith("Z")
    assert (entry["inspection_id"], entry["request_id"], entry["user_id"]) == ("insp-1", "req-1", 7)
    assert entry["station"] == "dock-3" and entry["route"] == "review" and "ignored" not in entry
    assert list(entry)[4:7] == ["inspection_id", "request_id", "user_id"]  # ids first
    # The trail ended with its request: the next line names nothing.
    assert "request_id" not in json.loads(formatter.format(record()))


def test_an_id_given_with_the_line_wins_over_the_trail():
    with logs.trail(inspection_id="from-trail"):
        entry = json.loads(logs.JsonFormatter().format(record(inspection_id="from-line")))
    assert entry["inspection_id"] == "from-line"


def test_a_traceback_stays_on_the_one_line():
    try:
        raise RuntimeError("model exploded\non two lines")
    except RuntimeError:
        rec = record("inference failed")
        rec.exc_info = sys.exc_info()
    line = logs.JsonFormatter().format(rec)
    assert "\n" not in line
    assert "RuntimeError: model exploded" in json.loads(line)["exception"]


def test_bind_outside_a_request_or_task_changes_nothing():
    logs.bind(inspection_id="nowhere")
    assert logs.current() == {}


def test_a_callers_request_id_is_kept_only_when_plain():
    assert logs.request_id("abc-123_4.5:6") == "abc-123_4.5:6"
    for bad in ("", None, "with space", "x" * 129, 'quote"s', "new\nline"):
        made = logs.request_id(bad)
        assert made != bad and len(made) == 32


def test_the_log_format_setting_is_text_or_json(monkeypatch):
    monkeypatch.setenv(logs.FORMAT_ENV, "JSON")
    assert logs.log_format() == "json"
    monkeypatch.setenv(logs.FORMAT_ENV, "yaml")
    with pytest.raises(ValueError, match="text or json"):
        logs.log_format()
    with pytest.raises(ValidationError):
        Settings(log_format="yaml")


# --- who may read /metrics -------------------------------------------------------------------


def test_by_default_only_loopback_reads_the_metrics():
    loopback = parse_allow_list(LOOPBACK)
    assert allowed("127.0.0.1", loopback) and allowed("::1", loopback)
    assert allowed("::ffff:127.0.0.1", loopback)  # a dual-stack socket's spelling
    for caller in ("127.0.0.2", "10.0.0.5", "::2", "testclient", "", None):
        assert not allowed(caller, loopback), caller


def test_the_allow_list_takes_blocks_and_bare_addresses():
    networks = parse_allow_list(" 10.0.0.0/8, 192.168.1.7 ,fd00::/8,")
    assert allowed("10.42.3.9", networks) and allowed("192.168.1.7", networks)
    assert allowed("fd00::1", networks) and allowed("fe80::1%eth0", parse_allow_list("fe80::/10"))
    assert not allowed("192.168.1.8", networks) and not allowed("11.0.0.1", networks)


def test_a_bad_allow_list_is_refused_at_startup():
    with pytest.raises(ValueError, match="'10.0.0.0/33'"):
        parse_allow_list("127.0.0.1,10.0.0.0/33")
    with pytest.raises(ValidationError, match="LOUPE_METRICS_ALLOW"):
        Settings(metrics_allow="everyone")
    assert Settings(metrics_allow="10.0.0.0/8").metrics_networks == parse_allow_list("10.0.0.0/8")


# --- the queue, read at scrape time ----------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def reading() -> Reading:
    bands = {"overdue": 2, "urgent": 1, "high": 0, "normal": 4}
    overview = QueueOverview(7, bands, 3, 1, datetime(2026, 1, 1, tzinfo=UTC))
    models = [("classifier", "champion", "c-2"), ("detector", "champion", "d-5")]
    return Reading(overview, 90.0, models, 0.1)


def scrape(collector: QueueCollector) -> str:
    registry = CollectorRegistry()
    registry.register(collector)
    return generate_latest(registry).decode()


def test_a_scrape_storm_reads_the_database_once_per_cache_period():
    reads, clock = [], Clock()

    def reader(settings: Settings) -> Reading:
        reads.append(clock.now)
        return reading()

    collector = QueueCollector(Settings(), cache_s=5.0, reader=reader, clock=clock)
    text = scrape(collector)
    for _ in range(50):
        scrape(collector)
    assert reads == [0.0]
    clock.now = 5.0
    scrape(collector)
    assert reads == [0.0, 5.0]
    assert 'loupe_review_queue_items{band="overdue"} 2.0' in text
    assert 'loupe_review_queue_items{band="normal"} 4.0' in text
    assert "loupe_review_sla_breaches 2.0" in text and "loupe_review_leases_held 3.0" in text
    assert "loupe_review_queue_oldest_wait_seconds 90.0" in text
    assert 'loupe_model_in_service{arm="champion",kind="detector",version="d-5"} 1.0' in text
    assert "loupe_experiment_share 0.1" in text and "loupe_queue_read_ok 1.0" in text


def test_a_database_that_cannot_be_read_shows_and_is_not_hammered(caplog):
    calls, clock = [], Clock()

    def reader(settings: Settings) -> Reading:
        calls.append(1)
        raise OSError("connection refused")

    collector = QueueCollector(Settings(), cache_s=5.0, reader=reader, clock=clock)
    text = scrape(collector)
    scrape(collector)
    assert "loupe_queue_read_ok 0.0" in text and "loupe_review_queue_items" not in text
    assert len(calls) == 1 and "connection refused" in caplog.text


def test_inference_stages_are_observed_in_seconds():
    def count(stage: str) -> float:
        labels = {"stage": stage, "arm": "challenger"}
        return REGISTRY.get_sample_value("loupe_inference_stage_seconds_count", labels) or 0.0

    def total(stage: str) -> float:
        labels = {"stage": stage, "arm": "challenger"}
        return REGISTRY.get_sample_value("loupe_inference_stage_seconds_sum", labels) or 0.0

    before = count("detect"), total("detect"), count("classify_model")
    metrics.inference_timed({"detect_ms": 250.0, "total_ms": 400.0, "other_ms": 1.0}, "challenger")
    assert count("detect") == before[0] + 1
    assert total("detect") == pytest.approx(before[1] + 0.25)
    assert count("classify_model") == before[2]  # a stage the result did not time


# --- the Grafana dashboard ------------------------------------------------------------------


def exported_names() -> set[str]:
    """Every loupe_* sample name a scrape can show: the counters and histograms, the queue."""
    names = {m.name for m in REGISTRY.collect() if m.name.startswith("loupe_")}
    registry = CollectorRegistry()
    registry.register(QueueCollector(Settings(), cache_s=5.0, reader=lambda s: reading()))
    names |= {m.name for m in registry.collect()}
    suffixes = ("", "_total", "_bucket", "_count", "_sum")
    return {name + suffix for name in names for suffix in suffixes}


def test_the_dashboard_reads_only_metrics_loupe_exports():
    dashboard = json.loads((ROOT / "deploy" / "grafana" / "loupe.json").read_text())
    panels = [p for p in dashboard["panels"] if p["type"] != "row"]
    assert len({p["id"] for p in dashboard["panels"]}) == len(dashboard["panels"])
    exprs = [t["expr"] for p in panels for t in p["targets"]]
    assert exprs and all(t["refId"] for p in panels for t in p["targets"])
    used = {name for expr in exprs for name in re.findall(r"\bloupe_[a-z0-9_]+", expr)}
    assert used and used <= exported_names(), used - exported_names()
    # The queue, the flow, the models, webhooks and exports, and Serve's and Celery's own.
    for name in ("loupe_review_queue_items", "loupe_decisions_total", "loupe_model_in_service",
                 "loupe_webhook_deliveries_total", "loupe_exports_total"):  # fmt: skip
        assert name in used, name
    assert any("ray_serve_" in e for e in exprs) and any("flower_" in e for e in exprs)
