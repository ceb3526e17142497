"""The people and machines of a simulated site, each talking to Loupe as the real ones do:
stations through the station API with their token, inspectors and the admin through the
pages with a login session and the CSRF token a browser would send."""

from __future__ import annotations

import html
import json
import random
import re
import secrets
import threading
import time
from dataclasses import dataclass, field

import httpx

from app.policy.disagreement import Box, iou
from app.simulation.garments import Garment

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
TASK = re.compile(r'data-task-id="(\d+)"')
ITEM_REF = re.compile(r'<span class="item-ref"[^>]*>([^<]*)</span>')
PHOTO = re.compile(r'data-photo-id="(\d+)"')
# A model region as the page draws it (templates/_review.html): its box in photo pixels...
REGION_BOX = re.compile(
    r'<g class="box[^"]*" data-region="(\d+)">\s*<rect class="halo" x="([-\d.]+)" '
    r'y="([-\d.]+)"\s+width="([-\d.]+)" height="([-\d.]+)"'
)
# ...and its label in the list beside the photo.
REGION_LABEL = re.compile(
    r'<li class="region[^"]*" data-region="(\d+)"[^>]*?data-type="([^"]*)" '
    r'data-severity="([^"]*)"'
)
# A box drawn by a careful inspector overlaps the defect's true box at least this much.
MATCH_IOU = 0.3
# The severity a careful inspector gives a planted defect: one that is rejected.
DEFECT_SEVERITY = "moderate"
NOT_A_DEFECT = "normal"
TIMEOUT_S = 60.0


class SimulationError(RuntimeError):
    """Loupe refused or failed something the simulation needs; the message says what."""


def _csrf(page: str, where: str) -> str:
    match = CSRF.search(page)
    if match is None:
        raise SimulationError(f"no CSRF token on {where}: is this a Loupe login page?")
    return match.group(1)


def logged_in(base_url: str, username: str, password: str) -> httpx.Client:
    """A client with a login session, as a browser has after the login form."""
    client = httpx.Client(base_url=base_url, timeout=TIMEOUT_S, follow_redirects=True)
    token = _csrf(client.get("/login").text, "/login")
    answer = client.post("/login", data={"username": username, "password": password,
                                         "csrf_token": token, "next": "/"})  # fmt: skip
    if answer.status_code != 200 or "/login" in str(answer.url):
        client.close()
        raise SimulationError(f"{username} could not log in ({answer.status_code})")
    return client


def create_inspectors(admin: httpx.Client, names: list[str]) -> dict[str, str]:
    """Inspector accounts made on /admin/users; their passwords, by name."""
    passwords = {}
    for name in names:
        token = _csrf(admin.get("/admin/users").text, "/admin/users")
        password = secrets.token_urlsafe(16)
        answer = admin.post("/admin/users", data={
            "username": name, "role": "inspector", "password": password, "language": "en",
            "csrf_token": token,
        })  # fmt: skip
        if answer.status_code != 200:
            raise SimulationError(f"could not create inspector {name}: {answer.status_code}")
        passwords[name] = password
    return passwords


def upload(client: httpx.Client, token: str, station: str, item: Garment) -> str:
    """The garment's photo sent as a camera station sends it; the inspection's id."""
    answer = client.post(
        "/api/v1/inspections",
        headers={"Authorization": f"Bearer {token}", "Idempotency-Key": item.external_id},
        files={"image": (f"{item.external_id}.jpg", item.photo, "image/jpeg")},
        data={"external_id": item.external_id, "station": station},
    )
    if answer.status_code not in (200, 201):
        raise SimulationError(f"upload of {item.external_id}: {answer.status_code} "
                              f"{answer.text[:200]}")  # fmt: skip
    return str(answer.json()["id"])


