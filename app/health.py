"""GET /healthz: is every part of the system up? 200 only when all of them are.

Open without login so that probes and `make run` can call it; it names parts, never
addresses or secrets. `?part=database` asks about the named parts only: a web pod's
readiness asks about what the web app itself needs, since marking every web pod unready
when Serve is down would refuse uploads the outbox would have kept for it.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from concurrent.futures import ThreadPoolExecutor
from typing import Annotated, Any, Literal

import redis
from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse
from sqlalchemy import text

from app.config import Settings, redis_client_url
from app.db import get_engine
from app.deps import SettingsDep

router = APIRouter(tags=["health"])
TIMEOUT_S = 2.0


def _database(settings: Settings) -> str:
    with get_engine().connect() as conn:
        conn.execute(text("SELECT 1"))
    return "ok"


def _redis(settings: Settings) -> str:
    client = redis.Redis.from_url(redis_client_url(settings.redis_url), socket_timeout=TIMEOUT_S)
    try:
        client.ping()
    finally:
        client.close()
    return "ok"


def _serve(settings: Settings) -> str:
    from models.serve.client import ping

    if not ping(settings.serve_url, timeout=TIMEOUT_S):
        raise RuntimeError("the Serve app does not answer")
    return "ok"


def _worker(settings: Settings) -> str:
    from workers.celery_app import celery

    replies = celery.control.ping(timeout=1.0)
    if not replies:
        raise RuntimeError("no Celery worker answered")
    return f"{len(replies)} worker(s)"


# Each check is handed the request's settings; the database and worker checks use the
# process's engine and Celery app instead, which were built from the same settings.
CHECKS = {"database": _database, "redis": _redis, "serve": _serve, "worker": _worker}
Part = Literal["database", "redis", "serve", "worker"]


def check_all(
    settings: Settings, parts: Collection[str] | None = None
) -> dict[str, dict[str, Any]]:
    """Every check's answer, or only those of `parts`."""
    checks = {name: c for name, c in CHECKS.items() if not parts or name in parts}

    def run(check: Callable[[Settings], str]) -> dict[str, Any]:
        try:
            return {"ok": True, "detail": check(settings)}
        except Exception as exc:
            return {"ok": False, "detail": f"{type(exc).__name__}: {exc}"[:300]}

    with ThreadPoolExecutor(max_workers=len(checks)) as pool:
        futures = {name: pool.submit(run, check) for name, check in checks.items()}
        return {name: f.result() for name, f in futures.items()}


def supervisor(settings: Settings) -> dict[str, Any] | None:
    """Under `loupe run`: each child's state and restarts, from the supervisor's status file
    (app.supervisor explains why a file). None where no supervisor runs (docker-compose)."""
    from app.supervisor import STATUS_FILE, read_status

    try:
        return read_status(settings.var_dir / STATUS_FILE)
    except Exception:  # a report about restarts must never take /healthz down with it
        return None


# 503 names the parts that are down; it is /healthz's answer, not a failure of its own.
UNHEALTHY = {"description": "A part is down.", "content": {"application/json": {"schema": {}}}}


@router.get("/healthz", responses={503: UNHEALTHY})
def healthz(
    settings: SettingsDep,
    part: Annotated[
        list[Part] | None,
        Query(description="Check only these parts (repeat for several); default: all."),
    ] = None,
) -> JSONResponse:
    parts = check_all(settings, part)
    healthy = all(p["ok"] for p in parts.values())
    body: dict[str, Any] = {"status": "ok" if healthy else "unavailable", "parts": parts}
    # Informational: a child that is restarting already shows as a part that is down.
    if (children := supervisor(settings)) is not None:
        body["supervisor"] = children
    return JSONResponse(body, status_code=200 if healthy else 503)
