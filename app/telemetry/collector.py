"""The review queue and the models in service, read from the database when /metrics is
scraped (only the web app registers this collector).

These are states, not events: counting them in every process that changes them would
drift (a lease that simply runs out changes nothing anyone could count). Read at scrape
time they are always right. The read is app.review.stats.queue_overview (one pass over
the open tasks on their partial index, as the lead's page does) and one small join over
the model aliases, and its answer is kept for `cache_s`: however many Prometheus servers
scrape, however often, the database sees at most one read per `cache_s`.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.config import Settings
from app.db import session_scope, utcnow
from app.registry.tables import Experiment, ModelAlias, ModelVersion
from app.review import priority, stats
from app.thresholds.bands import settings_in_force

log = logging.getLogger("loupe.telemetry")


@dataclass(frozen=True)
class Reading:
    overview: stats.QueueOverview
    oldest_wait_s: float
    # (kind, alias, version) of each model alias, and the challenger's share of the
    # running experiment (0 when none runs: the challenger then serves nothing).
    models: list[tuple[str, str, str]]
    challenger_share: float


def read(session: Session, settings: Settings) -> Reading:
    """The queue and the models in service, now."""
    now = utcnow()
    band = settings_in_force(settings).routing.thresholds
    overview = stats.queue_overview(
        session=session, now=now, sla_seconds=settings.review_sla_seconds,
        aging_weight=settings.review_aging_weight, low=band.low, high=band.high,
    )  # fmt: skip
    oldest = overview.oldest_created_at
    share = (
        select(Experiment.challenger_share)
        .where(Experiment.status == "running")
        .limit(1)
        .scalar_subquery()
    )
    rows = session.execute(
        select(ModelAlias.kind, ModelAlias.alias, ModelVersion.version, share)
        .join(ModelVersion, ModelVersion.id == ModelAlias.model_version_id)
        .order_by(ModelAlias.kind, ModelAlias.alias)
    ).all()
    running_share = next((float(r[3]) for r in rows if r[3] is not None), 0.0)
    return Reading(
        overview=overview,
        oldest_wait_s=max(0.0, (now - oldest).total_seconds()) if oldest else 0.0,
        models=[(str(kind), str(alias), str(version)) for kind, alias, version, _ in rows],
        challenger_share=running_share,
    )


class QueueCollector(Collector):
    """Gauges of the queue and the models in service, from a cached `read`."""

    def __init__(
        self,
        settings: Settings,
        cache_s: float,
        reader: Callable[[Settings], Reading] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings, self.cache_s, self.clock = settings, cache_s, clock
        self.reader = reader or _read_in_new_session
        self._lock = threading.Lock()
        self._kept: tuple[float, Reading | None] | None = None

    def reading(self) -> Reading | None:
        """The last reading if younger than cache_s, else a new one; None if the database
        could not be read (then tried again after cache_s, not on every scrape)."""
        with self._lock:  # concurrent scrapes wait for one read instead of each making one
            now = self.clock()
            if self._kept is None or now - self._kept[0] >= self.cache_s:
                try:
                    fresh: Reading | None = self.reader(self.settings)
                except Exception as exc:
                    log.warning("metrics: could not read the queue: %s", str(exc)[:200])
                    fresh = None
                self._kept = (now, fresh)
            return self._kept[1]

    def collect(self) -> Iterator[Metric]:
        reading = self.reading()
        ok = GaugeMetricFamily(
            "loupe_queue_read_ok", "1 when the last read of the queue from the database worked."
        )
        ok.add_metric([], 1.0 if reading is not None else 0.0)
        yield ok
        if reading is None:
            return
        yield from _queue(reading)
        yield from _models(reading)


def _read_in_new_session(settings: Settings) -> Reading:
    with session_scope() as session:
        return read(session, settings)


def _gauge(name: str, doc: str, value: float) -> GaugeMetricFamily:
    gauge = GaugeMetricFamily(name, doc)
    gauge.add_metric([], value)
    return gauge


def _queue(reading: Reading) -> Iterator[Metric]:
    overview = reading.overview
    waiting = GaugeMetricFamily(
        "loupe_review_queue_items",
        "Items waiting for review, by priority band (overdue, urgent, high, normal).",
        labels=["band"],
    )
    for band in priority.BANDS:
        waiting.add_metric([band], overview.bands.get(band, 0))
    yield waiting
    yield _gauge(
        "loupe_review_queue_oldest_wait_seconds",
        "How long the oldest item waiting for review has waited (0 when none waits).",
        reading.oldest_wait_s,
    )
    yield _gauge(
        "loupe_review_sla_breaches",
        "Items waiting past their review SLA (LOUPE_REVIEW_SLA_SECONDS).",
        overview.bands.get("overdue", 0),
    )
    yield _gauge(
        "loupe_review_due_soon",
        "Items within 30 minutes of their review SLA.",
        overview.due_soon,
    )
    yield _gauge(
        "loupe_review_leases_held", "Open items an inspector holds right now.", overview.held
    )


def _models(reading: Reading) -> Iterator[Metric]:
    serving = GaugeMetricFamily(
        "loupe_model_in_service",
        "1 per model version an alias points at, by kind (detector, classifier) and arm; "
        "the challenger serves only while an experiment runs (loupe_experiment_share).",
        labels=["kind", "arm", "version"],
    )
    for kind, alias, version in reading.models:
        serving.add_metric([kind, alias, version], 1.0)
    yield serving
    yield _gauge(
        "loupe_experiment_share",
        "The challenger's share of the items in the running experiment (0: none runs).",
        reading.challenger_share,
    )
