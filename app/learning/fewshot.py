"""A few-shot prompt version written from what inspectors verified.

The field report's v3 prompt put examples before the question (accuracy 78 % -> 92 %),
and more of them for a class the model confused (five for pilling). Here the examples
are verified crops: regions people confirmed, changed, drew or called "not a defect",
cut as the pipeline cuts them. The new version is the base version's wording plus those
examples, written into the site's prompt directory as `<name>.json` and `<name>/*.png`.
It is then a classifier candidate like any other (`loupe retrain classifier --prompts
NAME`), and the crops it shows are left out of what it is judged on.

A version, once written, is never overwritten: results and the registry name it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from PIL import Image
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.learning.classifier import EXAMPLE_SOURCE
from app.learning.crops import cut, hash_order, verified_crops
from app.learning.photos import fetch_photo
from app.review.tables import DecisionRegion
from app.storage import ObjectStore
from models.images import DEFAULT_MAX_PIXELS, fit_pixel_budget
from models.prompts import SITE_DIR_VARIABLE, load_prompts, prompt_dirs, prompt_path

NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,49}")
MAX_PER_TYPE = 10  # each example costs the crop's tokens on every classification


class FewShotProblem(ValueError):
    """The version cannot be written; the message says why, for a person to read."""


@dataclass(frozen=True)
class Example:
    crop_id: int  # the decision_region the crop was cut from
    answer: str
    image: Image.Image


def pick_examples(
    *, session: Session, store: ObjectStore, counts: Mapping[str, int]
) -> list[Example]:
    """Up to counts[type] verified crops of each type, in hash order (no person picks
    flattering ones), cut from their photos; types in taxonomy order of `counts`."""
    for answer, count in counts.items():
        if not 0 <= count <= MAX_PER_TYPE:
            raise FewShotProblem(f"{answer}: between 0 and {MAX_PER_TYPE} examples, not {count}")
    rank = func.row_number().over(partition_by=DecisionRegion.defect_type, order_by=hash_order())
    ranked = verified_crops().add_columns(rank.label("rank")).subquery()
    wanted = [t for t, n in counts.items() if n]
    most = max(counts.values(), default=0)
    rows = session.execute(
        select(ranked).where(ranked.c.defect_type.in_(wanted), ranked.c.rank <= most)
    ).all()
    picked = [r for r in rows if r.rank <= counts[r.defect_type]]
    picked.sort(key=lambda r: (list(counts).index(r.defect_type), r.rank))
    photos: dict[str, Image.Image] = {}
    examples = []
    for row in picked:
        if row.object_key not in photos:
            photos[row.object_key] = fetch_photo(store, row.object_key, row.content_hash)
        crop = cut(photos[row.object_key], [row.x1, row.y1, row.x2, row.y2])
        examples.append(Example(row.id, row.defect_type, crop))
    return examples


def write_version(*, base: str, name: str, examples: list[Example]) -> Path:
    """`<name>.json` (the base's wording, these examples) and its images, in the site's
    prompt directory; returns the file. Checked by loading it back."""
    directory = site_directory()
    if not NAME.fullmatch(name):
        raise FewShotProblem(
            f"{name!r} is not a version name: letters, digits, '.', '_' and '-', at most 50"
        )
    try:
        load_prompts(name)
    except ValueError:
        pass
    else:
        raise FewShotProblem(f"prompt version {name!r} exists already; versions never change")
    if not examples:
        raise FewShotProblem("no verified crops of the asked types to show as examples")
    data = json.loads(prompt_path(base).read_text(encoding="utf-8"))
    data["version"] = name
    data["examples"] = []
    (directory / name).mkdir(parents=True, exist_ok=False)
    for i, example in enumerate(examples, start=1):
        image = f"{name}/{i:02d}-{example.answer}.png"
        fit_pixel_budget(example.image, DEFAULT_MAX_PIXELS).save(directory / image, "PNG")
        data["examples"].append({"image": image, "answer": example.answer,
                                 "source": f"{EXAMPLE_SOURCE}{example.crop_id}"})  # fmt: skip
    path = directory / f"{name}.json"
    path.write_text(json.dumps(data, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    load_prompts(name)  # every field, language and image as serving will read them
    return path


def site_directory() -> Path:
    """The site's prompt directory: new versions go where every service looks first."""
    dirs = prompt_dirs()
    if len(dirs) < 2:
        raise FewShotProblem(
            f"set {SITE_DIR_VARIABLE} to a directory that the web app, the workers and Serve "
            "all see: new prompt versions are written there, never into the code"
        )
    dirs[0].mkdir(parents=True, exist_ok=True)
    return dirs[0]
