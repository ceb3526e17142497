"""Camera stations for the benches: photo-sized JPEGs sent to `POST /api/v1/inspections`.

bench/review_decide.py runs these in a process of its own (`--uploaders`), so that the
inspectors' client and the stations' client do not share an event loop: only the server's
event loop is under test.
"""

from __future__ import annotations

import asyncio
import io
import multiprocessing
import random
import statistics
import struct
import time
from collections import Counter
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import Any

import httpx
import numpy as np
from PIL import Image, ImageDraw
from sqlalchemy import create_engine
from sqlalchemy.orm import Session
from sqlalchemy.pool import NullPool

# Station photos are 12 MP JPEGs of 3-5 MB (bench/README.md, `serve_payload.py`).
CAMERA = (4000, 3000)


def station_photo(megabytes: float, size: tuple[int, int] = CAMERA, seed: int = 0) -> bytes:
    """A garment-like JPEG of about `megabytes` MB: twill weave, shading, sensor noise and a
    stain, at the JPEG quality that comes closest to the size asked for. Decoding it costs
    about what decoding a real photo of that size and pixel count costs."""
    rng = np.random.default_rng(seed)
    w, h = size
    diagonal = np.add.outer(np.arange(h, dtype=np.int32), np.arange(w, dtype=np.int32))
    weave = ((diagonal // 3) % 4 < 2).astype(np.float32) * 18
    shade = 30 * np.outer(np.cos(np.arange(h) / 500), np.sin(np.arange(w) / 700))
    grey = 150 + weave + shade.astype(np.float32)
    noise = rng.normal(0, 9, (h, w, 3)).astype(np.float32)
    rgb = (grey[..., None] * np.array([0.8, 0.9, 1.0], np.float32) + noise).clip(0, 255)
    image = Image.fromarray(rgb.astype(np.uint8), "RGB")
    ImageDraw.Draw(image).ellipse((w // 3, h // 3, w // 3 + w // 7, h // 3 + h // 7),
                                  fill=(70, 40, 20))  # fmt: skip
    best = b""
    for quality in range(60, 99, 2):
        buf = io.BytesIO()
        image.save(buf, "JPEG", quality=quality)
        data = buf.getvalue()
        if not best or abs(len(data) - megabytes * 1e6) < abs(len(best) - megabytes * 1e6):
            best = data
    return best


def numbered(photo: bytes, number: int) -> bytes:
    """The same JPEG with a comment segment holding `number`: another content hash, so the
    content-addressed store writes every upload (it skips a photo it already holds)."""
    comment = f"bench upload {number}".encode()
    segment = b"\xff\xfe" + struct.pack(">H", len(comment) + 2) + comment
    return photo[:2] + segment + photo[2:]  # right after the start-of-image marker


def station_tokens(database_url: str, stations: int) -> list[str]:
    """One API token per station, written straight to the bench's database."""
    from app.auth.service import create_station_token

    engine = create_engine(database_url, poolclass=NullPool)
    with Session(engine) as session:
        tokens = [create_station_token(session=session, station=f"bench-station-{i}")
                  for i in range(stations)]  # fmt: skip
        session.commit()
    engine.dispose()
    return tokens


@dataclass
class Uploads:
    """What the stations saw: one round trip per upload, and the answers' status codes."""

    ms: list[float] = field(default_factory=list)
    statuses: Counter[int] = field(default_factory=Counter)
    megabytes: float = 0.0
    seconds: float = 0.0
    cpu_seconds: float = 0.0  # the stations' own client, which shares the machine's cores

    def add(self, other: Uploads) -> None:
        self.ms += other.ms
        self.statuses.update(other.statuses)
        self.megabytes += other.megabytes
        self.seconds += other.seconds
        self.cpu_seconds += other.cpu_seconds

    def summary(self) -> str:
        n = len(self.ms)
        if not n:
            return "  uploads: none finished"
        cuts = statistics.quantiles(self.ms, n=100, method="inclusive") if n > 1 else self.ms * 99
        codes = ", ".join(f"{code}: {count}" for code, count in sorted(self.statuses.items()))
        return (
            f"  uploads: {n} in {self.seconds:.0f} s ({n / self.seconds:.1f}/s, "
            f"{self.megabytes / self.seconds:.1f} MB/s); round trip p50 {cuts[49]:.0f} ms, "
            f"p95 {cuts[94]:.0f} ms, max {max(self.ms):.0f} ms; status {codes}; "
            f"the stations' client used {self.cpu_seconds / self.seconds:.2f} cores"
        )


async def _station(
    base: str, token: str, photo: bytes, stop_at: float, pause: float, first: int, out: Uploads
) -> None:
    rng = random.Random(token)
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=base, timeout=60, headers=headers) as client:
        number = first
        while time.monotonic() < stop_at:
            data = numbered(photo, number)
            number += 1
            started = time.perf_counter()
            response = await client.post(
                "/api/v1/inspections", files=[("image", ("photo.jpg", data, "image/jpeg"))]
            )
            out.ms.append((time.perf_counter() - started) * 1000)
            out.statuses[response.status_code] += 1
            out.megabytes += len(data) / 1e6
            if pause:
                await asyncio.sleep(pause * rng.uniform(0.5, 1.5))


def _stations_main(
    base: str,
    tokens: list[str],
    photo: bytes,
    pause: float,
    orders: multiprocessing.Queue[float | None],
    results: multiprocessing.Queue[Uploads],
) -> None:
    """The stations' process: each order is a time (time.monotonic, one clock for every
    process on the machine) to upload until; None ends it."""
    run = 0
    while (stop_at := orders.get()) is not None:
        run += 1
        out = Uploads()
        started, cpu = time.monotonic(), time.process_time()
        # Every upload of every station and run has its own number, so its own photo.
        stations = [
            _station(base, token, photo, stop_at, pause, run * 10_000_000 + i * 100_000, out)
            for i, token in enumerate(tokens)
        ]
        asyncio.run(_all(stations))
        out.seconds = time.monotonic() - started
        out.cpu_seconds = time.process_time() - cpu
        results.put(out)


async def _all(jobs: list[Coroutine[Any, Any, None]]) -> None:
    await asyncio.gather(*jobs)


class Stations:
    """The camera stations, in a process of their own that waits for `upload_for`."""

    def __init__(self, base: str, tokens: list[str], photo: bytes, pause: float) -> None:
        # Forked, so it must start before this process runs an event loop.
        context = multiprocessing.get_context("fork")
        self._orders: multiprocessing.Queue[float | None] = context.Queue()
        self._results: multiprocessing.Queue[Uploads] = context.Queue()
        self._process = context.Process(
            target=_stations_main,
            args=(base, tokens, photo, pause, self._orders, self._results),
            daemon=True,
        )

    def __enter__(self) -> Stations:
        self._process.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._orders.put(None)
        self._process.join(timeout=90)
        if self._process.is_alive():
            self._process.terminate()

    def upload_for(self, seconds: float) -> None:
        """Start uploading now, for `seconds`; `result` waits for the last upload to end."""
        self._orders.put(time.monotonic() + seconds)

    def result(self) -> Uploads:
        return self._results.get(timeout=120)
