"""Loupe's counters and histograms: what happened, counted where it happens.

Each is one in-memory increment (a file write in multiprocess mode), never a query: the
review page's decide-and-next has a statement budget. The queue and the models in service
are not counted here but read at scrape time (app.telemetry.collector).

In multiprocess mode (PROMETHEUS_MULTIPROC_DIR set before prometheus_client is imported:
`make run`, or uvicorn/Celery with several processes) every process writes its values to
files there and /metrics sums them. Labels take a few fixed values only; an id never
becomes a label.
"""

from __future__ import annotations

from collections.abc import Mapping

from prometheus_client import Counter, Histogram

# Seconds: a tiny CPU model answers in tens of milliseconds, a 7B VLM on a busy CPU in tens
# of seconds.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)

UPLOADS = Counter(
    "loupe_uploads", "Garments sent by stations, by outcome (created, duplicate).", ["outcome"]
)
ROUTES = Counter(
    "loupe_routes",
    "Items routed, by route kind (auto_pass, auto_reject, review), reason and audit flag.",
    ["kind", "reason", "audit"],
)
DECISIONS = Counter(
    "loupe_decisions",
    "Inspectors' decisions, by verdict, audit flag and whether it re-reviews a decided item.",
    ["verdict", "audit", "rereview"],
)
UNDOS = Counter("loupe_decision_undos", "Decisions taken back by their inspector.")
SEND_BACKS = Counter("loupe_review_send_backs", "Decided items a lead sent back for re-review.")
INFERENCE_SECONDS = Histogram(
    "loupe_inference_stage_seconds",
    "Inference time per stage as the Serve app measured it (decode, detect, classify, total; "
    "*_model: the models' own share), by arm.",
    ["stage", "arm"],
    buckets=LATENCY_BUCKETS,
)
INFERENCE_FAILURES = Counter(
    "loupe_inference_failures",
    "Failed inference attempts, by reason (inference_unavailable: Serve down, slow or "
    "answering 5xx; error: anything else). Each is retried; the last sends the item to review.",
    ["reason"],
)
LEARNING_RUNS = Counter(
    "loupe_learning_runs",
    "Training, evaluation and tuning runs, by kind and outcome (succeeded, refused, failed...).",
    ["kind", "outcome"],
)
WEBHOOK_DELIVERIES = Counter(
    "loupe_webhook_deliveries",
    "Webhook delivery attempts, by outcome (delivered, retrying, failed, skipped).",
    ["outcome"],
)
EXPORTS = Counter("loupe_exports", "Dataset export jobs, by outcome.", ["outcome"])

STAGES = ("decode", "detect", "classify", "total", "detect_model", "classify_model")


def flag(value: bool) -> str:
    return "true" if value else "false"


def inference_timed(timings: Mapping[str, float], arm: str) -> None:
    """The stage timings of one inference (InferenceResult.timings, in ms)."""
    for stage in STAGES:
        ms = timings.get(f"{stage}_ms")
        if ms is not None:
            INFERENCE_SECONDS.labels(stage, arm or "champion").observe(ms / 1000)


def routed(kind: str, reason: str, is_audit: bool) -> None:
    ROUTES.labels(kind, reason, flag(is_audit)).inc()


def decided(verdict: str, is_audit: bool, rereview: bool) -> None:
    DECISIONS.labels(verdict, flag(is_audit), flag(rereview)).inc()
