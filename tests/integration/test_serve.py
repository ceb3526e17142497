"""The inspection app on a real local Ray Serve, over HTTP: arms, batching, reconfigure."""

from __future__ import annotations

import io
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from PIL import Image

from models.contracts import InferenceResult, InferenceUnavailable, RegionToExplain
from models.serve.client import HttpInferenceClient, ping
from models.serve.wire import inspect_request
from tests.fixtures.serve import CHALLENGER_SHARE, ServeApp
from tests.support import free_port, garment_photo, wait_for

pytestmark = pytest.mark.integration


def _jpeg(size: tuple[int, int], orientation: int | None = None) -> bytes:
    exif = Image.Exif()
    if orientation is not None:
        exif[0x0112] = orientation
    buffer = io.BytesIO()
    Image.new("RGB", size, (90, 60, 50)).save(buffer, "JPEG", exif=exif)
    return buffer.getvalue()


def _handle(deployment: str):  # type: ignore[no-untyped-def]
    from ray import serve

    return serve.get_deployment_handle(deployment, app_name="inspection")


def test_two_photos_give_an_inference_result(serve_url: str) -> None:
    photos = [_jpeg((320, 240)), _jpeg((300, 200), orientation=6)]
    with HttpInferenceClient(serve_url, timeout_s=60) as client:
        result = client.infer(inspection_id="it-1", photos=photos)
    assert isinstance(result, InferenceResult)
    prefix = "detector-" if result.arm == "champion" else "challenger-detector-"
    assert result.detector_version.startswith(prefix)
    assert result.prompt_version == "v2+x1+t2024.1"
    assert {"decode_ms", "detect_ms", "classify_ms", "total_ms"} <= set(result.timings)
    # The replicas report their compute; the rest of a stage's time is Serve's plumbing.
    timings = result.timings
    assert 0 < timings["detect_model_ms"] <= timings["detect_ms"]
    assert 0 <= timings["classify_model_ms"] <= timings["classify_ms"]
    sizes = {0: (320, 240), 1: (200, 300)}  # the second photo is shown rotated upright
    assert {region.photo_index for region in result.regions} <= {0, 1}
    for region in result.regions:
        width, height = sizes[region.photo_index]
        assert 0 <= region.box.x1 < region.box.x2 <= width
        assert 0 <= region.box.y1 < region.box.y2 <= height
        c = region.classification
        assert sum(c.type_distribution.values()) == pytest.approx(1.0)
        assert c.reason == ""  # no reasons unless asked for


def test_arm_assignment_is_stable_and_close_to_the_split(serve_app: ServeApp) -> None:
    ingress = _handle("Ingress")
    ids = [f"inspection-{i}" for i in range(1000)]
    arms = [ingress.arm_for.remote(i) for i in ids]
    first = [response.result() for response in arms]
    again = [ingress.arm_for.remote(i).result() for i in ids[:100]]
    assert again == first[:100]
    share = Counter(first)["challenger"] / len(ids)
    assert abs(share - CHALLENGER_SHARE) < 0.05  # 0.3 +- 3.4 sigma at n = 1000
    # And the arm decides which models answer, recorded with the result.
    challenger_id = ids[first.index("challenger")]
    with HttpInferenceClient(serve_app.url, timeout_s=60) as client:
        result = client.infer(inspection_id=challenger_id, photos=[garment_photo(seed=3)])
    assert result.arm == "challenger"
    assert result.detector_version.startswith("challenger-detector-")
    assert result.classifier_version.startswith("challenger-classifier-")


def test_batching_groups_concurrent_requests(serve_url: str) -> None:
    before = {name: _handle(name).batch_sizes.remote().result() for name in ("Detector",)}
    photos = [garment_photo(seed=i) for i in range(24)]
    with (
        HttpInferenceClient(serve_url, timeout_s=120) as client,
        ThreadPoolExecutor(max_workers=24) as pool,
    ):
        # Ids of the champion only, so that 24 requests reach the same deployments.
        ids = [i for i in (f"batch-{n}" for n in range(200)) if _champion(i)][:24]
        requests = zip(ids, photos, strict=True)
        list(pool.map(lambda a: client.infer(inspection_id=a[0], photos=[a[1]]), requests))
    detected = _handle("Detector").batch_sizes.remote().result()["detect"]
    classified = _handle("Classifier").batch_sizes.remote().result()["classify"]
    new_detections = detected[len(before["Detector"].get("detect", [])) :]
    assert sum(new_detections) == 24
    assert max(new_detections) > 1, f"no detector batch grouped requests: {new_detections}"
    assert max(classified) > 1
    assert max(detected + classified) <= 8  # the configured max_batch_size


