"""The ingress's request bodies, parsed without starting Ray."""

import base64
import json

import pytest

from models.contracts import Box, RegionToExplain
from models.serve.wire import BadRequest, explain_body, parse_explain_body, parse_inspect_body


def test_valid_body_decodes_photos() -> None:
    body = b'{"inspection_id": "i-1", "photos": ["' + base64.b64encode(b"abc") + b'"]}'
    assert parse_inspect_body(body) == ("i-1", [b"abc"])


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"[]",
        b'{"photos": ["YWJj"]}',
        b'{"inspection_id": "i", "photos": []}',
        b'{"inspection_id": "i", "photos": [1]}',
        b'{"inspection_id": "i", "photos": ["***"]}',
        b"\xff\xfe",
    ],
)
def test_bad_bodies_are_bad_requests(body: bytes) -> None:
    with pytest.raises(BadRequest):
        parse_inspect_body(body)


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
