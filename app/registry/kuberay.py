"""The model registry driving Serve where KubeRay runs it: `python -m app.registry.kuberay`.

Under `make run` and compose, Serve's own process follows the registry
(app.registry.serving through models.serve.runner). Under KubeRay the RayService
controller starts Serve with the chart's serveConfigV2, and nothing in the Ray cluster
reads the registry. This process does, every few seconds: it puts `serving_plan()`'s
models in place of the chart's `serve` values, makes the Serve config with
models.serve.config (the code the chart's serveConfigV2 is checked against), and when the
models it names differ from the ones running, PUTs it to the head's Serve REST API, the
endpoint KubeRay itself uses. A new model or share is `user_config`, so the replicas
reconfigure without a restart; starting or ending an experiment adds or removes the
challenger's deployments.

KubeRay applies serveConfigV2 again only when the RayService's spec changes or it has no
record of what it applied (a new cluster, an operator restart); this process puts the
registry's models back on the next tick. It never deploys an app that is not there:
bringing Serve up is KubeRay's.
"""

from __future__ import annotations

import copy
import json
import logging
import os
import signal
import threading
from pathlib import Path
from typing import Any

import httpx

from app.db import session_scope
from app.registry.serving import serving_plan
from models.serve.runner import APP_NAME

log = logging.getLogger("loupe.registry.kuberay")
APPLICATIONS_PATH = "/api/serve/applications/"


def with_plan(serve: dict[str, Any], plan: dict[str, Any] | None) -> dict[str, Any]:
    """The chart's `serve` values with the registry's models in place of the configured
    ones; None (an empty registry) keeps them, as serve_forever does."""
    if plan is None:
        return serve
    values = copy.deepcopy(serve)
    models = values["models"]
    if "detector_dir" in plan:
        models["detectorUri"] = plan["detector_dir"] or ""
    if "classifier_dir" in plan:
        models.update(_arm(plan, "classifier"))
    values["challenger"] = {}
    if plan.get("challenger_classifier_dir"):
        values["challenger"] = {
            "detectorUri": plan.get("challenger_detector_dir") or "",
            **_arm(plan, "challenger_classifier", "challenger"),
            "share": float(plan.get("challenger_share") or 0.0),
            "experiment": str(plan.get("experiment") or ""),
        }
    return values


def _arm(plan: dict[str, Any], classifier: str, prefix: str = "classifier") -> dict[str, Any]:
    return {
        "classifierUri": plan[f"{classifier}_dir"],
        "classifierAdapterUri": plan.get(f"{classifier}_adapter") or "",
        "promptVersion": plan.get(f"{prefix}_prompt_version") or "",
        "temperature": plan.get(f"{prefix}_temperature") or 1.0,
    }


def models_of(app: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
    """What a Serve application runs: the builder's args and each deployment's user_config."""
    deployments = {d["name"]: d.get("user_config") for d in app.get("deployments", [])}
    return app.get("args"), deployments


def follow_once(client: httpx.Client, serve: dict[str, Any], plan: dict[str, Any] | None) -> bool:
    """Deploy the registry's models if the running app has others; True if it deployed."""
    from models.serve.config import kuberay_config  # imports Ray's schema classes

    wanted = kuberay_config(with_plan(serve, plan))
    answer = client.get(APPLICATIONS_PATH)
    answer.raise_for_status()
    running = (answer.json().get("applications") or {}).get(APP_NAME) or {}
    deployed = running.get("deployed_app_config")
    if not deployed:
        log.info("Serve app %r is not deployed yet: KubeRay brings it up", APP_NAME)
        return False
    if models_of(deployed) == models_of(wanted["applications"][0]):
        return False
    log.info("serving models change: %s", json.dumps(models_of(wanted["applications"][0])))
    client.put(APPLICATIONS_PATH, json=wanted).raise_for_status()
    return True


def follow_registry() -> dict[str, Any] | None:
    with session_scope() as session:
        return serving_plan(session)


def run_forever(stop: threading.Event, client: httpx.Client, serve: dict[str, Any]) -> None:
    every = float(os.environ.get("LOUPE_SERVE_FOLLOW_S", "5"))
    while not stop.is_set():
        try:
            follow_once(client, serve, follow_registry())
        except Exception:  # noqa: BLE001 - a bad tick must not stop following
            log.exception("could not apply the registry's models; retrying on the next tick")
        stop.wait(every)


def main() -> None:
    """LOUPE_SERVE_VALUES: the chart's `serve` values as JSON (a file); LOUPE_RAY_DASHBOARD_URL:
    the head's dashboard, e.g. http://loupe-head-svc:8265."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    serve = json.loads(Path(os.environ["LOUPE_SERVE_VALUES"]).read_text())
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    with httpx.Client(base_url=os.environ["LOUPE_RAY_DASHBOARD_URL"], timeout=30.0) as client:
        log.info("following the registry for Serve at %s", client.base_url)
        run_forever(stop, client, serve)


if __name__ == "__main__":
    main()
