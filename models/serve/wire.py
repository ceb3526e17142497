"""The inspection app's request bodies, parsed and validated without Ray or torch.

POST {url}          the photos' bytes one after another, as they are stored (JPEG, PNG),
                    with the headers  X-Inspection-Id: str  and  X-Photo-Sizes: n1,n2,...
POST {url}/explain  {"inspection_id": str, "arm": str, "language": str,
                     "photos": [base64, ...],
                     "regions": [{"photo_index", "box": {x1, y1, x2, y2}, "defect_type",
                                  "severity", "candidate_type"}, ...]}
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from models.contracts import ARMS, Box, RegionToExplain

LANGUAGES = ("en", "ko")
INSPECTION_ID_HEADER = "x-inspection-id"
PHOTO_SIZES_HEADER = "x-photo-sizes"
PHOTOS_CONTENT_TYPE = "application/octet-stream"
MAX_PHOTOS = 64
MAX_ID_CHARS = 200


class BadRequest(ValueError):
    """The request body is not what the API documents."""


@dataclass(frozen=True)
class ExplainRequest:
    inspection_id: str
    arm: str
    language: str
    photos: list[bytes]
    regions: list[RegionToExplain]


def inspect_request(inspection_id: str, photos: list[bytes]) -> tuple[dict[str, str], bytes]:
    """The headers and body the client sends (the inverse of parse_inspect_request).

    Photos travel as raw bytes, not base64 in JSON: a 4 MB photo then crosses the Serve
    proxy in 19 instead of 61 ms (bench/README.md), and the proxy is one process for all.
    """
    headers = {
        INSPECTION_ID_HEADER: inspection_id,
        PHOTO_SIZES_HEADER: ",".join(str(len(photo)) for photo in photos),
        "content-type": PHOTOS_CONTENT_TYPE,
    }
    return headers, b"".join(photos)


def parse_inspect_request(headers: Mapping[str, str], body: bytes) -> tuple[str, list[bytes]]:
    """Validates the headers against the body and splits the body into photos."""
    inspection_id = headers.get(INSPECTION_ID_HEADER, "")
    if not inspection_id or len(inspection_id) > MAX_ID_CHARS:
        raise BadRequest(f"the {INSPECTION_ID_HEADER} header must name the inspection "
                         f"in 1 to {MAX_ID_CHARS} characters")  # fmt: skip
    sizes_text = headers.get(PHOTO_SIZES_HEADER, "")
    try:
        sizes = [int(size) for size in sizes_text.split(",")]
    except ValueError:
        sizes = []
    if not sizes or len(sizes) > MAX_PHOTOS or min(sizes) <= 0:
        raise BadRequest(f"the {PHOTO_SIZES_HEADER} header must list each photo's size in "
                         f"bytes, 1 to {MAX_PHOTOS} of them, like 183406,201377")  # fmt: skip
    if sum(sizes) != len(body):
        raise BadRequest(f"the photos' sizes add up to {sum(sizes)} bytes "
                         f"but the body has {len(body)}")  # fmt: skip
    photos, start = [], 0
    for size in sizes:
        photos.append(body[start : start + size])
        start += size
    return inspection_id, photos


def parse_explain_body(body: bytes) -> ExplainRequest:
    data = _json_object(body)
    arm, language = data.get("arm", ARMS[0]), data.get("language", "en")
    if not isinstance(data.get("inspection_id"), str) or arm not in ARMS:
        raise BadRequest(f"explain needs an inspection_id and an arm in {ARMS}")
    if language not in LANGUAGES:
        raise BadRequest(f"language must be one of {LANGUAGES}")
    regions = data.get("regions")
    if not isinstance(regions, list) or not regions:
        raise BadRequest("regions must be a non-empty list")
    try:
        parsed = [_region(item) for item in regions]
    except (KeyError, TypeError, ValueError) as exc:
        raise BadRequest(f"a region is malformed: {exc!r}") from exc
    return ExplainRequest(data["inspection_id"], arm, language, _photos(data.get("photos")), parsed)


def _json_object(body: bytes) -> dict[str, Any]:
    try:
        data = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise BadRequest(f"body is not JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise BadRequest("body must be a JSON object")
    return data


def _photos(photos: Any) -> list[bytes]:
    if not isinstance(photos, list) or not photos or not all(isinstance(p, str) for p in photos):
        raise BadRequest("photos must be a non-empty list of base64 strings")
    try:
        return [base64.b64decode(p, validate=True) for p in photos]
    except (binascii.Error, ValueError) as exc:
        raise BadRequest(f"a photo is not valid base64: {exc}") from exc


def _region(item: dict[str, Any]) -> RegionToExplain:
    box = Box(**{k: float(item["box"][k]) for k in ("x1", "y1", "x2", "y2")})
    return RegionToExplain(
        photo_index=int(item["photo_index"]),
        box=box,
        defect_type=str(item["defect_type"]),
        severity=str(item["severity"]),
        candidate_type=str(item.get("candidate_type", "")),
    )


def explain_body(
    inspection_id: str, arm: str, photos: list[bytes], regions: list[RegionToExplain], language: str
) -> dict[str, Any]:
    """The body the client sends (the inverse of parse_explain_body)."""
    return {
        "inspection_id": inspection_id,
        "arm": arm,
        "language": language,
        "photos": [base64.b64encode(photo).decode("ascii") for photo in photos],
        "regions": [
            {
                "photo_index": r.photo_index,
                "box": {"x1": r.box.x1, "y1": r.box.y1, "x2": r.box.x2, "y2": r.box.y2},
                "defect_type": r.defect_type,
                "severity": r.severity,
                "candidate_type": r.candidate_type,
            }
            for r in regions
        ],
    }
