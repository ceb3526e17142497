"""Starts and stops a local Ray instance with the inspection app on it.

Ray reads its environment when imported and when it starts its processes, so the
variables below are set before the first `import ray` in this module's functions.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from models import logs

# Serve's own setting for JSON lines; the chart's serveConfigV2 (models.serve.config) uses it too.
JSON_LOGS = {"encoding": "JSON", "log_level": "INFO"}

logger = logging.getLogger(__name__)

APP_NAME = "inspection"
OBJECT_STORE_BYTES = 200 * 1024 * 1024
RAY_ENVIRONMENT = {
    "RAY_AUTH_MODE": "disabled",
    "RAY_USAGE_STATS_ENABLED": "0",  # no telemetry calls from a warehouse machine
    # Without this Ray listens on every interface instead of 127.0.0.1.
    "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",
}
# Deployments call each other over gRPC instead of Ray actor calls: each of the
# ingress's hops then costs about 4 instead of 6 ms on the 2-core development machine,
# and Serve adds 15-16 instead of 21 ms a request (bench/README.md). An operator may
# still set it to "0".
RAY_DEFAULTS = {"RAY_SERVE_USE_GRPC_BY_DEFAULT": "1"}
_REPO_ROOT = str(Path(__file__).resolve().parents[2])


def start(
    *,
    detector_dir: str | Path,
    classifier_dir: str | Path,
    host: str = "127.0.0.1",
    port: int = 8001,
    route_prefix: str = "/inspection",
    num_cpus: int = 2,
    **settings: Any,
) -> str:
    """Starts Ray and the app; returns the ingress URL. Call stop() even if this fails.

    `detector_dir` "" runs the champion classifier-only (cold start). `settings` go to
    `deploy` (challenger, split, thresholds, batching, device).
    """
    os.environ.update(RAY_ENVIRONMENT)
    for name, value in RAY_DEFAULTS.items():
        os.environ.setdefault(name, value)
    # Replicas run in fresh Ray worker processes; they must import `models` as we do.
    paths = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    os.environ["PYTHONPATH"] = os.pathsep.join(dict.fromkeys([_REPO_ROOT, *paths]))
    import ray
    from ray import serve

    started = time.perf_counter()
    ray.init(
        num_cpus=num_cpus,
        object_store_memory=OBJECT_STORE_BYTES,
        include_dashboard=False,
        logging_level=logging.WARNING,
    )
    serve.start(http_options={"host": host, "port": port})
    deploy(
        detector_dir=detector_dir,
        classifier_dir=classifier_dir,
        route_prefix=route_prefix,
        **settings,
    )
    url = f"http://{host}:{port}{route_prefix}"
    logger.info("inspection app serving at %s after %.1f s", url, time.perf_counter() - started)
    return url


def deploy(
    *,
    detector_dir: str | Path,
    classifier_dir: str | Path,
    challenger_detector_dir: str | Path | None = None,
    challenger_classifier_dir: str | Path | None = None,
    classifier_adapter: str | Path | None = None,
    challenger_classifier_adapter: str | Path | None = None,
    classifier_prompt_version: str | None = None,
    challenger_prompt_version: str | None = None,
    classifier_temperature: float | None = None,
    challenger_temperature: float | None = None,
    route_prefix: str = "/inspection",
    app_name: str = APP_NAME,
    **settings: Any,
) -> None:
    """Deploys the app on a running Serve, or updates the one deployed before.

    Each arm's classifier may have its own prompts (`classifier_prompt_version`,
    `challenger_prompt_version`; empty for `prompt_version`, the app's default) and
    calibration temperature (None for 1.0): a prompt change is tried as a challenger like
    new weights. A tuned classifier is its base directory plus a LoRA adapter
    (`classifier_adapter`, `challenger_classifier_adapter`: a directory or URI that
    models.tuning.adapter.resolve_adapter_dir takes; None for the base alone): when only
    the adapter changes, the replica swaps it on the loaded base.

    It deploys a Serve config (what `serve deploy` and KubeRay apply): the app builder and
    which deployments exist are its code, everything else is `user_config`. So a second
    call that only changes model directories, adapters, the challenger's share,
    thresholds or batching reaches the live replicas' `reconfigure()`: nothing restarts
    and requests keep being answered. Adding or removing a challenger or a detector
    rebuilds the app, a rolling update in which old replicas serve until the new ones have
    loaded.
    """
    from ray.serve.context import _get_global_client
    from ray.serve.schema import ServeDeploySchema

    from models.contracts import ModelPair
    from models.serve.app import AppSettings, serve_config

    champion = ModelPair(
        str(detector_dir or ""), str(classifier_dir), classifier_prompt_version or "",
        classifier_temperature or 1.0, str(classifier_adapter or ""),
    )  # fmt: skip
    challenger = None
    if challenger_classifier_dir:
        challenger = ModelPair(
            str(challenger_detector_dir or ""), str(challenger_classifier_dir),
            challenger_prompt_version or "", challenger_temperature or 1.0,
            str(challenger_classifier_adapter or ""),
        )  # fmt: skip
    app_settings = AppSettings(champion=champion, challenger=challenger, **settings)
    client = _get_global_client()
    assert client is not None  # None only with raise_if_no_controller_running=False
    # Every application is listed: a config replaces the whole set of deployed apps.
    others = [a for name, a in _deployed_configs(client).items() if name != app_name]
    ours = {**serve_config(app_settings, app_name, route_prefix), **_logging_config()}
    client.deploy_apps(ServeDeploySchema(applications=[*others, ours]))
    _wait_until_running(app_name)


def _logging_config() -> dict[str, Any]:
    """With LOUPE_LOG_FORMAT=json, the app's replicas write JSON lines too: their request id
    (the worker's X-Request-ID) and every `extra=` field (the Ingress's inspection_id) are
    fields of each line. The chart sets the same in its RayService (deploy/helm)."""
    if logs.log_format() != "json":
        return {}
    return {"logging_config": dict(JSON_LOGS)}


def _deployed_configs(client: Any) -> dict[str, dict[str, Any]]:
    """The configs of the applications this runner deployed before (by name)."""
    details = client.get_serve_details()
    return {
        name: app["deployed_app_config"]
        for name, app in details.get("applications", {}).items()
        if app.get("deployed_app_config")
    }


def _wait_until_running(app_name: str, timeout_s: float = 300.0) -> None:
    from ray import serve

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        status = serve.status().applications.get(app_name)
        if status is not None and status.status == "RUNNING":
            deployments = status.deployments.values()
            if all(d.status == "HEALTHY" for d in deployments):
                return
        if status is not None and status.status == "DEPLOY_FAILED":
            raise RuntimeError(f"Serve app {app_name!r} failed to deploy: {status.message}")
        time.sleep(0.2)
    raise TimeoutError(f"Serve app {app_name!r} was not running after {timeout_s:.0f} s")


def stop() -> None:
    """Shuts Serve and Ray down; safe to call when either never started."""
    import ray
    from ray import serve

    try:
        if ray.is_initialized():
            serve.shutdown()
    finally:
        ray.shutdown()


# start()'s own arguments: where Ray and the proxy run, fixed for the process's life.
START_ONLY = ("host", "port", "num_cpus")
# The model choice a `follow` callback may change while serving (deploy's arguments).
FOLLOWED = (
    "detector_dir", "classifier_dir", "challenger_detector_dir", "challenger_classifier_dir",
    "classifier_adapter", "challenger_classifier_adapter", "classifier_prompt_version",
    "challenger_prompt_version", "classifier_temperature", "challenger_temperature",
    "challenger_share", "experiment",
)  # fmt: skip


def serve_forever(
    *,
    follow: Callable[[], dict[str, Any] | None] | None = None,
    follow_every_s: float = 5.0,
    **options: Any,
) -> None:
    """Runs the app until SIGTERM or SIGINT, then stops it cleanly.

    `follow`, when given, is asked every `follow_every_s` which models should serve (a dict
    of FOLLOWED keys, or None for "as configured"); a change is deployed as user_config, so
    live replicas reconfigure. This is how the model registry's aliases reach Serve
    without models/ knowing about the registry. A failing callback or deploy is logged and
    retried on the next tick: serving goes on with the models it has.
    """
    stopping = threading.Event()

    def _request_stop(signum: int, _frame: object) -> None:
        logger.info("signal %s received, stopping", signal.Signals(signum).name)
        stopping.set()

    previous: dict[signal.Signals, Any] = {}
    try:
        url = start(**options)
        # Installed after ray.init, which puts in a SIGTERM handler that exits wherever the
        # main thread is; with ours the main thread leaves the wait and stops in order.
        for sig in (signal.SIGTERM, signal.SIGINT):
            previous[sig] = signal.signal(sig, _request_stop)
        print(f"serving at {url}", flush=True)  # the operator watches stdout
        configured = {key: options.get(key) for key in FOLLOWED}
        applied = dict(configured)
        while not stopping.wait(follow_every_s if follow else None):
            assert follow is not None
            applied = _follow_once(follow, options, configured, applied)
    finally:
        stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _follow_once(
    follow: Callable[[], dict[str, Any] | None],
    options: dict[str, Any],
    configured: dict[str, Any],
    applied: dict[str, Any],
) -> dict[str, Any]:
    """Deploy what `follow` wants if it differs from what serves; returns what serves."""
    try:
        wanted = follow()
        target = configured if wanted is None else {**configured, **wanted}
        if target == applied:
            return applied
        logger.info("serving models change: %s", _changes(applied, target))
        settings = {k: v for k, v in options.items() if k not in FOLLOWED and k not in START_ONLY}
        deploy(**target, **settings)
        return target
    except Exception:  # noqa: BLE001 - a bad tick must not stop serving
        logger.exception("could not apply the registry's models; retrying on the next tick")
        return applied


def _changes(before: dict[str, Any], after: dict[str, Any]) -> str:
    return ", ".join(
        f"{k}: {before.get(k)!r} -> {v!r}" for k, v in after.items() if before.get(k) != v
    )
