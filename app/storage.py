"""The object store for photos: a local directory by default, S3 (boto3) when configured.

Keys are content hashes, so writing the same photo twice is harmless and idempotent.
"""

from __future__ import annotations

import os
import tempfile
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from app.config import Settings, get_settings

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client  # boto3-stubs[s3], a dev dependency


class ObjectNotFound(KeyError):
    pass


class ObjectStore(Protocol):
    def put(self, key: str, data: bytes, content_type: str) -> None: ...
    def get(self, key: str) -> bytes: ...
    def ping(self) -> bool: ...


_NOT_NAMES = frozenset({"", ".", ".."})


class LocalStore:
    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)

    def path(self, key: str) -> Path:
        """Where `key` lies on disk; ValueError for a key that would leave the store."""
        # Checked as text: Path.resolve() stats every part of the path, about a third of a
        # photo's write (bench/README.md, the station's upload). A key is made of plain
        # names under the root; the store's own directories hold no links.
        if key.startswith("/") or "\\" in key or any(p in _NOT_NAMES for p in key.split("/")):
            raise ValueError(f"object key escapes the store: {key!r}")
        return self.root / key

    def put(self, key: str, data: bytes, content_type: str) -> None:
        path = self.path(key)
        if path.exists():
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        # Write then rename, so a crash never leaves a half-written photo under its key.
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)

    def get(self, key: str) -> bytes:
        try:
            return self.path(key).read_bytes()
        except FileNotFoundError as exc:
            raise ObjectNotFound(key) from exc

    def ping(self) -> bool:
        return self.root.is_dir()


class S3Store:
    def __init__(self, *, bucket: str, client: S3Client, prefix: str = "") -> None:
        self.bucket = bucket
        self.client = client
        self.prefix = prefix

    @classmethod
    def from_settings(cls, settings: Settings) -> S3Store:
        import boto3

        client = boto3.client(
            "s3",
            endpoint_url=settings.s3_endpoint_url or None,
            region_name=settings.s3_region,
            aws_access_key_id=settings.s3_access_key_id or None,
            aws_secret_access_key=settings.s3_secret_access_key or None,
        )
        return cls(bucket=settings.s3_bucket, client=client, prefix=settings.s3_prefix)

    def put(self, key: str, data: bytes, content_type: str) -> None:
        self.client.put_object(
            Bucket=self.bucket, Key=self.prefix + key, Body=data, ContentType=content_type
        )

    def get(self, key: str) -> bytes:
        try:
            obj = self.client.get_object(Bucket=self.bucket, Key=self.prefix + key)
        except self.client.exceptions.NoSuchKey as exc:
            raise ObjectNotFound(key) from exc
        return obj["Body"].read()

    def ping(self) -> bool:
        self.client.head_bucket(Bucket=self.bucket)
        return True


def make_store(settings: Settings) -> ObjectStore:
    if settings.s3_bucket:
        return S3Store.from_settings(settings)
    return LocalStore(settings.photo_dir)


@lru_cache
def get_store() -> ObjectStore:
    return make_store(get_settings())
