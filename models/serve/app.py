"""The Ray Serve application "inspection": Detector -> crops -> Classifier, behind one ingress.

Each model deployment batches requests with `@serve.batch`; the batch size and wait, the
model directory (and a tuned classifier's LoRA adapter) and the thresholds live in
`user_config`, so `reconfigure()` changes them (and swaps a model version or an adapter)
on running replicas without a redeploy. The champion and, during an experiment, a
challenger are loaded side by side; the ingress picks the arm per inspection
(models/arms.py) and its share is `user_config` too. An arm without a detector runs
classifier-only (cold start). Deployment code lives in models/serve/deployments.py.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any, cast

from ray import serve
from ray.serve.handle import DeploymentHandle
from starlette.requests import Request
from starlette.responses import JSONResponse

from models import pipeline
from models.arms import assign_arm
from models.contracts import CHALLENGER, CHAMPION, InferenceResult, ModelPair
from models.images import UnreadableImage
from models.serve.deployments import REPLICA, Classifier, Detector
from models.serve.wire import BadRequest, parse_explain_body, parse_inspect_request

logger = logging.getLogger("ray.serve")  # Serve routes this logger to the replica logs


@serve.deployment(**REPLICA)
class Ingress:
    """HTTP: POST photos -> InferenceResult; POST /explain -> reasons; GET -> health."""

    def __init__(
        self,
        champion_detector: DeploymentHandle[Any] | None,
        champion_classifier: DeploymentHandle[Any],
        challenger_detector: DeploymentHandle[Any] | None = None,
        challenger_classifier: DeploymentHandle[Any] | None = None,
    ) -> None:
        self.arms = {CHAMPION: _arm(champion_detector, champion_classifier)}
        if challenger_classifier is not None:
            self.arms[CHALLENGER] = _arm(challenger_detector, challenger_classifier)
        self.detectors = {CHAMPION: champion_detector, CHALLENGER: challenger_detector}
        self.config: dict[str, Any] = {}
        self.options = pipeline.PipelineOptions()
        self.reconfigure({})  # defaults until Serve passes the user_config

    def reconfigure(self, config: dict[str, Any]) -> None:
        share = float(config.get("challenger_share", 0.0))
        if share and CHALLENGER not in self.arms:
            raise ValueError("a challenger share needs a challenger deployed with the app")
        assign_arm("check", share)  # validates the share before any request sees it
        self.config = {
            "challenger_share": share,
            "experiment": str(config.get("experiment", "")),
            "timeout_s": float(config.get("timeout_s", 50.0)),
        }
        self.options = pipeline.PipelineOptions(
            **{k: config[k] for k in ("min_region_px", "detector_min_side") if k in config}
        )

    def arm_for(self, inspection_id: str) -> str:
        share, experiment = self.config["challenger_share"], self.config["experiment"]
        return assign_arm(inspection_id, share, experiment)

    async def __call__(self, request: Request) -> JSONResponse:
        if request.method == "GET":
            return JSONResponse(await self.health())
        if request.method != "POST":
            return JSONResponse({"error": "use GET or POST"}, status_code=405)
        is_explain = request.url.path.rstrip("/").endswith("/explain")
        try:
            body = await request.body()
            if is_explain:
                work = self._explain(body)
            else:
                work = self._inspect(*parse_inspect_request(request.headers, body))
            answer = await asyncio.wait_for(work, timeout=self.config["timeout_s"])
        except (BadRequest, UnreadableImage) as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)
        except TimeoutError:
            timeout = self.config["timeout_s"]
            return JSONResponse({"error": f"inference took over {timeout} s"}, status_code=504)
        except Exception as exc:  # any failure: the caller retries, then routes to review
            logger.exception("inference failed")
            return JSONResponse({"error": f"inference failed: {exc!r}"[:500]}, status_code=500)
        return JSONResponse(answer)

    async def inspect(self, inspection_id: str, photos: list[bytes]) -> InferenceResult:
        arm = self.arm_for(inspection_id)
        result = await pipeline.inspect(photos, self.arms[arm], self.options, arm)
        logger.info(
            "inspection %s: arm %s, %d photos, %d regions, %.0f ms",
            inspection_id, arm, len(photos), len(result.regions), result.timings["total_ms"],
            extra={"inspection_id": inspection_id},  # a field of its own in JSON logs
        )  # fmt: skip
        return result

    async def _inspect(self, inspection_id: str, photos: list[bytes]) -> dict[str, Any]:
        return (await self.inspect(inspection_id, photos)).to_dict()

    async def _explain(self, body: bytes) -> dict[str, Any]:
        request = parse_explain_body(body)
        # The arm that classified explains; one that is gone since hands over to the champion.
        arm = request.arm if request.arm in self.arms else CHAMPION
        reasons = await pipeline.explain(
            request.photos, request.regions, self.arms[arm], self.options, request.language
        )
        versions = await self.arms[arm].versions()
        return {"reasons": reasons, "arm": arm, **versions}

    async def health(self) -> dict[str, Any]:
        arms = {}
        for arm, models in self.arms.items():
            detector = self.detectors[arm]
            detector_version = await detector.version.remote() if detector else ""
            arms[arm] = {"detector_version": detector_version, **await models.versions()}
        share = self.config["challenger_share"]
        return {"status": "ok", **arms[CHAMPION], "arms": arms, "challenger_share": share}


def _arm(
    detector: DeploymentHandle[Any] | None, classifier: DeploymentHandle[Any]
) -> pipeline.ArmModels:
    async def detect(image: Any) -> Any:
        return await detector.detect.remote(image)  # type: ignore[union-attr]

    async def classify(crop: Any) -> Any:
        return await classifier.classify.remote(crop)

    async def versions() -> dict[str, str]:
        return await classifier.versions.remote()

    async def explain(crop: Any, label: tuple[str, str, str], language: str) -> str:
        return await classifier.explain.remote((crop, label, language))

    return pipeline.ArmModels(detect if detector else None, classify, versions, explain)


@dataclass(frozen=True)
class AppSettings:
    """Everything the app is built from. Only `structure()` needs a rebuild to change;
    the rest is `user_config`, which `reconfigure()` applies to live replicas."""

    champion: ModelPair
    challenger: ModelPair | None = None
    challenger_share: float = 0.0
    experiment: str = ""
    detector_threshold: float = 0.25
    max_regions: int = 20
    language: str = "en"
    prompt_version: str = "v2"
    max_batch_size: int = 8
    batch_wait_timeout_s: float = 0.01
    timeout_s: float = 50.0
    min_region_px: int = 4
    device: str = "cpu"
    actor_options: dict[str, Any] | None = None  # e.g. {"num_cpus": 1, "num_gpus": 0.25}

    def structure(self) -> dict[str, Any]:
        """Which deployments exist and where they run: the app builder's arguments."""
        challenger = self.challenger
        return {
            "champion_detector": bool(self.champion.detector_uri),
            "challenger": challenger is not None,
            "challenger_detector": bool(challenger and challenger.detector_uri),
            "device": self.device,
            "actor_options": self.actor_options,
        }

    def user_configs(self) -> dict[str, dict[str, Any]]:
        """Each deployment's user_config, by deployment name."""
        batching: dict[str, Any] = {
            "max_batch_size": self.max_batch_size,
            "batch_wait_timeout_s": self.batch_wait_timeout_s,
        }
        detector = {
            **batching,
            "threshold": self.detector_threshold,
            "max_regions": self.max_regions,
        }
        classifier = {**batching, "language": self.language, "prompt_version": self.prompt_version}
        configs: dict[str, dict[str, Any]] = {
            "Ingress": {
                "challenger_share": self.challenger_share,
                "experiment": self.experiment,
                "timeout_s": self.timeout_s,
                "min_region_px": self.min_region_px,
            }
        }
        for prefix, pair in (("", self.champion), ("Challenger", self.challenger)):
            if pair is None:
                continue
            if pair.detector_uri:
                configs[f"{prefix}Detector"] = {**detector, "model_dir": pair.detector_uri}
            configs[f"{prefix}Classifier"] = {
                **classifier,
                "model_dir": pair.classifier_uri,
                # Always present, "" for none: taking an adapter off is a change too.
                "adapter_dir": pair.adapter_uri,
                "prompt_version": pair.prompt_version or self.prompt_version,
                "temperature": pair.temperature,
            }
        return configs