@dataclass
class Inspector:
    """Works the queue until told to stop: looks at the item on screen for `think_s`
    (times 0.5-1.5), then gives the truth, or the wrong verdict `error_rate` of the time.
    Giving the truth, the inspector also marks it as a careful one would: a model box on
    a planted defect keeps it (its type and a rejecting severity corrected), a box on
    nothing is marked "not a defect", and a missed defect gets a box drawn around it, so
    that the decisions are ground truth the detector can learn from. A garment the
    simulation does not know (another station's) is confirmed as proposed."""

    client: httpx.Client
    name: str
    truths: dict[str, Garment]  # by external id
    error_rate: float
    think_s: float
    decided: int = 0
    mistakes: int = 0
    errors: list[str] = field(default_factory=list)

    def work(self, stop: threading.Event) -> None:
        rng = random.Random(self.name)
        page = self.client.get("/review").text
        headers = {"HX-Request": "true", "X-CSRF-Token": _csrf(page, "/review")}
        while not stop.is_set():
            task = TASK.search(page)
            if task is None:  # the queue is empty: look again in a moment
                stop.wait(max(0.2, self.think_s))
                page = self.client.get("/review", headers={"HX-Request": "true"}).text
                continue
            if self.think_s:
                stop.wait(self.think_s * rng.uniform(0.5, 1.5))
            data = self._verdict(page, rng)
            answer = self.client.post(f"/review/{task.group(1)}/decision", data=data,
                                      headers=headers)  # fmt: skip
            # A refusal also answers 200: it retargets its reason into the item's notice.
            if answer.status_code != 200 or "HX-Retarget" in answer.headers:
                reason = re.sub(r"<[^>]+>", "", answer.text).strip()[:200]
                self.errors.append(f"decision {task.group(1)}: {answer.status_code} {reason}")
                page = self.client.get("/review", headers={"HX-Request": "true"}).text
                continue
            self.decided += 1
            page = answer.text

    def _verdict(self, page: str, rng: random.Random) -> dict[str, str]:
        ref = ITEM_REF.search(page)
        item = self.truths.get(html.unescape(ref.group(1)).strip()) if ref else None
        if item is None:
            return {"verdict": "confirm"}
        if rng.random() < self.error_rate:
            self.mistakes += 1
            wrong = "pass" if item.truth == "reject" else "reject"
            # A reject that marks no region: the inspector insists (the page asks once).
            return {"verdict": wrong} | ({"unmarked": "true"} if wrong == "reject" else {})
        photo = PHOTO.search(page)
        if photo is None:
            raise SimulationError("no photo on the review page")
        marks = careful_edits(item, int(photo.group(1)), model_regions(page))
        return {"verdict": item.truth, "regions": json.dumps(marks)}


@dataclass(frozen=True)
class ModelRegion:
    id: int
    box: Box
    defect_type: str
    severity: str


def model_regions(page: str) -> list[ModelRegion]:
    """The model's regions on the review page, with their boxes and labels."""
    labels = {m.group(1): (m.group(2), m.group(3)) for m in REGION_LABEL.finditer(page)}
    regions = []
    for m in REGION_BOX.finditer(page):
        x, y, w, h = (float(v) for v in m.group(2, 3, 4, 5))
        defect_type, severity = labels.get(m.group(1), (NOT_A_DEFECT, ""))
        regions.append(ModelRegion(int(m.group(1)), (x, y, x + w, y + h), defect_type, severity))
    return regions


def careful_edits(
    item: Garment, photo_id: int, regions: list[ModelRegion]
) -> list[dict[str, object]]:
    """The region edits of an inspector who marks the garment's truth (app/review/edits.py
    reads them): each planted defect is matched to the model box that overlaps it most
    (IoU >= MATCH_IOU, each box used once); the rest are drawn."""
    edits: list[dict[str, object]] = []
    unused = {r.id: r for r in regions}
    for label, box in zip(item.defects, item.boxes, strict=True):
        best = max(unused.values(), key=lambda r: iou(r.box, box), default=None)
        if best is None or iou(best.box, box) < MATCH_IOU:
            edits.append({"photo": photo_id, "box": [round(v, 1) for v in box],
                          "type": label, "severity": DEFECT_SEVERITY})  # fmt: skip
            continue
        del unused[best.id]
        if (best.defect_type, best.severity) != (label, DEFECT_SEVERITY):
            edits.append({"region": best.id, "type": label, "severity": DEFECT_SEVERITY})
    edits.extend(
        {"region": r.id, "not_defect": True}
        for r in unused.values()
        if r.defect_type != NOT_A_DEFECT
    )
    return edits


def wait_until(check: object, timeout_s: float, every_s: float = 0.5) -> bool:
    """Poll `check()` until it is true or time is up."""
    assert callable(check)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(every_s)
    return bool(check())
