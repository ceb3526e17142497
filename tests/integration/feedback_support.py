"""A seeded week of decisions (2026-W47) whose weekly report was worked out by hand.

Every item is a stain the model called moderate (a reject) or minor (a pass) at
confidence 0.8, unless said otherwise. Times are UTC; the site's zone is UTC, so W47 is
Monday 2026-11-16 00:00 to Monday 2026-11-23 00:00. EXPECTED spells out the report.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from app.inspections.tables import Inspection, Region
from app.review import decisions, reopen
from app.review.tables import ReviewTask
from tests.integration.review_support import make_review_item, make_user

WEEK = "2026-W47"
NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)  # the Wednesday after: W47 is closed
SLA = 3600


def at(day: int, hour: int, minute: int = 0) -> datetime:
    """A time in November 2026 (16 is W47's Monday)."""
    return datetime(2026, 11, day, hour, minute, tzinfo=UTC)


@dataclass
class SeededWeek:
    kim: int
    lee: int
    tasks: dict[str, ReviewTask]


def _item(session: Session, created: datetime, **kwargs) -> tuple[ReviewTask, Region]:
    task = make_review_item(session, created_at=created, sla_seconds=SLA, **kwargs)
    session.execute(
        update(Inspection).where(Inspection.id == task.inspection_id).values(routed_at=created)
    )
    region = session.scalar(select(Region).where(Region.inspection_id == task.inspection_id))
    return task, region


def _decide(session, task, user, when, verdict, edits=(), tags=()):
    return decisions.decide(
        session=session,
        task_id=task.id,
        user_id=user.id,
        verdict=verdict,
        tags=tags,
        region_edits=list(edits),
        now=when,
    )


def _automatic(session: Session, route: str, when: datetime, detector: str = "det-test-1"):
    session.add(
        Inspection(
            station="dock-1",
            status="routed",
            route=route,
            verdict=route.removeprefix("auto_"),
            confidence=0.99,
            detector_version=detector,
            classifier_version="cls-test-1",
            prompt_version="v-test",
            created_at=when,
            routed_at=when,
        )  # fmt: skip
    )


def seed_week(session: Session) -> SeededWeek:
    kim = make_user(session, name="kim")
    lee = make_user(session, name="lee")
    tasks: dict[str, ReviewTask] = {}

    # T1: kim confirms the model (reject): agreement, no error; waited 1 h (not late).
    t, _ = _item(session, at(16, 9))
    tasks["t1"] = t
    _decide(session, t, kim, at(16, 10), "confirm")
    # T2: kim: not a defect, a shadow; waited 2 h (late). Region FP + item FP.
    t, r = _item(session, at(16, 9))
    tasks["t2"] = t
    _decide(session, t, kim, at(16, 11), "pass", [{"region": r.id, "not_defect": True}],
            ["shadow"])  # fmt: skip
    # T3: lee: a hole, not a stain; still a reject. Classification error (type).
    t, r = _item(session, at(17, 9, 30))
    tasks["t3"] = t
    _decide(session, t, lee, at(17, 10), "reject", [{"region": r.id, "type": "hole"}])
    # T4: lee: severe, not moderate, under harsh lighting. Classification error (severity).
    t, r = _item(session, at(17, 10))
    tasks["t4"] = t
    _decide(session, t, lee, at(17, 11), "reject", [{"region": r.id, "severity": "severe"}],
            ["lighting"])  # fmt: skip
    # T5: the model saw a minor stain (a pass); kim keeps it, draws a hole the model missed
    # and rejects. Region FN (drawn) + item FN.
    t, _ = _item(session, at(18, 9, 45), severity="minor")
    tasks["t5"] = t
    photo_id = session.scalar(
        select(Region.photo_id).where(Region.inspection_id == t.inspection_id)
    )
    _decide(session, t, kim, at(18, 10), "reject",
            [{"photo": photo_id, "box": [200, 100, 260, 160], "type": "hole",
              "severity": "severe"}])  # fmt: skip
    # T6: an audit of an automatic pass (minor stain); kim agrees.
    t, _ = _item(session, at(18, 11), severity="minor", confidence=0.99, is_audit=True,
                 reason="audit")  # fmt: skip
    tasks["t6"] = t
    _decide(session, t, kim, at(18, 12), "confirm")
    # T7: an audit of an automatic reject; lee: not a defect. An escape (a wrong reject):
    # region FP (no tag) + item FP.
    t, r = _item(session, at(19, 9), confidence=0.99, is_audit=True, reason="audit")
    tasks["t7"] = t
    _decide(session, t, lee, at(19, 10), "pass", [{"region": r.id, "not_defect": True}])
    # T8: kim decides and takes it back: nothing of it counts; it is open at the week's end.
    t, r = _item(session, at(19, 11))
    tasks["t8"] = t
    undone = _decide(session, t, kim, at(19, 12), "pass", [{"region": r.id, "not_defect": True}],
                     ["print"])  # fmt: skip
    reopen.undo(session=session, decision_id=undone.id, user_id=kim.id, window_seconds=10,
                   lease_seconds=300, now=at(19, 12) + timedelta(seconds=2))  # fmt: skip
    # T9: decided the week before (Sunday night): not in W47.
    t, r = _item(session, at(15, 22))
    tasks["t9"] = t
    _decide(session, t, kim, at(15, 23), "pass", [{"region": r.id, "not_defect": True}])
    # T10: arrived Friday, never decided: open and past due at the week's end.
    t, _ = _item(session, at(20, 10))
    tasks["t10"] = t

    for day in (16, 17, 18, 19):
        _automatic(session, "auto_pass", at(day, 8))
    for day in (20, 21):
        _automatic(session, "auto_pass", at(day, 8), detector="det-test-2")
    _automatic(session, "auto_reject", at(16, 8))
    _automatic(session, "auto_reject", at(22, 23, 59))
    _automatic(session, "auto_pass", at(15, 8))  # W46
    session.commit()
    return SeededWeek(kim.id, lee.id, tasks)


# A region-level pattern row: (title, type, model label, human label, field, tag, action).
EXPECTED_PATTERNS = [
    ("classification_error · stain → hole", "classification_error", "stain", "hole", "type",
     None, "clarify_taxonomy_descriptions"),
    ("classification_error · stain severity · tag lighting", "classification_error", "stain",
     "stain", "severity", "lighting", "calibrate_severity_prompt"),
    ("false_negative · missed → hole", "false_negative", None, "hole", None, None,
     "add_to_retraining_set"),
    ("false_positive · stain → normal", "false_positive", "stain", "normal", None, None,
     "add_negatives_to_retraining_set"),
    ("false_positive · stain → normal · tag shadow", "false_positive", "stain", "normal", None,
     "shadow", "strengthen_brightness_augmentation"),
]  # fmt: skip


def seed_history(
    session: Session,
    *,
    last_monday: datetime,
    weeks: int,
    per_week: int = 12,
    photo_key: str | None = None,
) -> None:
    """Weeks of varied decisions before `last_monday` (the e2e dashboard's picture and the
    trend charts): a reproducible mix of agreements, false alarms, type and severity
    changes and missed defects, a little better each week."""
    import random

    rng = random.Random(47)
    people = [make_user(session, name=name) for name in ("kim", "lee", "park")]
    types = ("hole", "tear", "pilling")
    tags = ("shadow", "lighting", "print", "lint", "white_fabric")
    for w in range(weeks, 0, -1):
        monday = last_monday - timedelta(weeks=w)
        error_share = 0.25 + 0.04 * w  # earlier weeks had more disagreement
        for i in range(per_week):
            created = monday + timedelta(hours=8 + 10 * i)
            audit = i % 6 == 5
            t, r = _item(session, created, severity=rng.choice(("minor", "moderate")),
                         confidence=0.99 if audit else 0.8, is_audit=audit,
                         reason="audit" if audit else "uncertain", photo_key=photo_key)  # fmt: skip
            when = created + timedelta(minutes=rng.randint(5, 200))
            who = people[i % len(people)]
            roll = rng.random()
            if roll > error_share:
                _decide(session, t, who, when, "confirm")
            elif roll > error_share * 0.6:
                _decide(session, t, who, when, "pass", [{"region": r.id, "not_defect": True}],
                        [rng.choice(tags)])  # fmt: skip
            elif roll > error_share * 0.3:
                _decide(session, t, who, when, "reject",
                        [{"region": r.id, "type": rng.choice(types)}])  # fmt: skip
            else:
                _decide(session, t, who, when, "reject",
                        [{"photo": r.photo_id, "box": [150, 40, 230, 120],
                          "type": rng.choice(types), "severity": "severe"}])  # fmt: skip
        for day in range(7):
            for _ in range(rng.randint(4, 7)):
                _automatic(session, rng.choice(("auto_pass", "auto_pass", "auto_reject")),
                           monday + timedelta(days=day, hours=rng.randint(0, 23)))  # fmt: skip
    session.commit()
