"""GET /metrics: Prometheus's text, for the addresses LOUPE_METRICS_ALLOW names.

Not in the OpenAPI documents: it is for a scraper, not for stations or client generators,
and a logged-in session does not open it (a scraper has none). Every other caller gets
403 in JSON, as the API's errors are.
"""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST

from app.deps import SettingsDep
from app.telemetry import access
from app.telemetry.exposition import exposition

router = APIRouter(tags=["operators"])
METRICS_PATH = "/metrics"


@router.get(METRICS_PATH, include_in_schema=False)
def metrics(request: Request, settings: SettingsDep) -> Response:
    """This site's metrics: the queue (read now, cached briefly) and every process's
    counters in multiprocess mode."""
    if access.forwarded(request.headers):
        raise HTTPException(
            403, "metrics are not served through a proxy: scrape the web pod's own address"
        )
    host = request.client.host if request.client else None
    if not access.allowed(host, settings.metrics_networks):
        raise HTTPException(
            403, "metrics are readable only from the addresses in LOUPE_METRICS_ALLOW"
        )
    collector = getattr(request.app.state, "queue_collector", None)
    body = exposition(*([collector] if collector is not None else []))
    return Response(body, media_type=CONTENT_TYPE_LATEST)
