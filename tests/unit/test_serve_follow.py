"""The registry drives Serve on Kubernetes (app/registry/kuberay.py): the chart's `serve`
values with the registry's models in their place, deployed through the Serve REST API
only when the running app has other models."""

from __future__ import annotations

import json
from typing import Any

import httpx

from app.registry.kuberay import APPLICATIONS_PATH, follow_once, models_of, with_plan
from models.serve.config import kuberay_config, merged_values

SERVE = merged_values([])["serve"]  # the chart's defaults
PROMOTED = {
    "detector_dir": "s3://models/detector/v4",
    "classifier_dir": "s3://models/classifier/base",
    "classifier_adapter": "s3://models/adapters/a7",
    "classifier_prompt_version": "v3-site",
    "classifier_temperature": 1.4,
    "challenger_detector_dir": None,
    "challenger_classifier_dir": None,
    "challenger_classifier_adapter": None,
    "challenger_prompt_version": None,
    "challenger_temperature": None,
    "challenger_share": 0.0,
    "experiment": "",
}
EXPERIMENT = {
    **PROMOTED,
    "challenger_classifier_dir": "s3://models/classifier/base",
    "challenger_classifier_adapter": "s3://models/adapters/a8",
    "challenger_share": 0.1,
    "experiment": "exp-9",
}


def _deployments(config: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {d["name"]: d for d in config["applications"][0]["deployments"]}


def test_an_empty_registry_keeps_the_charts_models():
    assert kuberay_config(with_plan(SERVE, None)) == kuberay_config(SERVE)


def test_a_promoted_champion_replaces_the_configured_models():
    deployments = _deployments(kuberay_config(with_plan(SERVE, PROMOTED)))
    assert set(deployments) == {"Ingress", "Detector", "Classifier"}
    assert deployments["Detector"]["user_config"]["model_dir"] == "s3://models/detector/v4"
    classifier = deployments["Classifier"]["user_config"]
    assert classifier["model_dir"] == "s3://models/classifier/base"
    assert classifier["adapter_dir"] == "s3://models/adapters/a7"
    assert classifier["prompt_version"] == "v3-site"
    assert classifier["temperature"] == 1.4
    # Resources and autoscaling stay the chart's.
    assert deployments["Classifier"]["ray_actor_options"] == {"num_cpus": 2, "num_gpus": 0.4}
    assert SERVE["models"]["detectorUri"] == ""  # the values themselves are not changed


def test_an_experiment_adds_the_challengers_deployments_and_share():
    config = kuberay_config(with_plan(SERVE, EXPERIMENT))
    deployments = _deployments(config)
    assert set(deployments) == {"Ingress", "Detector", "Classifier", "ChallengerClassifier"}
    assert config["applications"][0]["args"]["challenger"] is True
    assert deployments["Ingress"]["user_config"]["challenger_share"] == 0.1
    assert deployments["Ingress"]["user_config"]["experiment"] == "exp-9"
    assert deployments["ChallengerClassifier"]["user_config"]["adapter_dir"] == (
        "s3://models/adapters/a8"
    )


class ServeApi:
    """The head's Serve REST API as KubeRay sees it: GET the apps, PUT a config."""

    def __init__(self, deployed: dict[str, Any] | None) -> None:
        self.deployed, self.puts = deployed, []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        assert request.url.path == APPLICATIONS_PATH
        if request.method == "PUT":
            self.puts.append(json.loads(request.content))
            self.deployed = self.puts[-1]["applications"][0]
            return httpx.Response(200)
        apps = {"inspection": {"deployed_app_config": self.deployed}} if self.deployed else {}
        return httpx.Response(200, json={"applications": apps})


def _client(api: ServeApi) -> httpx.Client:
    return httpx.Client(base_url="http://head:8265", transport=httpx.MockTransport(api))


def test_follow_deploys_only_when_the_running_models_differ():
    api = ServeApi(kuberay_config(SERVE)["applications"][0])
    assert follow_once(_client(api), SERVE, None) is False  # the chart's models run
    assert follow_once(_client(api), SERVE, PROMOTED) is True
    assert models_of(api.deployed) == models_of(
        kuberay_config(with_plan(SERVE, PROMOTED))["applications"][0]
    )
    assert follow_once(_client(api), SERVE, PROMOTED) is False  # nothing new: no redeploy
    assert len(api.puts) == 1


def test_follow_leaves_bringing_serve_up_to_kuberay():
    api = ServeApi(None)
    assert follow_once(_client(api), SERVE, PROMOTED) is False
    assert api.puts == []
