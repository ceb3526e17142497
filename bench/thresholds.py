"""Does `loupe thresholds recommend` keep its promise? A simulated site with known truth.

    python bench/thresholds.py [--seeds 20] [--items 20000] [--max-escape 0.02]
                               [--confidence 0.9] [--audit-rate 0.02]

Each seed draws a month of items from one simulated site, routes them under the band in
force (0.95:0.70) with audits, and records them as Loupe does: the inspectors' verdicts
inside the band and on the audits, nothing else. `app.policy.thresholds.recommend` picks a
band from that record alone. Then a second month is drawn from the same site with every
item's truth known, and the chosen band's escape rate is measured on it: the guarantee
holds for a seed when that realised rate is at or under --max-escape. Over the seeds it
should hold at least --confidence of the time (more often is the price of a finite-sample
bound). The human share the chosen band needs is compared with the fixed 0.95:0.70's, and
with the escape rate 0.95:0.70 realises on the same second month.

The simulated site: 20 % of garments are defective. The detector finds 95 % of defects
(confidence mostly high) and flags half of the good garments too (confidence mostly
low). The classifier calls a real defect's severity "minor" (a pass) 15 % of the time and
a false alarm "moderate" (a reject) 30 % of the time.
"""

from __future__ import annotations

import argparse
import random
import time
from dataclasses import dataclass

from app.policy.routing import DecisionTable
from app.policy.thresholds import (
    Band,
    RecordedItem,
    RecordedRegion,
    grid,
    recommend,
    replay,
    route_under,
)

IN_FORCE = Band(0.95, 0.70)
TABLE = DecisionTable()


@dataclass(frozen=True)
class Garment:
    regions: tuple[RecordedRegion, ...]
    defective: bool


def draw(rng: random.Random) -> Garment:
    defective = rng.random() < 0.20
    if defective:
        if rng.random() < 0.05:  # missed by the detector
            return Garment((), True)
        confidence = rng.betavariate(8, 2)
        severity = "minor" if rng.random() < 0.15 else "moderate"
    else:
        if rng.random() < 0.5:
            return Garment((), False)
        confidence = rng.betavariate(2, 3)
        severity = "moderate" if rng.random() < 0.30 else "minor"
    return Garment((RecordedRegion(0.9, confidence, "stain", severity),), defective)


def recorded(rng: random.Random, garment: Garment, audit_rate: float) -> RecordedItem:
    """What Loupe keeps of a garment routed under the band in force."""
    truth = "reject" if garment.defective else "pass"
    item = RecordedItem(garment.regions, "automatic", None)
    if route_under(item, IN_FORCE, table=TABLE, detector_threshold=0.25) == "review":
        return RecordedItem(garment.regions, "reviewed", truth)
    if rng.random() < audit_rate:
        return RecordedItem(garment.regions, "audited", truth)
    return item


def realised_escape(garments: list[Garment], band: Band) -> float:
    escapes = sum(
        g.defective
        and route_under(RecordedItem(g.regions, "automatic", None), band, table=TABLE,
                        detector_threshold=0.25) == "auto_pass"
        for g in garments
    )  # fmt: skip
    return escapes / len(garments)


def human_share(garments: list[Garment], band: Band, audit_rate: float) -> float:
    review = sum(
        route_under(RecordedItem(g.regions, "automatic", None), band, table=TABLE,
                    detector_threshold=0.25) == "review"
        for g in garments
    )  # fmt: skip
    return (review + audit_rate * (len(garments) - review)) / len(garments)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument("--items", type=int, default=20_000, help="items per simulated month")
    parser.add_argument("--max-escape", type=float, default=0.02)
    parser.add_argument("--confidence", type=float, default=0.9)
    parser.add_argument("--audit-rate", type=float, default=0.02)
    args = parser.parse_args()
    started = time.perf_counter()
    print(f"{args.seeds} seeds, {args.items} items a month, audits {args.audit_rate:.0%}, "
          f"bound {args.max_escape:.2%} with probability {args.confidence:g}\n")  # fmt: skip
    print("| seed | chosen band | human share (chosen / 0.95:0.70) | realised escape (chosen / "
          "0.95:0.70) | held |")  # fmt: skip
    print("|---|---|---|---|---|")
    held, saved = 0, []
    for seed in range(args.seeds):
        rng = random.Random(seed)
        month = [recorded(rng, draw(rng), args.audit_rate) for _ in range(args.items)]
        bands = [IN_FORCE, *(b for b in grid() if b != IN_FORCE)]
        estimates = replay(month, bands, table=TABLE, detector_threshold=0.25,
                           audit_rate=args.audit_rate, min_support=30)  # fmt: skip
        found = recommend(estimates, max_escape=args.max_escape, confidence=args.confidence)
        next_month = [draw(rng) for _ in range(args.items)]
        fixed_share = human_share(next_month, IN_FORCE, args.audit_rate)
        fixed_escape = realised_escape(next_month, IN_FORCE)
        if found.chosen is None:
            print(f"| {seed} | none shown safe | - / {fixed_share:.1%} | - / {fixed_escape:.2%} "
                  "| (kept the band in force) |")  # fmt: skip
            held += 1  # nothing was promised
            continue
        band = found.chosen.band
        share = human_share(next_month, band, args.audit_rate)
        escape = realised_escape(next_month, band)
        ok = escape <= args.max_escape
        held += ok
        saved.append(fixed_share - share)
        print(f"| {seed} | {band} | {share:.1%} / {fixed_share:.1%} | {escape:.2%} / "
              f"{fixed_escape:.2%} | {'yes' if ok else 'NO'} |")  # fmt: skip
    print(f"\nthe bound held in {held} of {args.seeds} seeds "
          f"(promised: at least {args.confidence:.0%})")  # fmt: skip
    if saved:
        print(f"human share saved against 0.95:0.70: mean {sum(saved) / len(saved):.1%} "
              f"(min {min(saved):.1%}, max {max(saved):.1%})")  # fmt: skip
    print(f"{time.perf_counter() - started:.1f} s")


if __name__ == "__main__":
    main()
