"""The ingress's request bodies, parsed without starting Ray."""

import json

import pytest

from models.contracts import Box, RegionToExplain
from models.serve.wire import (
    BadRequest,
    explain_body,
    inspect_request,
    parse_explain_body,
    parse_inspect_request,
)


def test_photos_travel_as_raw_bytes_and_split_back() -> None:
    headers, body = inspect_request("i-1", [b"\xff\xd8one", b"two!"])
    assert body == b"\xff\xd8onetwo!" and headers["x-photo-sizes"] == "5,4"
    assert parse_inspect_request(headers, body) == ("i-1", [b"\xff\xd8one", b"two!"])


@pytest.mark.parametrize(
    ("headers", "body", "message"),
    [
        ({"x-photo-sizes": "3"}, b"abc", "x-inspection-id"),
        ({"x-inspection-id": "i" * 201, "x-photo-sizes": "3"}, b"abc", "x-inspection-id"),
        ({"x-inspection-id": "i"}, b"abc", "x-photo-sizes"),
        ({"x-inspection-id": "i", "x-photo-sizes": "three"}, b"abc", "like 183406"),
        ({"x-inspection-id": "i", "x-photo-sizes": "3,0"}, b"abc", "x-photo-sizes"),
        ({"x-inspection-id": "i", "x-photo-sizes": "-1,4"}, b"abc", "x-photo-sizes"),
        ({"x-inspection-id": "i", "x-photo-sizes": ",".join(["1"] * 65)}, b"a" * 65, "1 to 64"),
        ({"x-inspection-id": "i", "x-photo-sizes": "2,2"}, b"abc", "add up to 4 bytes"),
    ],
)
def test_bad_requests_say_what_is_wrong(headers: dict, body: bytes, message: str) -> None:
    with pytest.raises(BadRequest, match=message):
        parse_inspect_request(headers, body)


def test_explain_body_round_trips() -> None:
    regions = [RegionToExplain(1, Box(1, 2, 30, 40), "normal", "minor", "stain")]
    body = explain_body("i-2", "challenger", [b"a", b"b"], regions, "ko")
    parsed = parse_explain_body(json.dumps(body).encode())
    assert (parsed.inspection_id, parsed.arm, parsed.language) == ("i-2", "challenger", "ko")
    assert parsed.photos == [b"a", b"b"] and parsed.regions == regions


@pytest.mark.parametrize(
    "change",
    [
        {"arm": "shadow"},
        {"language": "fr"},
        {"regions": []},
        {"regions": [{"photo_index": 0}]},
        {"regions": [{"photo_index": "x", "box": {}, "defect_type": "s", "severity": "m"}]},
    ],
)
def test_bad_explain_bodies_are_bad_requests(change: dict) -> None:
    regions = [RegionToExplain(0, Box(1, 2, 30, 40), "stain", "minor")]
    body = {**explain_body("i", "champion", [b"a"], regions, "en"), **change}
    with pytest.raises(BadRequest):
        parse_explain_body(json.dumps(body).encode())
