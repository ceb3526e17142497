"""A verified photo read back from the object store, exactly as its snapshot recorded it."""

from __future__ import annotations

import hashlib
import io

from PIL import Image

from app.storage import ObjectStore


class PhotoChanged(RuntimeError):
    """A photo's bytes no longer match the content hash its snapshot recorded."""


def fetch_photo(store: ObjectStore, key: str, sha256: str) -> Image.Image:
    """The photo as RGB; PhotoChanged if it is not the one the snapshot named: a model
    must be trained and judged on exactly the data its snapshot lists."""
    data = store.get(key)
    digest = hashlib.sha256(data).hexdigest()
    if digest != sha256:
        raise PhotoChanged(f"photo {key} has sha256 {digest}, not {sha256}")
    with Image.open(io.BytesIO(data)) as opened:
        return opened.convert("RGB")
