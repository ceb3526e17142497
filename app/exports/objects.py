"""Archives in and out of the object store without holding them in memory.

ObjectStore's put and get move whole byte strings: right for a photo, wrong for an
export of a year of photos. These two adapters stream where the store can (S3's managed
multipart upload and chunked body, a local file) and fall back to put/get for any other
store (the fakes of unit tests).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from app.storage import LocalStore, ObjectNotFound, ObjectStore, S3Store

CHUNK = 1 << 20


def upload_file(store: ObjectStore, key: str, path: Path, content_type: str) -> None:
    """The file at `path` into the store under `key`."""
    if isinstance(store, S3Store):
        store.client.upload_file(str(path), store.bucket, store.prefix + key,
                                 ExtraArgs={"ContentType": content_type})  # fmt: skip
    elif isinstance(store, LocalStore):
        target = store.path(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        # Copy then rename, as LocalStore.put does: never a half-copied archive under its key.
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".tmp-")
        os.close(fd)
        try:
            shutil.copyfile(path, tmp)
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    else:
        store.put(key, path.read_bytes(), content_type)


def open_chunks(store: ObjectStore, key: str) -> Iterator[bytes]:
    """The object's bytes in chunks. The object is opened now, so a missing one raises
    ObjectNotFound here (before a response has started), not in the middle of the body."""
    if isinstance(store, S3Store):
        try:
            body = store.client.get_object(Bucket=store.bucket, Key=store.prefix + key)["Body"]
        except store.client.exceptions.NoSuchKey as exc:
            raise ObjectNotFound(key) from exc
        return _closing(body, body.iter_chunks(CHUNK))
    if isinstance(store, LocalStore):
        try:
            file = store.path(key).open("rb")
        except FileNotFoundError as exc:
            raise ObjectNotFound(key) from exc
        return _closing(file, iter(lambda: file.read(CHUNK), b""))
    return iter([store.get(key)])


def _closing(resource: Any, chunks: Iterator[bytes]) -> Iterator[bytes]:
    try:
        yield from chunks
    finally:
        resource.close()
