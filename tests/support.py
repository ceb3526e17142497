"""Small helpers shared by tests (not fixtures)."""

from __future__ import annotations

import io
import json
import socket
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import numpy as np
from PIL import Image, ImageDraw

T = TypeVar("T")


def reset_caches() -> None:
    """Forget cached settings, engines and clients after a test changed LOUPE_* variables."""
    from app.config import get_settings
    from app.db import get_engine, session_factory
    from app.storage import get_store

    if get_engine.cache_info().currsize:
        get_engine().dispose()  # close its connections before forgetting it
    get_settings.cache_clear()
    get_engine.cache_clear()
    session_factory.cache_clear()
    get_store.cache_clear()
    try:
        from workers.tasks.inference import get_client
    except ImportError:  # the worker package may not import in a pure unit run
        return
    get_client.cache_clear()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def garment_photo(size: tuple[int, int] = (320, 240), seed: int = 0, fmt: str = "PNG") -> bytes:
    """A fabric-like photo with a dark blob on it: enough for the models to look at."""
    rng = np.random.default_rng(seed)
    w, h = size
    weave = rng.normal(160, 25, (h, w, 1)).clip(0, 255).astype(np.uint8).repeat(3, axis=2)
    image = Image.fromarray(weave, "RGB")
    draw = ImageDraw.Draw(image)
    draw.ellipse((w // 3, h // 3, w // 3 + w // 6, h // 3 + h // 6), fill=(70, 40, 20))
    buf = io.BytesIO()
    image.save(buf, fmt)
    return buf.getvalue()


def wait_for(check: Callable[[], T | None], timeout: float = 60.0, every: float = 0.2) -> T:
    """Poll until check() returns something truthy; fail with a clear message on timeout."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        time.sleep(every)


def site_prompts(directory: Path, version: str = "v2-site", example: bool = True) -> Path:
    """A site's own prompt version in `directory` (as LOUPE_PROMPTS_DIR): the packaged v2
    reworded, with one few-shot example, as an ML team would write it."""
    data = json.loads((Path(__file__).parents[1] / "models" / "prompts" / "v2.json").read_text())
    data["version"] = version
    for fields in data["languages"].values():
        fields["type_question"] = "Look closely at the fabric. " + fields["type_question"]
    if example:
        (directory / "examples").mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (56, 56), (120, 80, 40)).save(directory / "examples" / "stain-1.png")
        data["examples"] = [{"image": "examples/stain-1.png", "answer": "stain"}]
    path = directory / f"{version}.json"
    path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    return path
