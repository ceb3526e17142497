"""The field report's daily table, from what Loupe says about each simulated garment and
what the simulation knows about it. Pure."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

AUTOMATIC = ("auto_pass", "auto_reject")
COLUMNS = ("day", "items", "routed", "automatic_share", "human_share", "decided", "accuracy",
           "escape_rate", "false_reject_rate", "backlog", "detector", "classifier")  # fmt: skip


@dataclass(frozen=True)
class Seen:
    """One garment as the station API answered for it, with its truth."""

    day: int
    truth: str  # pass | reject
    status: str  # queued | inferring | routed
    route: str | None
    verdict: str | None  # the final outcome's verdict; None until decided
    decided_by: str | None  # model | inspector
    detector: str | None
    classifier: str | None


@dataclass(frozen=True)
class DayRow:
    day: int
    items: int  # uploaded that day
    routed: int
    automatic_share: float | None  # of the routed: decided by the models
    human_share: float | None  # of the routed: sent to people (audits too)
    decided: int
    accuracy: float | None  # of the decided: the final verdict is the truth
    escape_rate: float | None  # of the decided: a defective garment passed automatically
    false_reject_rate: float | None  # of the decided: a good garment rejected automatically
    backlog: int  # every garment uploaded so far and not decided yet
    detector: str  # the versions that served the day's garments, most used first
    classifier: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def day_row(day: int, seen: Sequence[Seen]) -> DayRow:
    """Day `day`'s row; `seen` is every garment uploaded up to the day's end."""
    today = [s for s in seen if s.day == day]
    routed = [s for s in today if s.status == "routed"]
    decided = [s for s in today if s.verdict is not None]
    automatic = [s for s in routed if s.route in AUTOMATIC]
    return DayRow(
        day=day,
        items=len(today),
        routed=len(routed),
        automatic_share=_share(len(automatic), len(routed)),
        human_share=_share(len(routed) - len(automatic), len(routed)),
        decided=len(decided),
        accuracy=_share(sum(s.verdict == s.truth for s in decided), len(decided)),
        escape_rate=_share(
            sum(
                s.decided_by == "model" and s.verdict == "pass" and s.truth == "reject"
                for s in decided
            ),
            len(decided),
        ),  # fmt: skip
        false_reject_rate=_share(
            sum(
                s.decided_by == "model" and s.verdict == "reject" and s.truth == "pass"
                for s in decided
            ),
            len(decided),
        ),  # fmt: skip
        backlog=sum(s.verdict is None for s in seen),
        detector=_versions(s.detector for s in today),
        classifier=_versions(s.classifier for s in today),
    )


def _share(part: int, whole: int) -> float | None:
    return part / whole if whole else None


def _versions(names: Any) -> str:
    counts = Counter(n for n in names if n)
    return ", ".join(name for name, _ in counts.most_common(2)) or "-"


def table(rows: Sequence[DayRow]) -> str:
    """The rows as the field report prints them."""
    lines = [f"{'day':>3} {'items':>5} {'auto':>6} {'human':>6} {'decided':>7} "
             f"{'accuracy':>8} {'escapes':>7} {'backlog':>7}  models"]  # fmt: skip
    for r in rows:
        lines.append(
            f"{r.day:>3} {r.items:>5} {_pct(r.automatic_share):>6} {_pct(r.human_share):>6} "
            f"{r.decided:>7} {_pct(r.accuracy):>8} {_pct(r.escape_rate):>7} {r.backlog:>7}  "
            f"{r.detector} / {r.classifier}"
        )
    return "\n".join(lines)


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.1%}"
