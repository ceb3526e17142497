"""`loupe export` on a real PostgreSQL with photos in moto's S3: each format holds exactly
the decisions in effect, read back by readers that know only the format (pycocotools for
COCO); splits, --since, snapshots, the instruction JSONL, and exports that must not be
half-written.
"""

from __future__ import annotations

import json

import pytest
import yaml
from click.testing import CliRunner

from app.cli import main
from app.exports.dataset import OutExists, write_export
from app.exports.formats import ROUND_TRIP_TOLERANCE_PX
from app.exports.selection import NotADatasetSnapshot, choose, live_manifest, snapshot_manifest
from app.learning.photos import PhotoChanged
from app.learning.snapshot import take_snapshot
from app.storage import make_store
from models.taxonomy import load_taxonomy
from tests.integration.export_support import (
    photo_hashes,
    read_any,
    read_coco,
    read_labelstudio,
    same_boxes,
    seed_verified,
    yolo_names,
)
from tests.integration.learning_support import new_bucket, s3_settings
from tests.support import reset_caches

pytestmark = pytest.mark.integration

CLASSES = [k for k in load_taxonomy().type_keys if k != "normal"]
VAL_SHARE = 0.25


@pytest.fixture
def site(s3_endpoint, tmp_path):
    settings = s3_settings(s3_endpoint, new_bucket(s3_endpoint), tmp_path,
                           retrain_val_share=VAL_SHARE)  # fmt: skip
    return settings, make_store(settings)


def export(session, store, fmt, out, **options):  # type: ignore[no-untyped-def]
    snapshot = options.pop("snapshot", None)
    since = options.pop("since", None)
    chosen = choose(session=session, store=store, fmt=fmt, val_share=VAL_SHARE,
                    snapshot=snapshot, since=since)  # fmt: skip
    return write_export(fmt=fmt, manifest=chosen.manifest, source=chosen.source, out=out,
                        store=store, **options)  # fmt: skip


@pytest.mark.parametrize("fmt", ["coco", "yolo", "labelstudio"])
def test_each_format_holds_the_decisions_in_effect(db_session, site, tmp_path, fmt):
    _, store = site
    seeded = seed_verified(db_session, store)
    report = export(db_session, store, fmt, tmp_path / "out")
    out = tmp_path / "out"
    found = read_any(fmt, out)
    # Changed types as changed, the false alarm gone, the drawn box in, the re-review's
    # boxes only, the clean pass as a photo without boxes, the unusable reject left out.
    assert seeded.unusable not in found
    assert same_boxes(found, seeded.expected, ROUND_TRIP_TOLERANCE_PX), (found, seeded.expected)
    assert all(label != "normal" for boxes in found.values() for label, _ in boxes)
    # The very photos, byte for byte.
    assert photo_hashes(out) == seeded.sha256
    assert report.images == len(seeded.expected) and report.classes == CLASSES
    assert report.boxes == sum(len(b) for b in seeded.expected.values())
    described = yaml.safe_load((out / "loupe-export.yaml").read_text())
    assert described["format"] == fmt and described["classes"] == CLASSES
    assert described["source"] == {"kind": "live", "since": None}
    # The class list is the taxonomy's, in its order, whatever the data holds.
    if fmt == "coco":
        assert read_coco(out)[1] == CLASSES
    elif fmt == "yolo":
        assert list(yolo_names(out)[0].values()) == CLASSES
    else:
        assert '<Label value="stain"/>' in (out / "labeling_config.xml").read_text()
    assert [p.name for p in tmp_path.iterdir()] == ["out"]  # no temporary left beside it


def test_a_split_export_follows_the_snapshots_splits(db_session, site, tmp_path):
    _, store = site
    seeded = seed_verified(db_session, store)
    snapshot, manifest = take_snapshot(session=db_session, store=store, val_share=VAL_SHARE)
    report = export(db_session, store, "yolo", tmp_path / "out", snapshot=snapshot.id,
                    split=True)  # fmt: skip
    out = tmp_path / "out"
    names, folders = yolo_names(out)
    assert folders == {"train": "train/images", "val": "val/images", "test": "test/images"}
    by_split = {split: read_yolo_split(out, split, names) for split in ("train", "val", "test")}
    wanted = {split: {s["inspection_id"] for s in manifest["samples"] if s["split"] == split}
              for split in ("train", "val", "test")}  # fmt: skip
    assert {split: set(found) for split, found in by_split.items()} == wanted
    assert seeded.frozen in by_split["test"] and wanted["val"] and wanted["train"]
    merged = {item: boxes for found in by_split.values() for item, boxes in found.items()}
    assert same_boxes(merged, seeded.expected, ROUND_TRIP_TOLERANCE_PX)
    assert report.splits == {split: len(wanted[split]) for split in wanted}
    described = yaml.safe_load((out / "loupe-export.yaml").read_text())
    assert described["source"]["snapshot"] == snapshot.id
    assert described["source"]["manifest_sha256"] == snapshot.manifest_sha256


def read_yolo_split(out, split, names):  # type: ignore[no-untyped-def]
    from tests.integration.export_support import read_yolo

    return read_yolo(out / split, names)


def test_the_live_data_is_split_as_a_snapshot_would_split_it(db_session, site, tmp_path):
    _, store = site
    seed_verified(db_session, store)
    live = live_manifest(session=db_session, val_share=VAL_SHARE)
    _, manifest = take_snapshot(session=db_session, store=store, val_share=VAL_SHARE)
    assert live == manifest