def build_app(**settings: Any) -> serve.Application:
    """The whole graph, built in one place, for `serve.run`: see AppSettings for options."""
    app_settings = AppSettings(**settings)
    return _graph(app_settings.structure(), app_settings.user_configs())


def app_builder(args: dict[str, Any]) -> serve.Application:
    """The application builder for Serve config files (`import_path`) and KubeRay.

    `args` is `AppSettings.structure()`; each deployment's user_config comes from the
    config's `deployments` section, which `serve_config` writes. Changing only those
    reconfigures the live replicas instead of restarting them.
    """
    return _graph(args, None)


def serve_config(settings: AppSettings, name: str, route_prefix: str) -> dict[str, Any]:
    """One application of a Serve config (ServeApplicationSchema) for these settings."""
    return {
        "name": name,
        "route_prefix": route_prefix,
        "import_path": "models.serve.app:app_builder",
        "args": settings.structure(),
        "deployments": [
            {"name": deployment, "user_config": config}
            for deployment, config in settings.user_configs().items()
        ],
    }


def _graph(
    structure: dict[str, Any], configs: dict[str, dict[str, Any]] | None
) -> serve.Application:
    device, actor_options = structure["device"], structure.get("actor_options")

    def bind(deployment: Any, name: str) -> Any:
        options: dict[str, Any] = {"name": name}
        if configs is not None:
            options["user_config"] = configs[name]
        if actor_options:
            options["ray_actor_options"] = actor_options
        return deployment.options(**options).bind(device)

    arms: list[Any] = [
        bind(Detector, "Detector") if structure["champion_detector"] else None,
        bind(Classifier, "Classifier"),
    ]
    if structure["challenger"]:
        arms.append(
            bind(Detector, "ChallengerDetector") if structure["challenger_detector"] else None
        )
        arms.append(bind(Classifier, "ChallengerClassifier"))
    # @serve.deployment made Ingress a Deployment, but mypy ignores what a class decorator
    # returns and would read `options` as Ingress's own attribute.
    ingress = cast(serve.Deployment, Ingress)
    if configs:
        ingress = ingress.options(user_config=configs["Ingress"])
    return ingress.bind(*arms)
