"""Instruction snapshots built from decisions in a real PostgreSQL, photos in a real store.

The seeded reviews cover every kind of verified answer: regions the inspector confirmed,
a type the inspector changed (the model said stain, it is pilling), a false alarm called
"not a defect" with a shadow tag and a note, a severity the inspector raised, a box the
inspector drew, and two frozen test items that no build may use.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner
from PIL import Image
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.cli import main
from app.config import get_settings
from app.inspections.tables import Photo, Region
from app.instructions.export import export_jsonl
from app.instructions.manifest import BuildOptions
from app.instructions.service import build_snapshot
from app.instructions.snapshots import find_snapshot, load_manifest
from app.instructions.tables import InstructionSnapshot
from app.learning.tables import TestSetItem
from app.review.tables import Decision, DecisionRegion
from app.storage import LocalStore, ObjectStore
from models.training.synthetic import make_dataset
from tests.integration.learning_support import make_user, seed_item
from tests.support import reset_caches

pytestmark = pytest.mark.integration

RIGHT = {"en": "The right answer is {}.", "ko": "정답은 {}입니다."}


@dataclass
class Seeded:
    confirmed: list[int]  # crop ids (decision_region ids)
    changed: int
    false_alarm: int
    severity: int
    drawn: int
    frozen: set[int]


def _evidence(label: str, exceptions: tuple[tuple[str, float, bool], ...] = ()) -> dict:
    return {
        "type_distribution": {label: 0.82, "normal": 0.1, "hole": 0.08} if label != "hole"
        else {"hole": 0.82, "normal": 0.1, "tear": 0.08},
        "type_probability": 0.82, "candidate_type": label,
        "exceptions": [{"key": k, "probability": p, "threshold": 0.8, "fired": f}
                       for k, p, f in exceptions],
    }  # fmt: skip


def _crops(session: Session, decision_id: int) -> list[DecisionRegion]:
    query = select(DecisionRegion).where(DecisionRegion.decision_id == decision_id)
    return list(session.scalars(query.order_by(DecisionRegion.id)))


def seed(session: Session, store: ObjectStore) -> Seeded:
    user = make_user(session)
    samples = make_dataset(10, seed=11, size=64)  # 0: pilling x2 + stain, 2/8: hole, 9: pilling
    confirmed = seed_item(session, store, samples[0], user)
    changed = seed_item(session, store, samples[9], user, model_types=["stain"])
    alarm = seed_item(session, store, samples[2], user, false_alarm="stain")
    raised = seed_item(session, store, samples[8], user)
    drawn = seed_item(session, store, samples[3], user, verdict="reject", draw_boxes=False)
    frozen = [seed_item(session, store, samples[i], user) for i in (4, 6)]
    for item in (confirmed, changed, alarm, raised):
        for region in session.scalars(
            select(Region).where(Region.inspection_id == item.inspection_id)
        ):
            checks = (("shadow_or_lighting", 0.4, False),) if region.defect_type == "stain" else ()
            region.evidence = _evidence(region.defect_type, checks)
    decision = session.get_one(Decision, alarm.decision_id)
    decision.tags, decision.note = ["shadow"], "only the lamp's shadow"
    _crops(session, raised.decision_id)[0].severity = "severe"  # the model said moderate
    photo_id = session.scalar(select(Photo.id).where(Photo.inspection_id == drawn.inspection_id))
    box = DecisionRegion(decision_id=drawn.decision_id, region_id=None, photo_id=photo_id,
                         x1=5, y1=5, x2=30, y2=30, defect_type="tear", severity="severe",
                         outcome="added")  # fmt: skip
    session.add(box)
    for item in frozen:
        session.add(TestSetItem(inspection_id=item.inspection_id))
    session.flush()
    alarm_crops = _crops(session, alarm.decision_id)
    return Seeded(
        confirmed=[c.id for c in _crops(session, confirmed.decision_id)],
        changed=_crops(session, changed.decision_id)[0].id,
        false_alarm=next(c.id for c in alarm_crops if c.outcome == "not_defect"),
        severity=_crops(session, raised.decision_id)[0].id,
        drawn=box.id,
        frozen={c.id for item in frozen for c in _crops(session, item.decision_id)},
    )


@pytest.fixture
def store(tmp_path: Path) -> LocalStore:
    return LocalStore(tmp_path / "photos")


def build(session: Session, store: ObjectStore, **options: object):  # type: ignore[no-untyped-def]
    return build_snapshot(session=session, store=store, settings=get_settings(),
                          options=BuildOptions(**options))  # type: ignore[arg-type]  # fmt: skip


def examples_of(manifest: dict, crop: int, form: str, language: str) -> list[dict]:
    return [e for e in manifest["examples"]
            if e["crop"] == crop and e["form"] == form and e["language"] == language]  # fmt: skip


def test_a_build_has_every_kind_with_the_inspectors_labels_in_both_languages(db_session, store):
    seeded = seed(db_session, store)
    result = build(db_session, store)
    manifest = result.manifest
    crops = {crop["id"]: crop for crop in manifest["crops"]}
    for language in ("en", "ko"):
        kinds = {e["kind"] for e in manifest["examples"] if e["language"] == language}
        assert kinds == {"A", "B", "C", "D"}
        # Kind A answers every crop with the inspector's label and severity.
        for crop_id, crop in crops.items():
            [fact] = examples_of(manifest, crop_id, "A.type", language)
            assert fact["assistant"] == crop["defect_type"] == fact["defect_type"]
            if crop["severity"]:
                [severity] = examples_of(manifest, crop_id, "A.severity", language)
                assert severity["assistant"] == crop["severity"]
        [contrast] = examples_of(manifest, seeded.changed, "B.contrast", language)
        assert contrast["assistant"].startswith("pilling.") and "stain" in contrast["user"]
        [failure] = examples_of(manifest, seeded.changed, "D.type", language)
        assert "82%" in failure["user"] and failure["assistant"].endswith(
            RIGHT[language].format("pilling")
        )
        [shadow] = examples_of(manifest, seeded.false_alarm, "A.exception", language)
        assert shadow["assistant"] == "yes"
        [real] = examples_of(manifest, seeded.false_alarm, "C.real_defect", language)
        assert "“" in real["assistant"]
        [alarm] = examples_of(manifest, seeded.false_alarm, "D.type", language)
        assert "40%" in alarm["assistant"] and "only the lamp's shadow" in alarm["assistant"]
        assert alarm["assistant"].endswith(RIGHT[language].format("normal"))
        [raised] = examples_of(manifest, seeded.severity, "D.severity", language)
        assert raised["assistant"].endswith(RIGHT[language].format("severe"))
        [missed] = examples_of(manifest, seeded.drawn, "D.missed", language)
        assert missed["assistant"].endswith(RIGHT[language].format("tear"))
        for crop_id in seeded.confirmed:
            assert not examples_of(manifest, crop_id, "D.type", language)  # no error, no D
    assert crops[seeded.false_alarm]["tags"] == ["shadow"]
    assert crops[seeded.changed]["model"]["defect_type"] == "stain"


def test_frozen_test_crops_never_appear(db_session, store):
    seeded = seed(db_session, store)
    result = build(db_session, store)
    used = {crop["id"] for crop in result.manifest["crops"]}
    used |= {example["crop"] for example in result.manifest["examples"]}
    assert seeded.frozen and not used & seeded.frozen
    assert result.frozen_left_out == len(seeded.frozen)
    assert {seeded.changed, seeded.false_alarm, seeded.drawn} <= used


def test_the_same_data_is_the_same_snapshot_and_new_data_a_new_one(db_session, store):
    seed(db_session, store)
    first = build(db_session, store)
    again = build(db_session, store, languages=("ko", "en"))
    assert first.created and not again.created
    assert again.snapshot.id == first.snapshot.id
    assert db_session.scalar(select(func.count()).select_from(InstructionSnapshot)) == 1
    stored = load_manifest(store=store, snapshot=first.snapshot)
    assert stored == first.manifest
    assert first.snapshot.counts["by_kind"].keys() == {"A", "B", "C", "D"}
    # Another decision is other data: another snapshot, the first one unchanged.
    seed_item(db_session, store, make_dataset(12, seed=11, size=64)[11], make_user(db_session))
    newer = build(db_session, store)
    assert newer.created and newer.snapshot.id != first.snapshot.id
    assert newer.snapshot.crops > first.snapshot.crops
    assert find_snapshot(session=db_session, ident=first.snapshot.id[:8]).id == first.snapshot.id


def test_the_export_is_chat_format_jsonl_with_its_crops(db_session, store, tmp_path):
    seed(db_session, store)
    result = build(db_session, store, kinds=("A", "D"), languages=("ko",))
    out = tmp_path / "export" / "train.jsonl"  # its folder does not exist yet
    report = export_jsonl(manifest=result.manifest, snapshot=result.snapshot.id, store=store,
                          out=out)  # fmt: skip
    lines = out.read_text(encoding="utf-8").splitlines()
    repeat = {crop["id"]: crop["repeat"] for crop in result.manifest["crops"]}
    assert report.lines == len(lines) == sum(repeat[e["crop"]] for e in result.manifest["examples"])
    for line in lines:
        record = json.loads(line)
        system, user, assistant = record["messages"]
        assert (system["role"], user["role"], assistant["role"]) == ("system", "user", "assistant")
        assert record["kind"] in {"A", "D"} and record["language"] == "ko"
        image_part, text_part = user["content"]
        assert image_part["type"] == "image" and text_part["type"] == "text" and text_part["text"]
        assert record["images"] == [image_part["image"]]
        with Image.open(out.parent / image_part["image"]) as crop:
            assert crop.format == "PNG" and crop.width > 0
        assert assistant["content"][0]["text"]
    assert len(list(report.images.glob("*.png"))) == report.crops == len(repeat)


def test_loupe_instructions_build_list_and_export(committed_db, tmp_path, monkeypatch):
    monkeypatch.setenv("LOUPE_VAR_DIR", str(tmp_path / "var"))
    monkeypatch.setenv("LOUPE_STORAGE_DIR", str(tmp_path / "photos"))
    reset_caches()
    try:
        runner = CliRunner()
        empty = runner.invoke(main, ["instructions", "build"])
        assert empty.exit_code == 1 and "no verified region answers" in empty.output
        seed(committed_db, LocalStore(tmp_path / "photos"))
        committed_db.commit()
        built = runner.invoke(main, ["instructions", "build", "--types", "A,D",
                                     "--languages", "ko,en"])  # fmt: skip
        assert built.exit_code == 0, built.output
        snapshot = committed_db.scalars(select(InstructionSnapshot)).one()
        assert f"snapshot {snapshot.id} (new)" in built.output
        a_line = f"A fact verification  {snapshot.counts['by_kind']['A']:>7}"
        assert "examples per kind:" in built.output and a_line in built.output
        assert "B compare" not in built.output
        assert "examples per defect type:\n  hole" in built.output and "balance:" in built.output
        again = runner.invoke(main, ["instructions", "build", "--types", "D,A"])
        assert f"snapshot {snapshot.id} (the same data" in again.output
        listed = runner.invoke(main, ["instructions", "list"])
        assert snapshot.id[:12] in listed.output
        out = tmp_path / "train.jsonl"
        exported = runner.invoke(main, ["instructions", "export", str(out), "--snapshot",
                                        snapshot.id[:10]])  # fmt: skip
        assert exported.exit_code == 0, exported.output
        assert len(out.read_text(encoding="utf-8").splitlines()) >= snapshot.examples
        wrong = runner.invoke(main, ["instructions", "export", str(out), "--snapshot", "ffffff"])
        assert wrong.exit_code == 1 and "no instruction snapshot" in wrong.output
    finally:
        monkeypatch.undo()
        reset_caches()
