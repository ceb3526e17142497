"""The inspection app on a real local Ray Serve, over HTTP."""

import base64
import io

import httpx
import pytest
from PIL import Image

from models.contracts import InferenceResult, InferenceUnavailable
from models.serve.client import HttpInferenceClient, ping
from tests.fixtures.serve import free_port

pytestmark = pytest.mark.integration


def _jpeg(size: tuple[int, int], orientation: int | None = None) -> bytes:
    exif = Image.Exif()
    if orientation is not None:
        exif[0x0112] = orientation
    buffer = io.BytesIO()
    Image.new("RGB", size, (90, 60, 50)).save(buffer, "JPEG", exif=exif)
    return buffer.getvalue()


def test_two_photos_give_an_inference_result(serve_url: str) -> None:
    photos = [_jpeg((320, 240)), _jpeg((300, 200), orientation=6)]
    with HttpInferenceClient(serve_url, timeout_s=60) as client:
        result = client.infer(inspection_id="it-1", photos=photos)
    assert isinstance(result, InferenceResult)
    assert result.detector_version.startswith("detector-")
    assert result.classifier_version.startswith("classifier-")
    assert result.prompt_version == "v1"
    assert {"decode_ms", "detect_ms", "classify_ms", "total_ms"} <= set(result.timings)
    sizes = {0: (320, 240), 1: (200, 300)}  # the second photo is shown rotated upright
    assert {region.photo_index for region in result.regions} <= {0, 1}
    for region in result.regions:
        width, height = sizes[region.photo_index]
        assert 0 <= region.box.x1 < region.box.x2 <= width
        assert 0 <= region.box.y1 < region.box.y2 <= height
        distribution = region.classification.type_distribution
        assert sum(distribution.values()) == pytest.approx(1.0)


def test_garbage_photo_is_a_bad_request(serve_url: str) -> None:
    body = {"inspection_id": "it-2", "photos": [base64.b64encode(b"not an image").decode()]}
    response = httpx.post(serve_url, json=body, timeout=30)
    assert response.status_code == 400
    assert "photo 0" in response.json()["error"]
    assert httpx.post(serve_url, content=b"{nope", timeout=30).status_code == 400


def test_health_check_reports_versions(serve_url: str) -> None:
    health = httpx.get(serve_url, timeout=10).json()
    assert health["status"] == "ok"
    assert health["detector_version"].startswith("detector-")
    assert health["classifier_version"].startswith("classifier-")
    assert ping(serve_url)


def test_closed_port_is_unavailable() -> None:
    url = f"http://127.0.0.1:{free_port()}/inspection"
    with pytest.raises(InferenceUnavailable, match="unreachable"):
        HttpInferenceClient(url, timeout_s=2).infer(inspection_id="x", photos=[b"x"])
    assert not ping(url, timeout=1)
