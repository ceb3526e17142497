"""loupe.export_dataset(job_id): builds an /ml/exports archive; a thin adapter to
app.exports.jobs.

It runs on the `training` queue: an export reads every photo of a snapshot and writes
an archive of them, minutes of disk and network that must not hold a slot inspections
are waiting for. A second delivery of the same message finds the job taken and stops.
"""

from __future__ import annotations

import logging

from app.task_names import EXPORT_DATASET
from app.telemetry import metrics
from workers.celery_app import celery

log = logging.getLogger(__name__)


@celery.task(name=EXPORT_DATASET)
def export_dataset(job_id: int) -> str:
    from app.exports.jobs import run_job

    outcome = run_job(int(job_id))
    metrics.EXPORTS.labels(outcome).inc()
    log.info("export job %s: %s", job_id, outcome)
    return outcome
