"""Where a station's upload spends its time, one request at a time, in process.

    LOUPE_DATABASE_URL=postgresql+psycopg://postgres@127.0.0.1/postgres \\
        .venv/bin/python bench/ingest_profile.py [--uploads 200] [--megabytes 0.2] [--profile]

A fresh database and a local photo store in a temporary directory; one station uploads
`--uploads` photos (each with its own number in a JPEG comment, so each is stored) through
the app built in this process (httpx's ASGI transport, the routes' thread pool run inline).
Prints the server time, then per upload the time in the main steps, each SQL statement and
psycopg's transaction commands, and with --profile cProfile's top. No concurrency: read it
with bench/ingest.py, which measures 16 stations next to a bare endpoint.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import os
import pstats
import sys
import tempfile
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.ingest import FRAMES  # noqa: E402
from bench.review_decide import TIMING, database  # noqa: E402
from bench.review_profile import inline_threadpool, instrument, print_report  # noqa: E402
from bench.station_upload import numbered, station_photo, station_tokens  # noqa: E402

STEPS = (
    ("app.auth.service", "token_for"),
    ("app.inspections.views", "_read_images"),
    ("app.inspections.validation", "check_image"),
    ("app.inspections.service", "accept"),
    ("app.inspections.service", "find_existing"),
    ("app.storage", "LocalStore.put"),
)


def run(url: str, args: argparse.Namespace) -> None:
    os.environ["LOUPE_DATABASE_URL"] = url
    inline_threadpool()
    from app.db import get_engine
    from app.web import create_app

    steps, statements, commands = instrument(get_engine(), STEPS)
    [token] = station_tokens(url, 1)
    photo = station_photo(args.megabytes, FRAMES.get(args.megabytes, (1280, 960)))
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    client = httpx.AsyncClient(
        transport=httpx.ASGITransport(app=create_app()), base_url="http://t",
        headers={"Authorization": f"Bearer {token}"},
    )  # fmt: skip
    profile = cProfile.Profile() if args.profile else None
    server: list[float] = []
    for n in range(args.uploads + args.warmup):
        if n == args.warmup:
            statements.clear(), steps.clear(), commands.clear()  # type: ignore[func-returns-value]
        files = [("image", ("photo.jpg", numbered(photo, n), "image/jpeg"))]
        if profile and n >= args.warmup:
            profile.enable()
        response = loop.run_until_complete(client.post("/api/v1/inspections", files=files))
        if profile:
            profile.disable()
        assert response.status_code == 201, response.text
        if n >= args.warmup:
            server.append(float(TIMING.search(response.headers["server-timing"]).group(1)))  # type: ignore[union-attr]
    print(f"{args.uploads} uploads of {len(photo) / 1e6:.2f} MB")
    print_report(args.uploads, "upload", server, steps, statements, commands)
    if profile:
        pstats.Stats(profile).sort_stats("cumulative").print_stats(args.top)
    loop.run_until_complete(client.aclose())
    get_engine().dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--uploads", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--megabytes", type=float, default=0.2, choices=sorted(FRAMES))
    parser.add_argument("--profile", action="store_true", help="also print cProfile's top")
    parser.add_argument("--top", type=int, default=40)
    args = parser.parse_args()
    os.environ.setdefault("LOUPE_SECRET_KEY", "bench-secret-key")
    os.environ["LOUPE_ENVIRONMENT"] = "development"
    with (
        database(os.environ.get("LOUPE_DATABASE_URL")) as url,
        tempfile.TemporaryDirectory() as tmp,
    ):
        os.environ["LOUPE_STORAGE_DIR"] = tmp
        run(url, args)


if __name__ == "__main__":
    main()
