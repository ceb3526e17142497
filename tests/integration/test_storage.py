"""Both object stores against real backends: a directory and moto's S3 HTTP server."""

from __future__ import annotations

import boto3
import pytest

from app.config import Settings
from app.storage import LocalStore, ObjectNotFound, S3Store, make_store

pytestmark = pytest.mark.integration


def test_local_store_round_trip_and_refuses_escaping_keys(tmp_path):
    store = LocalStore(tmp_path)
    store.put("ab/abc.png", b"data", "image/png")
    store.put("ab/abc.png", b"data", "image/png")  # content-addressed: a repeat is harmless
    assert store.get("ab/abc.png") == b"data"
    assert store.ping()
    with pytest.raises(ObjectNotFound):
        store.get("ab/missing.png")
    for escaping in ("../outside.png", "ab/../../outside.png", "/etc/passwd", "ab//x.png",
                     "./x.png", "ab\\..\\x.png", ""):  # fmt: skip
        with pytest.raises(ValueError, match="escapes the store"):
            store.put(escaping, b"x", "image/png")
        with pytest.raises(ValueError, match="escapes the store"):
            store.get(escaping)
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["ab", "abc.png"]


def test_s3_store_round_trip_through_settings(s3_endpoint):
    boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1").create_bucket(
        Bucket="loupe-photos"
    )
    settings = Settings(
        s3_bucket="loupe-photos",
        s3_endpoint_url=s3_endpoint,
        s3_access_key_id="testing",
        s3_secret_access_key="testing",
    )
    store = make_store(settings)
    assert isinstance(store, S3Store)
    store.put("cd/cde.jpg", b"\xff\xd8jpeg", "image/jpeg")
    assert store.get("cd/cde.jpg") == b"\xff\xd8jpeg"
    assert store.ping()
    with pytest.raises(ObjectNotFound):
        store.get("cd/missing.jpg")
