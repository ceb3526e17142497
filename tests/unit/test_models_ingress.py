"""The ingress outside Ray, with fake deployment handles: arms, failures, timeouts."""

from __future__ import annotations

import asyncio
import io
import json
from typing import Any

import pytest
from PIL import Image
from starlette.requests import Request

from models.contracts import Box, Classification, Detection, RegionToExplain
from models.serve.app import Ingress
from models.serve.wire import explain_body, inspect_request

CLASSIFIED = Classification("stain", 0.9, "minor", 0.8)


class Method:
    def __init__(self, answer: Any = None, delay: float = 0.0, error: Exception | None = None):
        self.answer, self.delay, self.error = answer, delay, error
        self.calls: list[tuple] = []

    def remote(self, *args: Any) -> Any:
        self.calls.append(args)

        async def call() -> Any:
            await asyncio.sleep(self.delay)
            if self.error:
                raise self.error
            return self.answer(*args) if callable(self.answer) else self.answer

        return call()


class FakeDetector:
    def __init__(self, version: str) -> None:
        self.detect = Method(([Detection(Box(10, 10, 60, 60), 0.9)], version, 5.0))
        self.version = Method(version)


class FakeClassifier:
    def __init__(self, version: str, **classify: Any) -> None:
        versions = {"classifier_version": version, "prompt_version": "v2"}
        self.classify = Method(lambda crop: (CLASSIFIED, versions, 2.0), **classify)
        self.versions = Method(versions)
        self.explain = Method(lambda item: f"{version} says {item[1][0]} in {item[2]}")


def ingress(share: float = 0.0, challenger: bool = True, **config: Any) -> Any:
    cls = Ingress.func_or_class  # the class itself, outside Ray
    args: list[Any] = [FakeDetector("det-a"), FakeClassifier("cls-a")]
    if challenger:
        args += [FakeDetector("det-b"), FakeClassifier("cls-b", **config.pop("classify", {}))]
    else:
        args[1] = FakeClassifier("cls-a", **config.pop("classify", {}))
    replica = cls(*args)
    replica.reconfigure({"challenger_share": share, "experiment": "e", **config})
    return replica


def photo() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (200, 150), (90, 60, 50)).save(buffer, "PNG")
    return buffer.getvalue()


def inspect(replica: Any, inspection_id: str, photos: list[bytes]) -> tuple[int, dict]:
    headers, body = inspect_request(inspection_id, photos)
    return call(replica, body, headers=headers)


def call(
    replica: Any, body: dict | bytes, path: str = "/inspection", headers: dict | None = None
) -> tuple[int, dict]:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()

    async def receive() -> dict:
        return {"type": "http.request", "body": raw, "more_body": False}

    encoded = [(k.encode(), v.encode()) for k, v in (headers or {}).items()]
    scope = {
        "type": "http",
        "method": "POST",
        "path": path,
        "headers": encoded,
        "query_string": b"",
    }
    response = asyncio.run(replica(Request(scope, receive)))
    return response.status_code, json.loads(response.body)


def test_the_arm_follows_the_share_and_the_result_names_its_models() -> None:
    status, body = inspect(ingress(share=1.0), "i-1", [photo()])
    assert status == 200
    assert (body["arm"], body["detector_version"], body["classifier_version"]) == (
        "challenger",
        "det-b",
        "cls-b",
    )
    status, body = inspect(ingress(share=0.0), "i-1", [photo()])
    assert (body["arm"], body["classifier_version"]) == ("champion", "cls-a")


def test_a_share_without_a_challenger_is_refused_at_reconfigure() -> None:
    with pytest.raises(ValueError, match="challenger"):
        ingress(share=0.2, challenger=False)


def test_a_model_that_raises_is_a_server_error() -> None:
    replica = ingress(challenger=False, classify={"error": RuntimeError("CUDA out of memory")})
    status, body = inspect(replica, "i", [photo()])
    assert status == 500 and "CUDA out of memory" in body["error"]


def test_a_slow_model_is_a_timeout() -> None:
    replica = ingress(challenger=False, timeout_s=0.05, classify={"delay": 1.0})
    status, body = inspect(replica, "i", [photo()])
    assert status == 504 and "0.05" in body["error"]


def test_an_unreadable_photo_is_a_bad_request() -> None:
    status, body = inspect(ingress(), "i", [photo(), b"not a photo"])
    assert status == 400 and "photo 1" in body["error"]


def test_sizes_that_do_not_match_the_body_are_a_bad_request() -> None:
    headers, body = inspect_request("i", [photo()])
    status, answer = call(ingress(), body[:-1], headers=headers)
    assert status == 400 and "add up to" in answer["error"]


def test_explain_asks_the_arm_that_classified_and_falls_back_to_the_champion() -> None:
    regions = [RegionToExplain(0, Box(10, 10, 60, 60), "stain", "minor")]
    body = explain_body("i", "challenger", [photo()], regions, "ko")
    status, answer = call(ingress(), body, path="/inspection/explain")
    assert status == 200 and answer["reasons"] == ["cls-b says stain in ko"]
    status, answer = call(ingress(challenger=False), body, path="/inspection/explain/")
    assert answer["arm"] == "champion" and answer["reasons"] == ["cls-a says stain in ko"]
