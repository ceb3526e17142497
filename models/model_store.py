"""Model directories in an object store: `s3://bucket/prefix`, downloaded once and verified.

A published model is its files under the prefix plus `loupe-manifest.json`, which lists
every file with its size and sha256. Fetching downloads into a cache directory named by
the manifest's own hash, checks every file against the manifest while it streams, and
only then moves the directory into place; a second fetch of the same content is a single
small GET. A mismatch is refused: a model that is not exactly what was evaluated must
never decide an item. `s3://bucket/prefix#sha256=<hex>` additionally pins the manifest,
so that even a rewritten manifest is caught (the registry records that hash).

boto3 reads the endpoint and credentials from LOUPE_S3_* (as the photo store does) or
from its own chain (AWS_* variables, instance roles).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

MANIFEST = "loupe-manifest.json"
_CHUNK = 8 * 1024 * 1024


class ModelIntegrityError(RuntimeError):
    """A downloaded model file (or the manifest) does not match its recorded hash."""


@dataclass(frozen=True)
class S3Location:
    bucket: str
    prefix: str  # without a trailing slash
    manifest_sha256: str | None = None

    @property
    def name(self) -> str:
        return self.prefix.rsplit("/", 1)[-1] or self.bucket

    def key(self, name: str) -> str:
        return f"{self.prefix}/{name}" if self.prefix else name


def parse_s3_uri(uri: str) -> S3Location:
    parsed = urlparse(uri)
    if parsed.scheme != "s3" or not parsed.netloc:
        raise ValueError(f"not an s3://bucket/prefix URI: {uri!r}")
    pinned = None
    if parsed.fragment:
        name, _, value = parsed.fragment.partition("=")
        if name != "sha256" or len(value) != 64:
            raise ValueError(f"the fragment of {uri!r} must be #sha256=<64 hex digits>")
        pinned = value.lower()
    return S3Location(parsed.netloc, parsed.path.strip("/"), pinned)


def s3_client(endpoint_url: str | None = None) -> Any:
    import boto3

    env = os.environ
    options: dict[str, Any] = {"region_name": env.get("LOUPE_S3_REGION") or None}
    if endpoint := endpoint_url or env.get("LOUPE_S3_ENDPOINT_URL"):
        options["endpoint_url"] = endpoint
    if env.get("LOUPE_S3_ACCESS_KEY_ID"):
        options["aws_access_key_id"] = env["LOUPE_S3_ACCESS_KEY_ID"]
        options["aws_secret_access_key"] = env.get("LOUPE_S3_SECRET_ACCESS_KEY", "")
    return boto3.client("s3", **options)


def default_cache_dir() -> Path:
    if explicit := os.environ.get("LOUPE_MODEL_CACHE_DIR"):
        return Path(explicit)
    return Path(os.environ.get("LOUPE_VAR_DIR", "var")) / "model-cache"


def manifest_of(model_dir: Path) -> dict[str, Any]:
    """Every file under a model directory with its size and sha256."""
    files = {}
    for path in sorted(p for p in model_dir.rglob("*") if p.is_file() and p.name != MANIFEST):
        files[path.relative_to(model_dir).as_posix()] = {
            "size": path.stat().st_size,
            "sha256": _file_sha256(path),
        }
    return {"files": files}


def publish(model_dir: str | Path, uri: str, client: Any = None) -> str:
    """Uploads a model directory with its manifest; returns the URI pinned by hash."""
    root, location = Path(model_dir), parse_s3_uri(uri)
    client = client or s3_client()
    manifest = manifest_of(root)
    for name in manifest["files"]:
        client.upload_file(str(root / name), location.bucket, location.key(name))
    body = json.dumps(manifest, indent=1, sort_keys=True).encode()
    # The manifest goes last: a reader never sees a manifest whose files are not there yet.
    client.put_object(Bucket=location.bucket, Key=location.key(MANIFEST), Body=body)
    return f"s3://{location.bucket}/{location.prefix}#sha256={hashlib.sha256(body).hexdigest()}"


def fetch(uri: str, cache_dir: str | Path | None = None, client: Any = None) -> Path:
    """The local directory holding the verified model at `uri`, downloading it if needed."""
    location = parse_s3_uri(uri)
    client = client or s3_client()
    body = _get(client, location, MANIFEST)
    digest = hashlib.sha256(body).hexdigest()
    if location.manifest_sha256 and digest != location.manifest_sha256:
        raise ModelIntegrityError(
            f"{uri}: the manifest has sha256 {digest}, the URI pins {location.manifest_sha256}"
        )
    target = Path(cache_dir or default_cache_dir()) / location.bucket / digest[:16] / location.name
    if (target / MANIFEST).is_file():
        return target  # complete: the manifest is moved in last, after verification
    manifest = json.loads(body)
    staging = target.with_name(f".{target.name}.{os.getpid()}.partial")
    shutil.rmtree(staging, ignore_errors=True)
    try:
        for name, expected in manifest["files"].items():
            _download_verified(client, location, name, staging / name, expected, uri)
        (staging / MANIFEST).write_bytes(body)
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            staging.rename(target)
        except OSError:
            if not (target / MANIFEST).is_file():  # not a concurrent fetch that won
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def _download_verified(
    client: Any, location: S3Location, name: str, path: Path, expected: dict[str, Any], uri: str
) -> None:
    if ".." in Path(name).parts or Path(name).is_absolute():
        raise ModelIntegrityError(f"{uri}: manifest names a file outside the model: {name!r}")
    path.parent.mkdir(parents=True, exist_ok=True)
    digest, size = hashlib.sha256(), 0
    response = client.get_object(Bucket=location.bucket, Key=location.key(name))
    with path.open("wb") as handle:
        for chunk in response["Body"].iter_chunks(_CHUNK):
            digest.update(chunk)
            size += len(chunk)
            handle.write(chunk)
    if digest.hexdigest() != expected["sha256"] or size != expected["size"]:
        raise ModelIntegrityError(
            f"{uri}: {name} has sha256 {digest.hexdigest()} and {size} bytes, the manifest "
            f"says {expected['sha256']} and {expected['size']}; refusing to load this model"
        )


def _get(client: Any, location: S3Location, name: str) -> bytes:
    from botocore.exceptions import ClientError

    try:
        return client.get_object(Bucket=location.bucket, Key=location.key(name))["Body"].read()
    except ClientError as exc:
        raise FileNotFoundError(
            f"s3://{location.bucket}/{location.key(name)}: {exc} (is the model published "
            f"with its {MANIFEST}?)"
        ) from exc


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()
