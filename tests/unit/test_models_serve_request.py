"""The ingress's request parsing, without starting Ray."""

import base64

import pytest

from models.serve.app import BadRequest, _parse_body


def test_valid_body_decodes_photos() -> None:
    body = b'{"inspection_id": "i-1", "photos": ["' + base64.b64encode(b"abc") + b'"]}'
    assert _parse_body(body) == ("i-1", [b"abc"])


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
        _parse_body(body)
