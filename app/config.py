"""All settings come from LOUPE_* environment variables (one pydantic-settings class).

`make run` (app/standalone.py) fills in the embedded defaults — database, redis, secret
key, model directories — before any process reads these settings.
"""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, PrivateAttr, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from app.policy.routing import DecisionTable, RoutingPolicy, Thresholds
from app.telemetry.access import LOOPBACK, Network, parse_allow_list

PLACEHOLDER_SECRETS = {"", "changeme", "change-me", "secret"}
# Stored on decisions (varchar 50) and used in catalogue keys: tag.<key>.
TAG_KEY = re.compile(r"[a-z0-9_]{1,50}")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="LOUPE_", extra="ignore")
    _routing: tuple[tuple[Any, ...], RoutingPolicy] | None = PrivateAttr(default=None)

    environment: str = "development"  # development | production
    var_dir: Path = Path("var")
    host: str = "127.0.0.1"
    port: int = 8000
    # Where stations and the CLI reach the web app; the status URL is built from it.
    public_url: str = ""

    database_url: str = "postgresql+psycopg://postgres@127.0.0.1:5432/loupe"
    redis_url: str = "redis://127.0.0.1:6379/0"
    secret_key: str = ""

    # Object store: a local directory unless an S3 bucket is configured.
    storage_dir: Path | None = None
    s3_bucket: str = ""
    s3_endpoint_url: str = ""
    s3_region: str = "us-east-1"
    s3_access_key_id: str = ""
    s3_secret_access_key: str = ""
    s3_prefix: str = "photos/"

    # Uploads
    max_upload_bytes: int = 20 * 1024 * 1024
    max_image_pixels: int = 40_000_000
    max_photos_per_inspection: int = 8

    # Models and serving
    detector_uri: str = ""
    classifier_uri: str = ""
    demo_models: bool = False  # set by `make run` when it built tiny random models
    serve_url: str = "http://127.0.0.1:8001/inspection"
    serve_port: int = 8001
    inference_timeout_s: float = 60.0
    inference_max_retries: int = 5
    inference_retry_backoff_s: float = 2.0
    detector_max_regions: int = 20
    classifier_language: str = "en"  # the classifier's prompts and the reasons' language
    # An empty LOUPE_DETECTOR_URI runs classifier-only (cold start: everything to review).
    # A challenger served beside the champion for a share of the items (an experiment).
    challenger_detector_uri: str = ""
    challenger_classifier_uri: str = ""
    challenger_share: float = Field(0.0, ge=0.0, le=1.0)
    experiment: str = ""  # its name; it salts the arm draw (models/arms.py)
    prompt_version: str = "v2"  # models/prompts/<version>.json
    # A site's own instruction template versions (app/instructions/templates/<version>.json
    # are the packaged ones), searched first.
    instruction_templates_dir: Path | None = None
    model_device: str = "cpu"  # cpu | cuda, for the Serve replicas and `loupe infer`
    # s3:// models are downloaded and verified once into this directory.
    model_cache_dir: Path | None = None
    # Reasons are generated only for items routed to review, for at most this many regions.
    explain_max_regions: int = Field(8, ge=0)
    # A box narrower or lower than this cannot be judged: the item goes to review.
    min_region_px: int = Field(4, ge=1)

    # Routing policy (app.policy.routing says the rule; read it through Settings.routing)
    detector_threshold: float = Field(0.25, ge=0.0, le=1.0)
    threshold_high: float = Field(0.95, ge=0.0, le=1.0)
    threshold_low: float = Field(0.70, ge=0.0, le=1.0)
    audit_rate: float = Field(0.02, ge=0.0, le=1.0)
    # JSON: {"hole": {"*": "reject"}} overrides the default (severity -> verdict) table.
    decision_overrides: str = "{}"

    # Review queue
    lease_seconds: int = 300
    review_sla_seconds: int = 4 * 3600
    # Confidence an item gives up over one SLA of waiting: at 1.0 an item at its due time
    # goes ahead of any fresh one (app.review.priority).
    review_aging_weight: float = Field(1.0, ge=0.0, le=10.0)
    # The open review page renews its leases this often while the inspector is active.
    review_heartbeat_seconds: int = Field(60, ge=1)
    # How long an inspector may take a decision back.
    undo_seconds: int = Field(10, ge=0, le=300)
    # Quick tags on the review page, "why the model was wrong": comma-separated keys,
    # named in the catalogues as tag.<key> (an unnamed key shows as itself).
    review_tags: str = "shadow,lighting,white_fabric,print,lint,reflection,texture,garment_label"
    # Region confidences on the review page; a site that wants audits fully blind turns
    # this off (app.review.presenters explains what the numbers reveal).
    review_show_region_confidence: bool = True
    # "Today" for an inspector's own numbers starts at midnight here (an IANA zone name).
    site_timezone: str = "UTC"

    # Feedback and the weekly dashboard. Weeks start on Monday in site_timezone.
    # The rules that suggest an action for each error pattern (JSON; app.policy.patterns);
    # empty uses app/dashboard/pattern_actions.json.
    pattern_actions_file: Path | None = None
    report_top_patterns: int = Field(10, ge=1, le=100)
    dashboard_weeks: int = Field(12, ge=2, le=104)  # the trend charts' span

    # Experiments: a gated candidate serves this share beside the champion, and
    # beat analyses it (app.policy.ab) until it has run this long or each arm has enough.
    experiment_share: float = Field(0.10, gt=0.0, lt=1.0)
    experiment_days: float = Field(7.0, gt=0)
    experiment_min_samples: int = Field(200, ge=1)
    experiment_alpha: float = Field(0.05, gt=0.0, lt=1.0)
    experiment_check_interval_s: float = Field(3600.0, gt=0)
    # A winning challenger is promoted by beat, or waits for an ml user to confirm it.
    experiment_auto_promote: bool = False
    # A candidate that passes its gate becomes the challenger at once (else by hand).
    retrain_auto_stage: bool = True

    # Outbox relay, and the sweeper that re-dispatches items stuck before routing
    outbox_poll_s: float = 0.25
    # Beat's sweep runs this often (two indexed queries). An item left `inferring` by a
    # worker that died (no live worker holds its claim, app.inspections.claims) is
    # dispatched again once its attempt began, or its retry was due, inflight_grace_s ago.
    # The grace spares a retry that starts late because the worker's threads are all busy
    # (a late one dispatched again costs a second inference, never a second route). With
    # these defaults such an item is routed at most about a minute after its worker died.
    sweep_interval_s: float = Field(15.0, gt=0)
    inflight_grace_s: float = Field(45.0, ge=0)
    # Any other item not routed this long is dispatched again: its message was lost (a
    # worker killed as Redis handed it the message takes it along; a broker restarted
    # without persistence loses them all). A queue that is merely long gets a second
    # message per item every stuck_after_s, which costs a lookup, never a second route.
    stuck_after_s: int = Field(120, gt=0)

    # Learning loop: when to retrain, on what, how, and what a candidate must show.
    # The trigger (app.policy.retrain); beat checks it this often and records every check.
    retrain_check_interval_s: float = Field(3600.0, gt=0)
    retrain_min_new_samples: int = Field(1000, ge=1)
    retrain_max_disagreement: float = Field(0.15, ge=0.0, le=1.0)
    retrain_min_class_precision: float = Field(0.70, ge=0.0, le=1.0)
    retrain_min_class_support: int = Field(20, ge=1)
    retrain_window_days: float = Field(7.0, gt=0)  # disagreement and precision look back this far
    # Beat starts no run sooner than this after the last one began: a disagreement rate stays
    # high until a candidate is promoted, and retraining every hour would not lower it.
    retrain_cooldown_s: float = Field(24 * 3600.0, ge=0)
    # A snapshot is refused below these (app.policy.retrain.dataset_problems).
    retrain_min_samples: int = Field(200, ge=1)
    retrain_min_per_class: int = Field(10, ge=0)
    retrain_val_share: float = Field(0.15, ge=0.0, lt=1.0)
    # Fine-tuning from the champion's weights; small defaults that finish on a CPU.
    retrain_steps: int = Field(500, ge=1)
    retrain_batch_size: int = Field(4, ge=1)
    retrain_lr: float = Field(1e-4, gt=0)
    retrain_warmup_steps: int = Field(50, ge=0)
    retrain_seed: int = 0
    retrain_device: str = "cpu"
    # Photos are shrunk to this longest side before training (the processor resizes anyway).
    retrain_max_image_side: int = Field(1024, ge=32)
    # Live progress is written at most this often; the run's heartbeat at least this often.
    retrain_progress_every_s: float = Field(1.0, ge=0)
    retrain_heartbeat_every_s: float = Field(15.0, gt=0)
    # The watchdog fails a running run silent this long, and a run no worker took this long.
    retrain_heartbeat_timeout_s: float = Field(600.0, gt=0)
    retrain_queued_timeout_s: float = Field(3600.0, gt=0)
    retrain_watchdog_interval_s: float = Field(60.0, gt=0)
    # Where new model versions go: s3://bucket/prefix or a directory. Empty: s3://<bucket>/
    # models when LOUPE_S3_BUCKET is set, else <var_dir>/models.
    retrain_models_uri: str = ""
    # The evaluation gate (app.policy.promotion): pass criteria and the regression check.
    gate_min_map50: float = Field(0.85, ge=0.0, le=1.0)
    gate_min_precision: float = Field(0.80, ge=0.0, le=1.0)
    gate_max_regression: float = Field(0.02, ge=0.0, le=1.0)
    # A classifier candidate (weights and prompts): the field report's VLM criteria.
    gate_min_classifier_accuracy: float = Field(0.90, ge=0.0, le=1.0)
    gate_min_human_agreement: float = Field(0.88, ge=0.0, le=1.0)
    # Verified crops a classifier candidate is evaluated on (app.learning.crops).
    classifier_eval_max_crops: int = Field(1000, ge=1)
    classifier_eval_min_crops: int = Field(50, ge=1)
    classifier_eval_batch_size: int = Field(8, ge=1)
    # Instruction tuning of the classifier (app.learning.tuning, models/tuning): a LoRA
    # adapter on the champion's weights, trained on an instruction snapshot's examples.
    # Small defaults that finish on a CPU; a GPU site raises the steps.
    tune_kinds: str = "A,B,C,D"
    tune_min_examples: int = Field(200, ge=1)
    tune_steps: int = Field(200, ge=1)
    tune_batch_size: int = Field(8, ge=1)
    tune_lr: float = Field(2e-4, gt=0)
    tune_rank: int = Field(16, ge=1)
    tune_seed: int = 0
    # A tuned candidate is judged on the frozen test set's crops only (it has seen the rest),
    # at least this many; and it may not call more than this many normal crops in 1,000 a
    # defect (the seed's measure: 88 after facts-only tuning, 17 after all four kinds).
    tune_min_test_crops: int = Field(50, ge=1)
    gate_max_false_positives_per_1000: float = Field(50.0, ge=0.0, le=1000.0)
    # Beat's classifier check (app.learning.trigger): tune when, among the verified regions
    # of the window, the classifier named the wrong type too often or called too many
    # normal crops defects, once this many verified crops are new since the last tuning.
    tune_trigger_min_new_crops: int = Field(500, ge=1)
    tune_trigger_max_error_rate: float = Field(0.10, ge=0.0, le=1.0)
    tune_trigger_max_false_positives_per_1000: float = Field(50.0, ge=0.0, le=1000.0)
    # Webhooks (app.webhooks): each final decision is POSTed, signed, to the endpoints an
    # admin registered, by the `webhooks` queue's worker. A receiver has webhook_timeout_s
    # to answer with a 2xx; a failed attempt is tried again after webhook_backoff_s, then
    # twice that and so on (times a random 0.5-1, so that many retries do not come back
    # together), each wait at most webhook_backoff_max_s, webhook_max_attempts in all.
    # The longest wait stays under the broker's visibility timeout (an hour), past which
    # Redis would hand a waiting retry to a second worker.
    webhook_timeout_s: float = Field(5.0, gt=0.0, le=60.0)
    webhook_max_attempts: int = Field(10, ge=1, le=50)
    webhook_backoff_s: float = Field(5.0, ge=0.0)
    webhook_backoff_max_s: float = Field(900.0, ge=0.0, le=3000.0)

    # Operators (app.telemetry). /metrics on the web app's port answers without a login
    # only to these addresses and CIDR blocks (comma-separated; anyone else gets 403).
    metrics_allow: str = LOOPBACK
    # Workers, beat and the relay serve /metrics on this port when it is set (the chart
    # uses 9808); the web app serves it on its own port.
    metrics_port: int | None = Field(None, ge=1, le=65535)
    # The queue gauges are read from the database at most this often, however often
    # Prometheus scrapes (app.telemetry.collector).
    metrics_cache_s: float = Field(5.0, ge=0.0, le=300.0)
    # json: one JSON object a line with the inspection, request and user ids (models.logs);
    # text: the readable lines `make run` shows.
    log_format: Literal["text", "json"] = "text"

    @property
    def routing(self) -> RoutingPolicy:
        """The routing policy these settings describe; read it, not the raw threshold fields.
        Built once per set of values (a copy with other thresholds gets its own), and a bad
        LOUPE_DECISION_OVERRIDES fails here, on first use."""
        values = (self.detector_threshold, self.threshold_high, self.threshold_low,
                  self.audit_rate, self.decision_overrides)  # fmt: skip
        if self._routing is None or self._routing[0] != values:
            thresholds = Thresholds(*values[:4])
            policy = RoutingPolicy(thresholds, DecisionTable.from_json(self.decision_overrides))
            self._routing = (values, policy)
        return self._routing[1]

    @field_validator("threshold_low")
    @classmethod
    def _low_below_high(cls, v: float, info: ValidationInfo) -> float:
        high = info.data.get("threshold_high", 0.95)
        if v > high:
            raise ValueError("LOUPE_THRESHOLD_LOW must not exceed LOUPE_THRESHOLD_HIGH")
        return v

    @field_validator("metrics_allow")
    @classmethod
    def _allow_list(cls, v: str) -> str:
        try:
            parse_allow_list(v)
        except ValueError as exc:
            raise ValueError(f"LOUPE_METRICS_ALLOW: {exc}") from exc
        return v

    @property
    def metrics_networks(self) -> tuple[Network, ...]:
        """The addresses that may read /metrics without a login."""
        return parse_allow_list(self.metrics_allow)

    @field_validator("review_tags")
    @classmethod
    def _tag_keys(cls, v: str) -> str:
        bad = [k for k in (k.strip() for k in v.split(",")) if k and not TAG_KEY.fullmatch(k)]
        if bad:
            raise ValueError(f"LOUPE_REVIEW_TAGS: tags are keys like white_fabric, not {bad}")
        return v

    @field_validator("tune_kinds")
    @classmethod
    def _instruction_kinds(cls, v: str) -> str:
        kinds = [k.strip().upper() for k in v.split(",") if k.strip()]
        if not kinds or any(k not in ("A", "B", "C", "D") for k in kinds):
            raise ValueError(f"LOUPE_TUNE_KINDS: kinds are A, B, C and D, e.g. A,B,C,D; not {v!r}")
        return v

    @field_validator("site_timezone")
    @classmethod
    def _known_timezone(cls, v: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"LOUPE_SITE_TIMEZONE: unknown time zone {v!r}") from exc
        return v

    @property
    def heartbeat_seconds(self) -> int:
        """The heartbeat interval, never so long that one missed beat loses the lease."""
        return max(1, min(self.review_heartbeat_seconds, self.lease_seconds // 2))

    @property
    def tag_keys(self) -> tuple[str, ...]:
        """The quick tags, in the order the review page shows them."""
        keys = (k.strip() for k in self.review_tags.split(","))
        return tuple(dict.fromkeys(k for k in keys if k))

    def check_secrets(self) -> None:
        """Refuse to run in production with a placeholder secret."""
        if self.environment == "production" and self.secret_key in PLACEHOLDER_SECRETS:
            raise RuntimeError("LOUPE_SECRET_KEY must be set to a real secret in production")

    @property
    def photo_dir(self) -> Path:
        return self.storage_dir or (self.var_dir / "photos")

    @property
    def model_cache(self) -> Path:
        return self.model_cache_dir or (self.var_dir / "model-cache")

    @property
    def base_url(self) -> str:
        return self.public_url.rstrip("/") or f"http://{self.host}:{self.port}"


def redis_client_url(url: str) -> str:
    """redis-py's spelling of a URL that Celery/kombu spell `redis+socket://PATH`."""
    if url.startswith("redis+socket://"):
        return "unix://" + url.removeprefix("redis+socket://")
    return url


@lru_cache
def get_settings() -> Settings:
    return Settings()