def test_since_keeps_the_items_decided_from_then_on(db_session, site, tmp_path):
    from datetime import timedelta

    from app.db import utcnow

    _, store = site
    seeded = seed_verified(db_session, store)
    export(db_session, store, "labelstudio", tmp_path / "out", since=utcnow() - timedelta(days=1))
    found = read_labelstudio(tmp_path / "out")
    assert seeded.old not in found and set(found) == set(seeded.expected) - {seeded.old}


def test_a_changed_photo_leaves_no_export_behind(db_session, site, tmp_path):
    _, store = site
    seeded = seed_verified(db_session, store)
    chosen = choose(session=db_session, store=store, fmt="coco", val_share=VAL_SHARE)
    last = chosen.manifest["samples"][-1]
    store.put(last["key"], b"not the photo the inspector saw", "image/png")  # S3 overwrites
    with pytest.raises(PhotoChanged, match=last["key"]):
        write_export(fmt="coco", manifest=chosen.manifest, source=chosen.source,
                     out=tmp_path / "out", store=store)  # fmt: skip
    assert list(tmp_path.iterdir()) == []  # neither OUT nor its temporary directory
    assert seeded.expected


def test_an_export_never_overwrites(db_session, site, tmp_path):
    _, store = site
    seed_verified(db_session, store)
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "keep.txt").write_text("mine")
    with pytest.raises(OutExists, match="not an empty directory"):
        export(db_session, store, "coco", tmp_path / "out")
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["keep.txt"]
    (tmp_path / "empty").mkdir()  # an empty directory is fine: it becomes the export
    export(db_session, store, "coco", tmp_path / "empty")
    assert (tmp_path / "empty" / "annotations.json").is_file()


def test_a_classifiers_crops_snapshot_is_not_exported_as_boxes(db_session, site):
    from app.learning.crops import take_crops_snapshot

    _, store = site
    seed_verified(db_session, store)
    crops = take_crops_snapshot(session=db_session, store=store, limit=100)
    with pytest.raises(NotADatasetSnapshot, match="crops"):
        snapshot_manifest(session=db_session, store=store, snapshot_id=crops.id)


@pytest.fixture
def cli_site(committed_db, site, monkeypatch):
    """The command line's way: settings from the environment, rows really committed."""
    settings, store = site
    for name in ("s3_bucket", "s3_endpoint_url", "s3_access_key_id", "s3_secret_access_key"):
        monkeypatch.setenv(f"LOUPE_{name.upper()}", str(getattr(settings, name)))
    monkeypatch.setenv("LOUPE_RETRAIN_VAL_SHARE", str(VAL_SHARE))
    reset_caches()
    seeded = seed_verified(committed_db, store)
    committed_db.commit()
    yield seeded, store
    monkeypatch.undo()
    reset_caches()


def test_loupe_export_writes_each_format_and_refuses_what_it_cannot_do(cli_site, tmp_path):
    seeded, _ = cli_site
    runner = CliRunner()
    done = runner.invoke(main, ["export", "yolo", str(tmp_path / "yolo"), "--split"])
    assert done.exit_code == 0, done.output
    boxes = sum(len(b) for b in seeded.expected.values())
    assert f"wrote {len(seeded.expected)} photos with {boxes} boxes (yolo; train" in done.output
    assert f"classes: {', '.join(CLASSES)}" in done.output
    assert (tmp_path / "yolo" / "test" / "labels").is_dir()
    since = runner.invoke(main, ["export", "coco", str(tmp_path / "coco"), "--since",
                                 "2000-01-01"])  # fmt: skip
    assert since.exit_code == 0, since.output
    assert set(read_coco(tmp_path / "coco")[0]) == set(seeded.expected)
    refusals = {
        ("coco", "--snapshot", "999"): "there is no dataset snapshot 999",
        ("coco", "--snapshot", "abc"): "a dataset snapshot's id is a number",
        ("coco", "--snapshot", "1", "--since", "2026-01-01"): "exclude each other",
        ("instructions", "--split"): "--split does not apply to instructions",
        ("instructions",): "no instruction snapshot yet",
        ("pascal",): "'pascal' is not one of",
    }
    for args, message in refusals.items():
        refused = runner.invoke(main, ["export", args[0], str(tmp_path / "no"), *args[1:]])
        assert refused.exit_code != 0 and message in refused.output, (args, refused.output)
        assert not (tmp_path / "no").exists()
    again = runner.invoke(main, ["export", "yolo", str(tmp_path / "yolo")])
    assert again.exit_code == 1 and "already exists" in again.output


def test_loupe_export_instructions_reuses_the_instruction_export(cli_site, committed_db, tmp_path):
    from app.config import get_settings
    from app.instructions.manifest import BuildOptions
    from app.instructions.service import build_snapshot

    _, store = cli_site
    built = build_snapshot(session=committed_db, store=store, settings=get_settings(),
                           options=BuildOptions(kinds=("A",)))  # fmt: skip
    committed_db.commit()
    out = tmp_path / "instructions"
    done = CliRunner().invoke(main, ["export", "instructions", str(out), "--snapshot",
                                     built.snapshot.id[:10]])  # fmt: skip
    assert done.exit_code == 0, done.output
    lines = (out / "instructions.jsonl").read_text(encoding="utf-8").splitlines()
    assert len(lines) == built.snapshot.samples
    record = json.loads(lines[0])
    assert record["snapshot"] == built.snapshot.id
    assert (out / record["images"][0]).is_file() and record["images"][0].startswith("crops/")
    described = yaml.safe_load((out / "loupe-export.yaml").read_text())
    assert described["source"] == {"kind": "instruction_snapshot", "snapshot": built.snapshot.id}
