"""Key press to next item on screen, in a real browser: what an inspector feels.

    .venv/bin/python bench/review_browser.py [--items 60] [--warmup 5] [--regions 3,20]
        [--think 0.5] [--database-url postgresql+psycopg://postgres@127.0.0.1/postgres]

For each region count, a fresh database is seeded with queued review items of that many
regions (bench/review_seed.py; one 1024x768 garment photo of about 200 KB each, written
to the object store), the web app runs in one uvicorn process (bench/review_decide.py),
and headless Chromium (Debian's /usr/bin/chromium, through Playwright) logs in as an
inspector, looks at each item for `--think` seconds (the page prefetches the next photo
meanwhile, as it does for a person) and presses Space (confirm). The page itself times,
with performance.now(), from the keydown to:
  - "response": the decision's answer (the next item) received (Resource Timing);
  - "item": the next item's fragment swapped in and the frame that shows it drawn;
  - "photo": the next item's photo loaded and a frame painted after that;
and "server", the app's own time on the decision (its Server-Timing header), so that
response - server is the browser and the network, and photo - response the page's work.
Printed: p50, p95 and max of each, per region count, and the machine's load average.
Issue 17's goal: "photo" p95 under 150 ms for 3 regions on an idle machine.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.pool import NullPool

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.review_decide import PASSWORD, database, web_server  # noqa: E402
from bench.review_seed import seed  # noqa: E402
from bench.station_upload import station_photo  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
# What is timed from the key press: the app's own time on the decision (its Server-Timing),
# the decision's answer received, the next item painted, and its photo painted.
COLUMNS = ("server", "response", "item", "photo")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update"]  # fmt: skip

# Timing inside the page: the keydown (capture phase, before the page's own handler) starts
# the clock; a new #review-item stops it once painted, and once its photo has loaded.
PROBE = """
(() => {
  window.__bench = {start: null, item: [], photo: [], response: [], server: []};
  document.addEventListener("keydown", (e) => {
    if (e.code === "Space") window.__bench.start = performance.now();
  }, true);
  let last = null;
  // The frame that shows it is drawn after the next animation frame callback: a task queued
  // from that callback runs once the frame is out (two frames would add up to 17 ms).
  const painted = (then) => requestAnimationFrame(() => setTimeout(then, 0));
  new MutationObserver(() => {
    const root = document.getElementById("review-item");
    const id = root && root.dataset.taskId;
    const start = window.__bench.start;
    if (!id || id === last || start === null) return;
    last = id;
    window.__bench.start = null;
    painted(() => window.__bench.item.push(performance.now() - start));
    // The decision's request: key to its answer received, and the app's own time in it.
    const posts = performance.getEntriesByType("resource").filter(
      (e) => e.name.endsWith("/decision") && e.startTime >= start);
    const post = posts[posts.length - 1];
    if (post) {
      window.__bench.response.push(post.responseEnd - start);
      const app = post.serverTiming.find((t) => t.name === "app");
      if (app) window.__bench.server.push(app.duration);
    }
    const images = [...root.querySelectorAll("svg.photo-frame image")];
    const loads = images.map((image) => new Promise((done) => {
      const probe = new Image();  // same URL: answered from the cache the page filled
      probe.onload = probe.onerror = done;
      probe.src = image.getAttribute("href");
    }));
    const shown = () => window.__bench.photo.push(performance.now() - start);
    Promise.all(loads).then(() => painted(shown));
  }).observe(document, {childList: true, subtree: true});
})();
"""


def write_photos(url: str, storage: Path) -> int:
    """Every seeded photo's object, one garment-like JPEG of about 200 KB."""
    photo = station_photo(0.2, size=(1024, 768))
    engine = create_engine(url, poolclass=NullPool)
    with engine.connect() as conn:
        keys = conn.execute(text("SELECT object_key FROM photo")).scalars().all()
    engine.dispose()
    for key in keys:
        path = storage / key
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(photo)
    return len(keys)


def percentile(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1]


def measure(base: str, items: int, warmup: int, think: float) -> dict[str, list[float]]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.add_init_script(PROBE)
        page.goto(f"{base}/login")
        page.fill("input[name=username]", "bench-0")
        page.fill("input[name=password]", PASSWORD)
        page.keyboard.press("Enter")
        page.wait_for_url("**/review**")
        for n in range(items - 1):
            page.wait_for_selector("#review-item[data-task-id]")
            time.sleep(think)
            page.keyboard.press("Space")
            page.wait_for_function("(n) => window.__bench.photo.length >= n", arg=n + 1,
                                   timeout=30_000)  # fmt: skip
        timings = page.evaluate("() => window.__bench")
        browser.close()
    return {name: timings[name][warmup:] for name in COLUMNS}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--items", type=int, default=60, help="items decided per region count")
    parser.add_argument("--warmup", type=int, default=5, help="first decisions not counted")
    parser.add_argument("--regions", default="3,20", help="region counts, comma-separated")
    parser.add_argument("--think", type=float, default=0.5, help="s looking at each item")
    parser.add_argument("--database-url", default=os.environ.get("LOUPE_BENCH_DATABASE_URL"),
                        help="a server to create the database on (default: embedded)")  # fmt: skip
    parser.add_argument("--port", type=int, default=8127)
    args = parser.parse_args()
    if not shutil.which(CHROMIUM):
        parser.error(f"no Chromium at {CHROMIUM}: apt-get install chromium")
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}", flush=True)
    print("ms, p50 / p95 / max of each:")
    print("regions  items  " + "  ".join(f"{name:>16}" for name in COLUMNS))
    for count in (int(c) for c in args.regions.split(",")):
        with database(args.database_url) as url, tempfile.TemporaryDirectory() as tmp:
            # One more than decided: the last decision needs a next item to show.
            seed(url, items=args.items + 1, inspectors=1, password=PASSWORD, regions=count)
            storage = Path(tmp) / "photos"
            write_photos(url, storage)
            with web_server(url, storage, args.port, 1) as (base, _):
                found = measure(base, args.items + 1, args.warmup, args.think)
        cells = [f"{percentile(v, 50):5.0f}/{percentile(v, 95):4.0f}/{max(v):5.0f}"
                 for v in found.values()]  # fmt: skip
        print(f"{count:7d}  {len(found['item']):5d}  " + "  ".join(f"{c:>16}" for c in cells),
              flush=True)  # fmt: skip
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
