"""`python -m models.serve.config VALUES.yaml ...`: the Serve config a Helm value set means.

KubeRay's RayService applies a Serve config (`serveConfigV2`) to the Ray cluster it runs.
It must describe the same application that `make run` and compose deploy, so it is made
by the same code: `AppSettings` and `serve_config` (models/serve/app.py), which
`runner.deploy` also uses. The args of the app builder say which deployments exist; each
deployment's `user_config` carries the models and thresholds, so a change of model URI
reconfigures live replicas instead of restarting them.

What a cluster adds to that, and `make run` does not need: each deployment's autoscaling
and its Ray resources (the GPU fraction), from the chart's `serve.deployments`. A
challenger's deployment takes its own entry there (`ChallengerClassifier`: it serves a
tenth of the items, so fewer replicas) or else the champion's of its kind.

The chart renders the same document from the same values in Go templates
(deploy/helm/loupe/templates/_serve.tpl); `make deploy-check` (deploy/check.py) fails
when the two differ, and checks this one against Ray's own ServeDeploySchema.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import yaml

from models.contracts import ModelPair
from models.serve.runner import APP_NAME, JSON_LOGS

ROUTE_PREFIX = "/inspection"
SERVE_PORT = 8000  # the port KubeRay's serve Service points at
CHART_DIR = Path(__file__).resolve().parents[2] / "deploy" / "helm" / "loupe"
# A challenger deployment is sized like the champion's of its kind.
_KIND = {"ChallengerDetector": "Detector", "ChallengerClassifier": "Classifier"}


def merged_values(files: list[Path], chart_dir: Path = CHART_DIR) -> dict[str, Any]:
    """The chart's values.yaml overlaid by each file in turn, maps merged as Helm does."""
    values = _load(chart_dir / "values.yaml")
    for file in files:
        values = merge(values, _load(file))
    return values


def kuberay_config(serve: dict[str, Any]) -> dict[str, Any]:
    """The serveConfigV2 document for the chart's `serve` values (a ServeDeploySchema)."""
    from models.serve.app import AppSettings, serve_config  # imports Ray: only when needed

    challenger = serve.get("challenger") or {}
    champion = _pair(serve["models"])
    second = _pair(challenger) if challenger.get("classifierUri") else None
    settings = AppSettings(
        champion=champion,
        challenger=second,
        challenger_share=float(challenger.get("share", 0.0)) if second else 0.0,
        experiment=str(challenger.get("experiment", "")) if second else "",
        detector_threshold=float(serve["detectorThreshold"]),
        max_regions=int(serve["maxRegions"]),
        language=str(serve["language"]),
        prompt_version=str(serve["promptVersion"]),
        max_batch_size=int(serve["maxBatchSize"]),
        batch_wait_timeout_s=float(serve["batchWaitTimeoutS"]),
        timeout_s=float(serve["timeoutS"]),
        min_region_px=int(serve["minRegionPx"]),
        device=str(serve["device"]),
    )
    app = serve_config(settings, APP_NAME, ROUTE_PREFIX)
    options = serve["deployments"]
    for deployment in app["deployments"]:
        name = deployment["name"]
        deployment.update(options.get(name) or options.get(_KIND.get(name, name)) or {})
    # JSON lines from the replicas need it on the application, where runner.deploy puts it
    # under `make run` (there it gave JSON; the top-level one alone did not); the top-level
    # one covers the controller and the proxies.
    app["logging_config"] = dict(JSON_LOGS)
    return {
        "proxy_location": "EveryNode",
        "http_options": {"host": "0.0.0.0", "port": SERVE_PORT},
        "logging_config": dict(JSON_LOGS),
        "applications": [app],
    }


def _pair(models: dict[str, Any]) -> ModelPair:
    """One arm's models. `promptVersion` and `temperature` are not chart values: they come
    with a registered version (app.registry.kuberay), "" and 1.0 meaning the app's own."""
    return ModelPair(
        str(models.get("detectorUri") or ""),
        str(models["classifierUri"]),
        prompt_version=str(models.get("promptVersion") or ""),
        temperature=float(models.get("temperature") or 1.0),
        adapter_uri=str(models.get("classifierAdapterUri") or ""),
    )


def _load(path: Path) -> dict[str, Any]:
    loaded = yaml.safe_load(path.read_text()) or {}
    if not isinstance(loaded, dict):
        raise ValueError(f"{path}: a values file is a mapping")
    return loaded


def merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    """`over` on `base`: maps merge key by key, anything else is replaced (Helm's rule)."""
    merged = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m models.serve.config",
        description="Print the RayService serveConfigV2 for Helm value files.",
    )
    parser.add_argument("values", nargs="*", type=Path, help="value files over the chart's")
    parser.add_argument("--chart", type=Path, default=CHART_DIR)
    args = parser.parse_args(argv)
    config = kuberay_config(merged_values(args.values, args.chart)["serve"])
    yaml.safe_dump(config, sys.stdout, sort_keys=False)


if __name__ == "__main__":
    main()
