"""Ray Serve's own floor: what a request costs when the deployments do nothing.

bench/models_cpu.py deploys this app beside the inspection app, on the same Ray instance
and proxy, and times it in the same run, interleaved with the pipeline's requests:

  POST /floor        the photo's bytes through the proxy to a deployment that only
                     answers: the proxy's floor (the client's HTTP round trip included,
                     as it is in the pipeline's wall time)
  POST /floor/hop    the same, and inside it one handle call passing the decoded photo
                     (a PIL image, as the ingress passes images and crops to the detector
                     and the classifier) to a deployment that returns at once: the hop's
                     floor, timed where it happens

The pipeline makes one proxy request and two handle calls (detector, classifier), so
its floor is proxy + 2 hops. Workers import this module by its path from the repository
root, which is their working directory under a local Ray.
"""

from __future__ import annotations

import io
import time
from typing import Any

from PIL import Image
from ray import serve
from ray.serve.handle import DeploymentHandle
from starlette.requests import Request
from starlette.responses import JSONResponse

APP_NAME = "floor"
ROUTE_PREFIX = "/floor"
IMPORT_PATH = "bench.ray_floor:app"


@serve.deployment(ray_actor_options={"num_cpus": 0})
class Nothing:
    def __call__(self, payload: Any) -> int:
        return 0


@serve.deployment(ray_actor_options={"num_cpus": 0})
class Floor:
    def __init__(self, nothing: DeploymentHandle) -> None:
        self.nothing = nothing

    async def __call__(self, request: Request) -> JSONResponse:
        body = await request.body()
        if not request.url.path.rstrip("/").endswith("/hop"):
            return JSONResponse({"bytes": len(body)})
        image = Image.open(io.BytesIO(body))
        image.load()
        started = time.perf_counter()
        await self.nothing.remote(image)
        return JSONResponse({"hop_ms": (time.perf_counter() - started) * 1000})


app = Floor.bind(Nothing.bind())


def deploy() -> None:
    """This app beside the ones already deployed (runner.deploy keeps it on later calls)."""
    from ray.serve.context import _get_global_client
    from ray.serve.schema import ServeDeploySchema

    from models.serve.runner import _deployed_configs, _wait_until_running

    client = _get_global_client()
    assert client is not None, "start Serve first (models.serve.runner.start)"
    others = [c for name, c in _deployed_configs(client).items() if name != APP_NAME]
    floor = {"name": APP_NAME, "route_prefix": ROUTE_PREFIX, "import_path": IMPORT_PATH}
    client.deploy_apps(ServeDeploySchema(applications=[*others, floor]))
    _wait_until_running(APP_NAME)
