"""Where model weights come from, and the version string recorded with every result.

Both models load through `from_pretrained`, so a model is named by a local directory,
an `s3://bucket/prefix` (downloaded once into a verified cache, models/model_store.py),
or a hub id where a hub is reachable.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from urllib.parse import urlparse

# "org/name" or "name": what from_pretrained treats as a hub repository id.
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[\w.-]+)?$")
_WEIGHT_SUFFIXES = (".safetensors", ".bin")
_SAMPLE_BYTES = 64 * 1024


def resolve_model_dir(uri: str, cache_dir: str | Path | None = None) -> str:
    """Turns a model URI into something `from_pretrained` accepts: a local dir or a hub id."""
    parsed = urlparse(uri)
    if parsed.scheme == "file":
        uri = parsed.path
    elif parsed.scheme == "s3":
        from models.model_store import fetch  # boto3 only where s3 is used

        return str(fetch(uri, cache_dir))
    elif parsed.scheme and len(parsed.scheme) > 1:  # one letter is a Windows drive
        raise ValueError(f"unsupported model URI scheme {parsed.scheme!r} in {uri!r}")
    path = Path(uri).expanduser()
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise ValueError(f"{path} is not a model directory (no config.json)")
        return str(path.resolve())
    if _HUB_ID.match(uri) and not uri.startswith("."):
        return uri
    raise FileNotFoundError(f"model directory {uri!r} does not exist")


def model_version(path: str | Path) -> str:
    """A short version string that changes when the config or the weights change.

    The weights are not hashed in full (a 7B checkpoint is 15 GB): each weight file adds
    its size and a hash of three 64 KiB samples, start (safetensors header), middle and
    end, which differ between any two trainings. Modification times are ignored so that
    copying a model does not change its version.
    """
    root = Path(path)
    if not root.is_dir():
        return str(path)  # a hub id: the id is the only name there is
    digest = hashlib.sha256()
    config = root / "config.json"
    if config.is_file():
        digest.update(config.read_bytes())
    for weights in sorted(p for p in root.iterdir() if p.name.endswith(_WEIGHT_SUFFIXES)):
        digest.update(weights.name.encode())
        digest.update(_sample_hash(weights))
    return f"{root.name}-{digest.hexdigest()[:10]}"


def _sample_hash(path: Path) -> bytes:
    size = path.stat().st_size
    digest = hashlib.sha256(str(size).encode())
    with path.open("rb") as handle:
        for offset in sorted(
            {0, max(0, size // 2 - _SAMPLE_BYTES // 2), max(0, size - _SAMPLE_BYTES)}
        ):
            handle.seek(offset)
            digest.update(handle.read(_SAMPLE_BYTES))
    return digest.digest()
