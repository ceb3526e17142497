"""The inspection app's JSON bodies, parsed and validated without Ray or torch.

POST {url}          {"inspection_id": str, "photos": [base64, ...]}
POST {url}/explain  {"inspection_id": str, "arm": str, "language": str,
                     "photos": [base64, ...],
                     "regions": [{"photo_index", "box": {x1, y1, x2, y2}, "defect_type",
                                  "severity", "candidate_type"}, ...]}
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from typing import Any

from models.contracts import ARMS, Box, RegionToExplain

LANGUAGES = ("en", "ko")


class BadRequest(ValueError):
    """The request body is not what the API documents."""


@dataclass(frozen=True)
class ExplainRequest:
    inspection_id: str
    arm: str
    language: str
    photos: list[bytes]
    regions: list[RegionToExplain]


def parse_inspect_body(body: bytes) -> tuple[str, list[bytes]]:
    """Validates `{"inspection_id": str, "photos": [base64, ...]}` and decodes the base64."""
    data = _json_object(body)
    if not isinstance(data.get("inspection_id"), str):
        raise BadRequest('body must be {"inspection_id": str, "photos": [base64, ...]}')
    return data["inspection_id"], _photos(data.get("photos"))


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
