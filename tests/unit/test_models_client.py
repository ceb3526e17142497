"""The worker's inference client: every failure becomes InferenceUnavailable."""

import json

import httpx
import pytest

from models.contracts import Box, InferenceResult, InferenceUnavailable, RegionToExplain
from models.serve.client import HttpInferenceClient, ping
from models.serve.wire import parse_inspect_request

URL = "http://inference.test/inspection"
RESULT = {
    "regions": [
        {
            "photo_index": 0,
            "box": {"x1": 1.0, "y1": 2.0, "x2": 3.0, "y2": 4.0},
            "detector_score": 0.9,
            "classification": {
                "defect_type": "stain",
                "type_probability": 0.8,
                "severity": "minor",
                "severity_probability": 0.7,
                "type_distribution": {"stain": 0.8, "normal": 0.2},
                "severity_distribution": {"minor": 0.7, "severe": 0.3},
                "reason": "A stain.",
            },
        }
    ],
    "detector_version": "det-1",
    "classifier_version": "cls-1",
    "prompt_version": "v1",
    "timings": {"total_ms": 12.0},
}


def _client(handler) -> HttpInferenceClient:  # type: ignore[no-untyped-def]
    return HttpInferenceClient(URL, timeout_s=1.0, transport=httpx.MockTransport(handler))


def test_posts_the_photos_bytes_and_parses_the_result() -> None:
    seen = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(parse_inspect_request(request.headers, request.content))
        return httpx.Response(200, json=RESULT)

    result = _client(handler).infer(inspection_id="i-1", photos=[b"\xff\xd8jpeg", b"png"])
    assert seen == [("i-1", [b"\xff\xd8jpeg", b"png"])]
    assert result.regions[0].classification.defect_type == "stain"
    assert result.detector_version == "det-1"


@pytest.mark.parametrize(
    ("response", "message"),
    [
        (httpx.Response(500, json={"error": "inference failed: boom"}), "500: inference failed"),
        (httpx.Response(400, json={"error": "photo 0: cannot decode"}), "400: photo 0"),
        (httpx.Response(503, text="upstream down"), "503: upstream down"),
        (httpx.Response(200, text="<html>"), "malformed"),
        (httpx.Response(200, json={"regions": []}), "malformed"),
        (httpx.Response(200, json=[1, 2]), "malformed"),
    ],
)
def test_error_responses_raise_inference_unavailable(
    response: httpx.Response, message: str
) -> None:
    with pytest.raises(InferenceUnavailable, match=message):
        _client(lambda request: response).infer(inspection_id="i", photos=[b"x"])


@pytest.mark.parametrize(
    ("error", "message"),
    [
        (httpx.ConnectError("refused"), "unreachable"),
        (httpx.ReadTimeout("slow"), "timed out"),
    ],
)
def test_transport_errors_raise_inference_unavailable(error: Exception, message: str) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise error

    with pytest.raises(InferenceUnavailable, match=message):
        _client(handler).infer(inspection_id="i", photos=[b"x"])


def test_explain_posts_regions_to_the_explain_endpoint() -> None:
    seen = {}

    def handler(request: httpx.Request) -> httpx.Response:
        seen["url"] = str(request.url)
        seen["body"] = json.loads(request.content)
        return httpx.Response(200, json={"reasons": ["A brown stain."], "arm": "challenger"})

    regions = [RegionToExplain(0, Box(1, 2, 3, 4), "stain", "minor")]
    reasons = _client(handler).explain(
        inspection_id="i-1", arm="challenger", photos=[b"jpeg"], regions=regions, language="ko"
    )
    assert reasons == ["A brown stain."]
    assert seen["url"] == URL + "/explain"
    assert seen["body"]["arm"] == "challenger" and seen["body"]["language"] == "ko"
    assert seen["body"]["regions"][0]["box"] == {"x1": 1, "y1": 2, "x2": 3, "y2": 4}


@pytest.mark.parametrize(
    "response",
    [
        httpx.Response(500, json={"error": "boom"}),
        httpx.Response(200, json={"reasons": []}),
        httpx.Response(200, json={"reasons": "A stain."}),
    ],
)
def test_explain_failures_raise_inference_unavailable(response: httpx.Response) -> None:
    regions = [RegionToExplain(0, Box(1, 2, 3, 4), "stain", "minor")]
    with pytest.raises(InferenceUnavailable):
        _client(lambda request: response).explain(
            inspection_id="i", arm="champion", photos=[b"x"], regions=regions, language="en"
        )


def test_a_result_round_trips_with_both_steps_evidence() -> None:
    data = {
        **RESULT,
        "arm": "challenger",
        "regions": [
            {
                **RESULT["regions"][0],
                "whole_image": True,
                "classification": {
                    **RESULT["regions"][0]["classification"],
                    "candidate_type": "stain",
                    "exceptions": [{"key": "shadow", "probability": 0.9, "threshold": 0.8}],
                    "final_distribution": {"stain": 0.1, "normal": 0.9},
                    "defect_type": "normal",
                },
            }
        ],
    }
    result = InferenceResult.from_dict(data)
    assert result.arm == "challenger" and result.regions[0].whole_image
    assert result.regions[0].classification.overturned_by == ["shadow"]
    assert InferenceResult.from_dict(json.loads(json.dumps(result.to_dict()))) == result
    with pytest.raises(ValueError, match="arm"):
        InferenceResult.from_dict({**data, "arm": "third"})


def test_ping() -> None:
    ok = httpx.MockTransport(lambda r: httpx.Response(200, json={"status": "ok"}))
    broken = httpx.MockTransport(lambda r: httpx.Response(500, json={"status": "ok"}))
    garbage = httpx.MockTransport(lambda r: httpx.Response(200, text="hello"))
    assert ping(URL, transport=ok)
    assert not ping(URL, transport=broken)
    assert not ping(URL, transport=garbage)


def test_client_module_does_not_import_heavy_libraries() -> None:
    import subprocess
    import sys

    code = (
        "import sys, models.serve.client; "
        "print([m for m in ('torch', 'transformers', 'ray') if m in sys.modules])"
    )
    output = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert output == "[]"