def _champion(inspection_id: str) -> bool:
    from models.arms import assign_arm
    from tests.fixtures.serve import EXPERIMENT

    return assign_arm(inspection_id, CHALLENGER_SHARE, EXPERIMENT) == "champion"


def test_reconfigure_swaps_a_version_while_requests_keep_being_served(
    serve_app: ServeApp,
) -> None:
    client = HttpInferenceClient(serve_app.url, timeout_s=60)
    old = httpx.get(serve_app.url, timeout=10).json()["classifier_version"]
    batches_before = len(_handle("Classifier").batch_sizes.remote().result()["classify"])
    seen: list[str] = []
    errors: list[str] = []
    stop = threading.Event()

    def keep_asking() -> None:
        n = 0
        while not stop.is_set():
            inspection_id = f"reconf-{n}"
            n += 1
            if not _champion(inspection_id):
                continue
            try:
                seen.append(client.infer(inspection_id=inspection_id, photos=[_jpeg((96, 64))])
                            .classifier_version)  # fmt: skip
            except InferenceUnavailable as exc:
                errors.append(str(exc))

    worker = threading.Thread(target=keep_asking)
    worker.start()
    try:
        # At least one answer from the old version first; a busy machine takes a while.
        wait_for(lambda: seen or None, timeout=60)
        # Same code, new champion classifier directory: a user_config change only.
        serve_app.deploy(classifier_dir=serve_app.models.challenger_classifier_dir)
        time.sleep(1.5)
    finally:
        stop.set()
        worker.join()
        serve_app.deploy()  # back to the session's champion
    new = httpx.get(serve_app.url, timeout=10).json()["classifier_version"]
    assert errors == []
    assert seen[0] == old and seen[-1].startswith("challenger-classifier-")
    assert new == old  # restored
    # The same replica kept running: its record of batches was not reset by a restart.
    assert len(_handle("Classifier").batch_sizes.remote().result()["classify"]) > batches_before


def test_reasons_come_from_the_explain_endpoint(serve_url: str) -> None:
    photo = garment_photo(seed=5)
    with HttpInferenceClient(serve_url, timeout_s=60) as client:
        result = client.infer(inspection_id="explain-1", photos=[photo])
        regions = [
            RegionToExplain(r.photo_index, r.box, r.classification.defect_type,
                            r.classification.severity, r.classification.candidate_type)
            for r in result.regions
        ]  # fmt: skip
        reasons = client.explain(
            inspection_id="explain-1", arm=result.arm, photos=[photo], regions=regions,
            language="ko",
        )  # fmt: skip
    assert len(reasons) == len(regions) and all(isinstance(r, str) for r in reasons)


def test_cold_start_app_classifies_whole_photos(cold_start_url: str) -> None:
    with HttpInferenceClient(cold_start_url, timeout_s=60) as client:
        result = client.infer(inspection_id="cold-1", photos=[_jpeg((320, 240)), _jpeg((64, 64))])
    assert result.classifier_only and result.detector_version == ""
    assert [(r.photo_index, r.whole_image, r.detector_score) for r in result.regions] == [
        (0, True, 1.0),
        (1, True, 1.0),
    ]
    assert (result.regions[0].box.x2, result.regions[0].box.y2) == (320, 240)
    health = httpx.get(cold_start_url, timeout=10).json()
    assert health["status"] == "ok" and health["detector_version"] == ""


def test_garbage_photo_is_a_bad_request(serve_url: str) -> None:
    headers, body = inspect_request("it-2", [b"not an image"])
    response = httpx.post(serve_url, content=body, headers=headers, timeout=30)
    assert response.status_code == 400
    assert "photo 0" in response.json()["error"]
    response = httpx.post(serve_url, content=b"{nope", timeout=30)
    assert response.status_code == 400 and "x-inspection-id" in response.json()["error"]


def test_health_check_reports_both_arms(serve_url: str) -> None:
    health = httpx.get(serve_url, timeout=10).json()
    assert health["status"] == "ok"
    assert health["detector_version"].startswith("detector-")
    assert health["arms"]["challenger"]["classifier_version"].startswith("challenger-classifier-")
    assert health["challenger_share"] == CHALLENGER_SHARE
    assert ping(serve_url)


def test_closed_port_is_unavailable() -> None:
    url = f"http://127.0.0.1:{free_port()}/inspection"
    with pytest.raises(InferenceUnavailable, match="unreachable"):
        HttpInferenceClient(url, timeout_s=2).infer(inspection_id="x", photos=[b"x"])
    assert not ping(url, timeout=1)
